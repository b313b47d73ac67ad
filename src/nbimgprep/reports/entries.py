"""``list`` and ``inspect``: the entries of the store, as a table or one image at a time with
thumbnails of its input and results side by side."""

from __future__ import annotations

import dataclasses
import html
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..formatting import Table, format_age, format_params, format_size, format_time
from ..operations import OPERATIONS
from ..thumbnails import CHECKERBOARD_CSS, LISTING_PX, thumbnail_of_file
from .base import HTML_ROW_LIMIT, Report, heading, note

if TYPE_CHECKING:
    from ..store import Entry

__all__ = ["CacheInspection", "CacheListing", "ImageGroup", "thumbnail_uri"]

_LIST_HEADERS = ("key", "image", "operation", "endpoint", "size", "dimensions", "age", "hits")


def _title(entry: Entry) -> str:
    """``"upscale 2x"``, ``"face detail"``."""
    op = OPERATIONS.get(entry.operation)
    return op.describe(entry.params) if op is not None else entry.operation


@dataclass(repr=False)
class CacheListing(Report):
    """``list``: one row per entry (the entries themselves are in :attr:`entries`)."""

    entries: list[Entry]
    now: float
    total: int | None = None
    sort: str = "age"

    def table(self) -> Table:
        rows = [
            (
                e.key[:12],
                e.image_hash[:12],
                _title(e),
                e.endpoint,
                format_size(e.size),
                f"{e.width}x{e.height}",
                format_age(self.now - e.created),
                str(e.hits),
            )
            for e in self.entries
        ]
        return Table(_LIST_HEADERS, rows, right=frozenset({4, 6, 7}))

    def _summary(self) -> str:
        if not self.entries:
            return "The cache is empty." if not self.total else "No entries match."
        shown = len(self.entries)
        of = f" of {self.total}" if self.total is not None and self.total > shown else ""
        return f"{shown}{of} entries, sorted by {self.sort}."

    def text(self) -> str:
        if not self.entries:
            return self._summary()
        return f"{self.table().text()}\n{self._summary()}"

    def html(self) -> str:
        if not self.entries:
            return note(self._summary())
        parts = [self.table().html(limit=HTML_ROW_LIMIT), note(self._summary())]
        if len(self.entries) > HTML_ROW_LIMIT:
            parts.append(
                note(
                    f"Showing the first {HTML_ROW_LIMIT} rows; all {len(self.entries)} are in "
                    "the returned object's .entries (use --limit to choose)."
                )
            )
        return "".join(parts)

    def __len__(self) -> int:
        return len(self.entries)


def _field_rows(entry: Entry, now: float) -> list[tuple[str, str]]:
    """Every field recorded for ``entry``, formatted; fields added later appear too."""
    known: dict[str, str] = {
        "key": entry.key,
        "image_hash": entry.image_hash,
        "operation": entry.operation,
        "params": format_params(entry.params),
        "backend": entry.backend,
        "endpoint": entry.endpoint,
        "endpoint_arguments": json.dumps(dict(entry.endpoint_arguments), sort_keys=True),
        "path": str(entry.path),
        "result_sha256": entry.result_sha256,
        "size": f"{format_size(entry.size)} ({entry.size} bytes)",
        "dimensions": f"{entry.width}x{entry.height}",
        "content_type": str(entry.content_type or "-"),
        "created": format_time(entry.created, now),
        "last_hit": format_time(entry.last_hit, now),
        "hits": str(entry.hits),
        "backend_seconds": f"{entry.backend_seconds:.2f}",
        "request_id": str(entry.request_id or "-"),
        "remote_url": str(entry.remote_url or "-"),
        "source": str(entry.source or "-"),
    }
    skip = {"width", "height"}
    rows = list(known.items())
    for f in dataclasses.fields(entry):
        if f.name not in known and f.name not in skip:
            rows.append((f.name, str(getattr(entry, f.name))))
    return rows


def thumbnail_uri(path: Path | str | None, size: int = LISTING_PX) -> str | None:
    """A small inline ``data:`` image of the file, or None if it cannot be read or decoded."""
    thumb = thumbnail_of_file(path, size)
    return thumb.data_uri() if thumb is not None else None


def _figure(uri: str | None, caption: str) -> str:
    img = (
        f'<img src="{uri}" style="max-width:{LISTING_PX}px;max-height:{LISTING_PX}px;'
        f'{CHECKERBOARD_CSS}" alt="{html.escape(caption)}"/>'
        if uri
        else f'<div style="width:{LISTING_PX}px;height:60px;color:#999;border:1px dashed #ccc;'
        'display:flex;align-items:center;justify-content:center">not on disk</div>'
    )
    return (
        '<figure style="margin:0;display:flex;flex-direction:column;align-items:center">'
        f'{img}<figcaption style="font-size:0.85em">{html.escape(caption)}</figcaption></figure>'
    )


@dataclass(frozen=True)
class ImageGroup:
    """The entries of one input image, and where that input is on disk (if known)."""

    image_hash: str
    input_path: Path | None
    entries: list[Entry]


@dataclass(repr=False)
class CacheInspection(Report):
    """``inspect``: everything recorded, the input and its results side by side."""

    query: str
    groups: list[ImageGroup]
    now: float

    @property
    def entries(self) -> list[Entry]:
        return [e for g in self.groups for e in g.entries]

    def text(self) -> str:
        out: list[str] = []
        for g in self.groups:
            where = str(g.input_path) if g.input_path else "not on disk (or changed)"
            out.append(f"image {g.image_hash}  input: {where}  ({len(g.entries)} results)")
            for e in g.entries:
                rows = _field_rows(e, self.now)
                width = max(len(k) for k, _ in rows)
                out.append("")
                out.extend(f"  {k.ljust(width)}  {v}" for k, v in rows)
            out.append("")
        return "\n".join(out).rstrip()

    def html(self) -> str:
        parts: list[str] = []
        for g in self.groups:
            label = g.input_path.name if g.input_path else "input"
            figures = [_figure(thumbnail_uri(g.input_path), f"input: {label}")]
            for e in g.entries:
                path = e.path if e.path.is_file() else None
                figures.append(_figure(thumbnail_uri(path), f"{_title(e)} · {e.backend}"))
            parts.append(heading(f"image {g.image_hash[:16]} — {len(g.entries)} results"))
            parts.append(
                '<div style="display:flex;gap:16px;flex-wrap:wrap;align-items:flex-end;'
                f'margin:4px 0 8px 0">{"".join(figures)}</div>'
            )
            fields = [_field_rows(e, self.now) for e in g.entries]
            names = [name for name, _ in fields[0]]
            rows = [[name, *(dict(f).get(name, "") for f in fields)] for name in names]
            headers = ["", *(_title(e) for e in g.entries)]
            parts.append(Table(headers, rows, wrap=True).html())
        return "".join(parts)
