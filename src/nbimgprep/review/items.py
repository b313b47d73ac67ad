"""One reviewed item: an input of the batch, what became of it, the decision taken on it,
and its flags (computed on first need, see :mod:`nbimgprep.review.flags`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import PurePath
from typing import Literal

from ..batch_results import ItemStatus
from ..errors import NbimgprepError
from ..results import Result, Source
from .flags import flags_of

__all__ = ["DECISIONS", "FILTERS", "Decision", "Filter", "ReviewItem"]

Decision = Literal["accepted", "rejected"]
Filter = Literal["all", "flagged", "rejected", "accepted", "failed", "undecided"]
#: The decisions, which are also the store tags that keep them.
DECISIONS: tuple[Decision, ...] = ("accepted", "rejected")
FILTERS: tuple[Filter, ...] = ("all", "flagged", "rejected", "accepted", "failed", "undecided")


@dataclass(eq=False)
class ReviewItem:
    """``index`` (its place in the batch), ``source``, ``result`` or ``error``, ``status``
    (``"hit"``, ``"fresh"`` or ``"failed"``), ``decision`` (``"accepted"``, ``"rejected"``
    or None) and ``flags`` (a tuple of short strings)."""

    index: int
    source: Source
    label: str
    result: Result | None = None
    error: NbimgprepError | None = None
    decision: Decision | None = None
    #: What the result was made from when that is not ``source`` (a result taken from an
    #: ImagePrep after a crop): the flags compare the result with it.
    made_from: Source | None = field(default=None, repr=False)
    _flags: tuple[str, ...] | None = field(default=None, repr=False)

    @property
    def status(self) -> ItemStatus:
        if self.result is None:
            return "failed"
        return "hit" if self.result.cache_hit else "fresh"

    @property
    def flags(self) -> tuple[str, ...]:
        """Computed from the result on first access, then kept (a redo computes anew)."""
        if self._flags is None:
            made_from = self.source if self.made_from is None else self.made_from
            self._flags = () if self.result is None else flags_of(self.result, made_from)
        return self._flags

    @property
    def name(self) -> str:
        """The input's file name (its label's last part)."""
        return PurePath(self.label.replace("\\", "/")).name or self.label

    def outcome(
        self, result: Result | None, error: NbimgprepError | None, made_from: Source | None = None
    ) -> None:
        """Take a new outcome (a redo, a retry, a result taken from an ImagePrep): flags are
        computed anew, and a new result starts undecided."""
        self.result, self.error, self.made_from, self._flags = result, error, made_from, None
        self.decision = None

    def matches(self, which: Filter) -> bool:
        """Whether this item is shown under the filter ``which``."""
        if which == "all":
            return True
        if which == "failed":
            return self.result is None
        if which == "flagged":
            return bool(self.flags)
        if which == "undecided":
            return self.result is not None and self.decision is None
        return self.decision == which
