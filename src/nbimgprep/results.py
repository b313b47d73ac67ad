"""What a call hands back: :class:`Result` (where the image is, whether it cost anything) and
:class:`ProgressEvent` (what a call is doing now). Plain data, shared by the engine and every face.
"""

from __future__ import annotations

import html
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Literal, TypeAlias

from .images import ImageRef
from .operations import OPERATIONS
from .pixels import open_image
from .thumbnails import CHECKERBOARD_CSS, FIGURE_PX, thumbnail_of_file

if TYPE_CHECKING:
    from PIL import Image

    from .store import Entry

__all__ = [
    "ProgressCallback",
    "ProgressEvent",
    "ProgressKind",
    "Result",
    "Source",
    "Tier",
    "cache_label",
    "result_of",
]

Source: TypeAlias = "str | os.PathLike[str] | bytes | IO[bytes] | ImageRef | Image.Image"
ProgressKind = Literal["hit", "queued", "running", "done", "failed"]
Tier = Literal["local", "shared"]
ProgressCallback = Callable[["ProgressEvent"], object]


def cache_label(cache_hit: bool) -> str:
    """``"cache hit"`` or ``"fresh"``: the one wording every face uses for where a result
    came from."""
    return "cache hit" if cache_hit else "fresh"


@dataclass(frozen=True)
class ProgressEvent:
    """What a call is doing now: ``hit``, ``queued`` (with ``position``), ``running`` (with
    ``logs``), ``done`` or ``failed``. ``elapsed`` counts seconds since the call began."""

    kind: ProgressKind
    key: str
    position: int | None = None
    logs: tuple[str, ...] = ()
    elapsed: float = 0.0


@dataclass(frozen=True)
class Result:
    """The outcome of one call: where the result image is, and whether it cost anything.

    Shown as a cell's last value, it displays the image with a "cache hit" or "fresh" caption.
    """

    cache_hit: bool
    path: Path
    key: str
    image_hash: str
    operation: str
    params: dict[str, Any]
    backend: str
    endpoint: str
    elapsed: float
    width: int = field(default=0, repr=False)
    height: int = field(default=0, repr=False)
    #: Where a hit came from: "local" (this machine's store) or "shared" (the team's tier,
    #: now copied into the local store); None for a fresh result.
    tier: Tier | None = field(default=None, repr=False)

    @cached_property
    def image(self) -> Image.Image:
        """The result as a PIL image (read from :attr:`path` on first access)."""
        img = open_image(self.path)  # no bomb warning for a result inside our 100 MP cap
        img.load()
        return img

    @property
    def status(self) -> str:
        """``cache hit in 0.9 ms``, ``shared cache hit in 25.0 ms`` or
        ``fresh from local in 1.24 s``."""
        if self.cache_hit:
            where = "shared " if self.tier == "shared" else ""
            return f"{where}{cache_label(True)} in {self.elapsed * 1000:.1f} ms"
        return f"{cache_label(False)} from {self.backend} in {self.elapsed:.2f} s"

    @property
    def title(self) -> str:
        """``upscale 2x``, ``remove background``: the operation and its parameters."""
        op = OPERATIONS.get(self.operation)
        return op.describe(self.params) if op is not None else self.operation

    def __str__(self) -> str:
        params = "".join(f" {k}={v}" for k, v in self.params.items())
        return (
            f"{self.operation}{params} of {self.image_hash[:12]}: {self.status}, "
            f"{self.width}x{self.height} -> {self.path}"
        )

    def _repr_html_(self) -> str:
        thumb = thumbnail_of_file(self.path, FIGURE_PX, lossless=True)
        picture = (
            f'<img src="{thumb.data_uri()}" style="max-width:{FIGURE_PX}px;{CHECKERBOARD_CSS}"/>'
            if thumb is not None
            else "<p>(the result file cannot be read)</p>"
        )
        colour = "#1a7f37" if self.cache_hit else "#0969da"
        caption = html.escape(
            f"{self.title} · {self.width}x{self.height} · {self.endpoint} · {self.status}"
        )
        return (
            f'<figure style="margin:0;display:inline-block">'
            f"{picture}"
            f'<figcaption style="font-family:sans-serif;font-size:12px">'
            f'<b style="color:{colour}">{cache_label(self.cache_hit)}</b> · '
            f"{caption}<br><code>{html.escape(str(self.path))}</code></figcaption></figure>"
        )

    def _repr_mimebundle_(self, include: object = None, exclude: object = None) -> dict[str, str]:
        return {"text/plain": str(self), "text/html": self._repr_html_()}


def result_of(entry: Entry, *, cache_hit: bool, elapsed: float, tier: Tier | None = None) -> Result:
    """The :class:`Result` that hands over a store entry (a hit, or a result just stored)."""
    return Result(
        cache_hit=cache_hit,
        path=entry.path,
        key=entry.key,
        image_hash=entry.image_hash,
        operation=entry.operation,
        params=dict(entry.params),
        backend=entry.backend,
        endpoint=entry.endpoint,
        elapsed=elapsed,
        width=entry.width,
        height=entry.height,
        tier=tier,
    )
