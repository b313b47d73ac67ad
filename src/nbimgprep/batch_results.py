"""What a batch hands back: :class:`Batch` (every item's outcome, in input order). Plain data
that shows itself: a thumbnail grid with a hit / fresh / failed badge per item in a notebook,
the summary and the failures as text. (:class:`Plan`, what a batch would cost before paying,
lives in :mod:`nbimgprep.plan` and is importable from here too.)
"""

from __future__ import annotations

import html
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, overload

from .errors import BudgetExceeded, NbimgprepError
from .plan import Plan
from .results import Result, Source
from .thumbnails import CHECKERBOARD_CSS, thumbnail_of_file

if TYPE_CHECKING:
    from .processor import Processor
    from .review import Review

__all__ = ["GRID_LIMIT", "Batch", "BatchItem", "ItemStatus", "Plan"]

ItemStatus = Literal["hit", "fresh", "failed"]
Outcome = Result | NbimgprepError

#: How many tiles a batch shows in a notebook; the rest are counted ("and N more").
GRID_LIMIT = 48
TILE_PX = 96
BADGE_COLOURS = {"hit": "#1a7f37", "fresh": "#0969da", "failed": "#cf222e"}


@dataclass(frozen=True)
class BatchItem:
    """One input of a batch and what became of it: a ``result`` or an ``error``."""

    index: int
    source: Source
    label: str
    result: Result | None = None
    error: NbimgprepError | None = None

    @property
    def outcome(self) -> Outcome:
        """The Result, or in its place the error."""
        if self.result is not None:
            return self.result
        assert self.error is not None
        return self.error

    @property
    def status(self) -> ItemStatus:
        """``"hit"``, ``"fresh"`` or ``"failed"``."""
        if self.result is None:
            return "failed"
        return "hit" if self.result.cache_hit else "fresh"


@dataclass(frozen=True)
class Batch(Sequence[Outcome]):
    """The outcomes of ``run_many``, in input order: each a :class:`Result`, or in a failed
    item's place its :class:`NbimgprepError` (whose message names the input).

    ``batch.results``, ``batch.errors``, ``batch.hits``, ``batch.fresh`` (lists),
    ``batch.items`` (each input with its outcome), ``batch.summary`` (one line).
    """

    operation: str
    items: tuple[BatchItem, ...]
    elapsed: float
    params: dict[str, Any] = field(default_factory=dict)
    #: How many times a call was refused with a 429 and tried again.
    rate_limited: int = 0
    #: The Processor that ran the batch (a review redoes and tags through it).
    processor: Processor | None = field(default=None, repr=False, compare=False)

    def review(self, **options: Any) -> Review:
        """A :class:`~nbimgprep.review.Review` of this batch: look, accept, reject, redo."""
        from .review import Review

        return Review(self, **options)

    @overload
    def __getitem__(self, index: int) -> Outcome: ...

    @overload
    def __getitem__(self, index: slice) -> list[Outcome]: ...

    def __getitem__(self, index: int | slice) -> Outcome | list[Outcome]:
        if isinstance(index, slice):
            return [item.outcome for item in self.items[index]]
        return self.items[index].outcome

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self) -> Iterator[Outcome]:
        return (item.outcome for item in self.items)

    @property
    def sources(self) -> list[Source]:
        """The inputs, in order (a folder or glob expanded to its files)."""
        return [item.source for item in self.items]

    @property
    def results(self) -> list[Result]:
        return [item.result for item in self.items if item.result is not None]

    @property
    def errors(self) -> list[NbimgprepError]:
        return [item.error for item in self.items if item.error is not None]

    @property
    def hits(self) -> list[Result]:
        return [r for r in self.results if r.cache_hit]

    @property
    def fresh(self) -> list[Result]:
        return [r for r in self.results if not r.cache_hit]

    @property
    def summary(self) -> str:
        """``upscale scale=2: 320 images in 26.4 s (12 images/s): 300 hits, 18 fresh, 2 failed``"""
        params = "".join(f" {k}={v}" for k, v in self.params.items())
        n = len(self.items)
        rate = n / self.elapsed if self.elapsed > 0 else float("inf")
        over = sum(isinstance(e, BudgetExceeded) for e in self.errors)
        line = (
            f"{self.operation}{params}: {n} image{'s' * (n != 1)} in {self.elapsed:.1f} s "
            f"({rate:,.0f} images/s): {len(self.hits)} hits, {len(self.fresh)} fresh, "
            f"{len(self.errors)} failed"
        )
        if over:
            line += f" ({over} over the max_fresh budget)"
        if self.rate_limited:
            line += f"; {self.rate_limited} calls slowed down by rate limits and retried"
        return line

    def __str__(self) -> str:
        lines = [self.summary]
        lines += [f"  failed: {e}" for e in self.errors]
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"<Batch {self.summary}>"

    def _repr_html_(self) -> str:
        tiles = "".join(_tile(item) for item in self.items[:GRID_LIMIT])
        more = len(self.items) - GRID_LIMIT
        rest = f'<div style="align-self:center">and {more} more</div>' if more > 0 else ""
        return (
            '<div style="font-family:sans-serif;font-size:12px">'
            f"<div>{html.escape(self.summary)}</div>"
            f'<div style="display:flex;flex-wrap:wrap;gap:6px;margin-top:6px">{tiles}{rest}</div>'
            "</div>"
        )

    def _repr_mimebundle_(self, include: object = None, exclude: object = None) -> dict[str, str]:
        return {"text/plain": str(self), "text/html": self._repr_html_()}


def _tile(item: BatchItem) -> str:
    status = item.status
    name = html.escape(_short(item.label))
    if item.result is not None:
        thumb = thumbnail_of_file(item.result.path, TILE_PX)
        uri = thumb.data_uri() if thumb is not None else ""
        body = f'<img src="{uri}" style="max-width:{TILE_PX}px;max-height:{TILE_PX}px;'
        body += f'{CHECKERBOARD_CSS}"/>'
    else:
        body = (
            f'<div style="width:{TILE_PX}px;height:{TILE_PX}px;overflow:hidden;'
            f'color:#cf222e;font-size:10px">{html.escape(str(item.error))}</div>'
        )
    badge = (
        f'<span style="color:#fff;background:{BADGE_COLOURS[status]};border-radius:3px;'
        f'padding:0 4px">{status}</span>'
    )
    return (
        f'<figure style="margin:0;width:{TILE_PX}px" title="{html.escape(item.label)}">'
        f'{body}<figcaption style="overflow:hidden;white-space:nowrap">{badge} {name}'
        "</figcaption></figure>"
    )


def _short(label: str, keep: int = 14) -> str:
    tail = label.replace("\\", "/").rsplit("/", 1)[-1]
    return tail if len(tail) <= keep else tail[: keep - 1] + "…"
