"""What the widget says, as data: the status line and the history of steps.

Both are plain values (a kind, the text a person reads, the timing) so that scripts and
tests read ``prep.status_text`` or ``prep.history`` directly; their HTML is derived from
them in :mod:`nbimgprep.widget.markup`, never parsed back.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from ..errors import NbimgprepError
from ..operations import OPERATIONS
from ..results import cache_label
from .layers import TIMES

if TYPE_CHECKING:
    from ..results import ProgressEvent, Result
    from .inputs import InputImage

__all__ = [
    "HistoryStep",
    "Status",
    "StatusKind",
    "error_status",
    "progress_status",
    "result_status",
    "step_title",
    "timing",
]

log = logging.getLogger("nbimgprep.widget")

#: ``idle`` grey, ``ok`` blue, ``busy`` amber, ``hit`` green, ``fresh`` indigo, ``error`` red.
StatusKind = Literal["idle", "ok", "busy", "hit", "fresh", "error"]


@dataclass(frozen=True)
class Status:
    """The status line: what kind of news it is and the sentence a person reads."""

    kind: StatusKind
    text: str


def result_status(result: Result) -> Status:
    """``upscale 2x: cache hit · 3 ms · local``, green for a hit, indigo for a fresh call."""
    title = step_title(result.operation, result.params)
    how = timing(result.cache_hit, result.elapsed, result.backend)
    return Status("hit" if result.cache_hit else "fresh", f"{title}: {how}")


def progress_status(event: ProgressEvent, backend: str) -> Status | None:
    """Queue position, or the run time and latest log line, while a call waits."""
    if event.kind == "queued":
        where = f"position {event.position}" if event.position is not None else "queued"
        return Status("busy", f"Waiting in the {backend} queue: {where} · {event.elapsed:.1f} s")
    if event.kind == "running":
        last = f" · {event.logs[-1]}" if event.logs else ""
        return Status("busy", f"Running on {backend} · {event.elapsed:.1f} s{last}")
    return None


def error_status(exc: BaseException, doing: str | None = None) -> Status:
    """An error with what to do next. Anything not an NbimgprepError is a bug: logged too."""
    prefix = f"{doing} failed: " if doing else ""
    if isinstance(exc, NbimgprepError):
        return Status("error", f"{prefix}{exc}")
    log.error("ImagePrep: unexpected error", exc_info=exc)
    return Status(
        "error",
        f"{prefix}unexpected {type(exc).__name__}: {exc}. The widget is still usable; "
        "try again, and if it keeps failing report it with this message.",
    )


def timing(cache_hit: bool, elapsed: float, backend: str) -> str:
    """``cache hit · 3 ms · local`` or ``fresh · 4.2 s · fal``."""
    if cache_hit:
        return f"{cache_label(True)} · {elapsed * 1000:.0f} ms · {backend}"
    return f"{cache_label(False)} · {elapsed:.1f} s · {backend}"


def step_title(operation: str, params: Mapping[str, Any]) -> str:
    """``upscale 2x``, ``crop (10, 20, 300, 200)``, ``use result``."""
    if operation in OPERATIONS:
        return OPERATIONS[operation].describe(params)
    if operation == "crop":
        x, y, w, h = params["box"]
        return f"crop ({x}, {y}, {w}, {h})"
    return operation.replace("_", " ")


@dataclass(frozen=True)
class HistoryStep:
    """One step of the chain the widget has run: a crop, an operation, or "use result"."""

    operation: str
    params: Mapping[str, Any]
    #: True for a cache hit, False for a fresh call, None for local steps (crop, use result).
    cache_hit: bool | None
    elapsed: float
    #: Short hash of the image this step produced.
    image_hash: str
    backend: str = "local"
    width: int = 0
    height: int = 0

    @property
    def kind(self) -> Literal["local", "hit", "fresh"]:
        """``local`` (crop, use result), ``hit`` or ``fresh``."""
        if self.cache_hit is None:
            return "local"
        return "hit" if self.cache_hit else "fresh"

    @classmethod
    def local(
        cls, operation: str, params: Mapping[str, Any], elapsed: float, made: InputImage
    ) -> HistoryStep:
        """A step run here (crop, use result) that ``made`` a new input."""
        return cls(operation, params, None, elapsed, made.sha256[:12], "local", *made.size)

    @classmethod
    def of_result(cls, result: Result, image_hash: str) -> HistoryStep:
        """The step an operation's result makes (``image_hash``: the result's, short)."""
        return cls(
            result.operation,
            dict(result.params),
            result.cache_hit,
            result.elapsed,
            image_hash,
            result.backend,
            result.width,
            result.height,
        )

    def describe(self) -> str:
        """One line for the history list."""
        what = step_title(self.operation, self.params)
        size = f"{self.width}{TIMES}{self.height}"
        if self.cache_hit is None:
            return f"{what} → {size} #{self.image_hash}"
        how = timing(self.cache_hit, self.elapsed, self.backend)
        return f"{what} → {size} #{self.image_hash} · {how}"
