"""What the cache commands return: objects that show themselves as HTML in a notebook and as a
plain-text table in a terminal.

Each command in :mod:`nbimgprep.commands` returns one of these, so ``x = %imgcache list``
keeps the data (``x.entries``), the last line of a cell renders ``_repr_html_``, and the
command line prints ``str(report)`` and exits with ``report.exit_code``. Reports hold what the
store returned and render it; they never touch the store again (thumbnails read files only).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import html
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .arguments import CLEAN_CONFIRM_LIMIT, format_size
from .operations import OPERATIONS
from .thumbnails import CHECKERBOARD_CSS, LISTING_PX, thumbnail_of_file

if TYPE_CHECKING:
    from .processor import Result
    from .store import Entry, ImportReport, StoreStats, VerifyReport

__all__ = [
    "CacheInspection",
    "CacheListing",
    "CacheStats",
    "CleanSummary",
    "ExportSummary",
    "ImportSummary",
    "RemovalSummary",
    "Report",
    "RunItem",
    "RunSummary",
    "VerifySummary",
    "thumbnail_uri",
]

#: An HTML listing shows at most this many rows (the object keeps them all).
HTML_ROW_LIMIT = 500

_TABLE_STYLE = "border-collapse:collapse;font-size:0.9em"
_CELL_STYLE = "padding:2px 8px;text-align:{align};vertical-align:top;white-space:nowrap"


class Markup(str):
    """A table cell that is already HTML (a thumbnail): rendered as is, not escaped."""


@dataclass(frozen=True)
class Table:
    """Headers and rows of strings, rendered as aligned text or as an HTML table."""

    headers: Sequence[str]
    rows: Sequence[Sequence[str]]
    right: frozenset[int] = frozenset()
    #: Let long values (paths, hashes) wrap in HTML instead of widening the table.
    wrap: bool = False

    def text(self) -> str:
        plain = [[_plain(c) for c in row] for row in self.rows]
        widths = [len(h) for h in self.headers]
        for row in plain:
            for i, cell in enumerate(row):
                widths[i] = max(widths[i], len(cell))

        def line(cells: Sequence[str]) -> str:
            out = [
                c.rjust(widths[i]) if i in self.right else c.ljust(widths[i])
                for i, c in enumerate(cells)
            ]
            return "  ".join(out).rstrip()

        rule = "  ".join("-" * w for w in widths)
        return "\n".join([line(self.headers), rule, *(line(r) for r in plain)])

    def html(self, limit: int | None = None) -> str:
        rows = self.rows if limit is None else self.rows[:limit]

        def cell(tag: str, i: int, value: str) -> str:
            style = _CELL_STYLE.format(align="right" if i in self.right else "left")
            if self.wrap and i > 0:
                style += ";white-space:normal;overflow-wrap:anywhere;max-width:24em"
            body = value if isinstance(value, Markup) else html.escape(value)
            return f'<{tag} style="{style}">{body}</{tag}>'

        head = "".join(cell("th", i, h) for i, h in enumerate(self.headers))
        body = "".join(
            "<tr>" + "".join(cell("td", i, c) for i, c in enumerate(row)) + "</tr>" for row in rows
        )
        return (
            f'<table class="nbimgprep" style="{_TABLE_STYLE}">'
            f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
        )


def _plain(cell: str) -> str:
    return "" if isinstance(cell, Markup) else cell


class Report:
    """Base of every command's result: ``_repr_html_``, a text ``__str__``, an exit code."""

    @property
    def exit_code(self) -> int:
        """What the command line exits with: 0 done, 1 refused or damage found."""
        return 0

    def text(self) -> str:
        raise NotImplementedError

    def html(self) -> str:
        raise NotImplementedError

    def _repr_html_(self) -> str:
        return f'<div class="nbimgprep-report">{self.html()}</div>'

    def __str__(self) -> str:
        return self.text()

    def __repr__(self) -> str:
        return self.text()


# -- formatting helpers ----------------------------------------------------------------------


def format_age(seconds: float) -> str:
    """``"5m"``, ``"3h"``, ``"12d"``: how long ago, to one unit."""
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{int(seconds)}s"
    if seconds < 3600:
        return f"{int(seconds // 60)}m"
    if seconds < 86400:
        return f"{int(seconds // 3600)}h"
    return f"{int(seconds // 86400)}d"


def format_time(epoch: float | None, now: float) -> str:
    """Local date and time, and how long ago: ``"2025-05-09 07:35 (3h ago)"``."""
    if epoch is None:
        return "never"
    stamp = dt.datetime.fromtimestamp(epoch).strftime("%Y-%m-%d %H:%M")
    return f"{stamp} ({format_age(now - epoch)} ago)"


def format_params(params: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(params.items())) or "-"


def _title(entry: Entry) -> str:
    """``"upscale 2x"``, ``"face detail"``."""
    op = OPERATIONS.get(entry.operation)
    return op.describe(entry.params) if op is not None else entry.operation


def _heading(text: str) -> str:
    return f"<p style='margin:4px 0'><b>{html.escape(text)}</b></p>"


def _note(text: str) -> str:
    return f"<p style='margin:4px 0;color:#666'>{html.escape(text)}</p>"


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


# -- list ------------------------------------------------------------------------------------

_LIST_HEADERS = ("key", "image", "operation", "endpoint", "size", "dimensions", "age", "hits")


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
            return _note(self._summary())
        parts = [self.table().html(limit=HTML_ROW_LIMIT), _note(self._summary())]
        if len(self.entries) > HTML_ROW_LIMIT:
            parts.append(
                _note(
                    f"Showing the first {HTML_ROW_LIMIT} rows; all {len(self.entries)} are in "
                    "the returned object's .entries (use --limit to choose)."
                )
            )
        return "".join(parts)

    def __len__(self) -> int:
        return len(self.entries)


# -- inspect ---------------------------------------------------------------------------------


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
            parts.append(_heading(f"image {g.image_hash[:16]} — {len(g.entries)} results"))
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


# -- stats -----------------------------------------------------------------------------------


def _as_mapping(value: Any) -> dict[str, Any]:
    if isinstance(value, Mapping):
        return dict(value)
    return {"entries": value}


_STAT_NAMES = {
    "bytes": "bytes on disk",
    "hit_rate": "hit rate",
    "seconds_saved": "backend seconds saved",
}


def _stat_cell(name: str, value: Any) -> str:
    if name in ("bytes", "size"):
        return format_size(value)
    if name == "hit_rate":
        return f"{value:.0%}" if value is not None else "-"
    if name.endswith("seconds") or name.startswith("seconds"):
        return f"{value:.1f} s"
    return str(value)


@dataclass(repr=False)
class CacheStats(Report):
    """``stats``: totals, and the same per operation."""

    stats: StoreStats
    root: Path

    def _tables(self) -> tuple[Table, Table | None]:
        st = self.stats
        totals = {
            "entries": st.entries,
            "bytes": st.bytes,
            "hits": st.hits,
            "misses": st.misses,
            "hit_rate": st.hit_rate,
            "seconds_saved": st.seconds_saved,
        }
        summary = Table(
            ("", "value"),
            [(_STAT_NAMES.get(k, k), _stat_cell(k, v)) for k, v in totals.items()],
            right=frozenset({1}),
        )
        per_op = {op: _as_mapping(v) for op, v in sorted(self.stats.by_operation.items())}
        if not per_op:
            return summary, None
        columns = list(dict.fromkeys(k for v in per_op.values() for k in v))
        rows = [
            [op, *(_stat_cell(c, v[c]) if c in v else "" for c in columns)]
            for op, v in per_op.items()
        ]
        return summary, Table(
            ["operation", *(_STAT_NAMES.get(c, c) for c in columns)],
            rows,
            right=frozenset(range(1, len(columns) + 1)),
        )

    def text(self) -> str:
        summary, per_op = self._tables()
        out = [f"store: {self.root}", summary.text()]
        if per_op is not None:
            out += ["", per_op.text()]
        return "\n".join(out)

    def html(self) -> str:
        summary, per_op = self._tables()
        parts = [_heading(f"nbimgprep cache at {self.root}"), summary.html()]
        if per_op is not None:
            parts += [_heading("per operation"), per_op.html()]
        return "".join(parts)


# -- clean, rm -------------------------------------------------------------------------------


def _entries_table(entries: Iterable[Entry], now: float) -> Table:
    rows = [
        (
            e.key[:12],
            e.image_hash[:12],
            e.operation,
            format_size(e.size),
            format_age(now - e.created),
            format_age(now - e.last_hit) if e.last_hit is not None else "never",
            str(e.hits),
        )
        for e in entries
    ]
    return Table(
        ("key", "image", "operation", "size", "age", "last hit", "hits"),
        rows,
        right=frozenset({3, 4, 5, 6}),
    )


@dataclass(repr=False)
class CleanSummary(Report):
    """``clean``: what went (or would go), and why nothing went when ``--yes`` was missing."""

    removed: list[Entry]
    freed_bytes: int
    criteria: str
    now: float
    dry_run: bool = False
    refused: bool = False

    @property
    def exit_code(self) -> int:
        return 1 if self.refused else 0

    def _message(self) -> str:
        n, size = len(self.removed), format_size(self.freed_bytes)
        why = f"Criteria: {self.criteria}."
        if not self.removed:
            return f"Nothing to clean. {why}"
        if self.refused:
            return (
                f"Nothing removed: this clean would remove {n} entries ({size}), more than "
                f"{CLEAN_CONFIRM_LIMIT}. Add --yes to remove them. {why}"
            )
        if self.dry_run:
            return f"Dry run: would remove {n} entries, freeing {size}. {why}"
        return f"Removed {n} entries, freed {size}. {why}"

    def text(self) -> str:
        if not self.removed:
            return self._message()
        return f"{_entries_table(self.removed, self.now).text()}\n{self._message()}"

    def html(self) -> str:
        if not self.removed:
            return _note(self._message())
        return _heading(self._message()) + _entries_table(self.removed, self.now).html(
            limit=HTML_ROW_LIMIT
        )


@dataclass(repr=False)
class RemovalSummary(Report):
    """``rm``: the entries that were deleted."""

    query: str
    removed: list[Entry]
    now: float

    def _message(self) -> str:
        freed = format_size(sum(e.size for e in self.removed))
        return f"Removed {len(self.removed)} entries matching {self.query!r}, freed {freed}."

    def text(self) -> str:
        return f"{_entries_table(self.removed, self.now).text()}\n{self._message()}"

    def html(self) -> str:
        return _heading(self._message()) + _entries_table(self.removed, self.now).html()


# -- verify, export, import ------------------------------------------------------------------


@dataclass(repr=False)
class VerifySummary(Report):
    """``verify``: how many results were checked, and the damaged ones that were dropped."""

    report: VerifyReport
    now: float

    @property
    def exit_code(self) -> int:
        return 1 if self.report.damaged or not self.report.index_ok else 0

    def _message(self) -> str:
        r = self.report
        index = "" if r.index_ok else " The index failed its integrity check."
        if not r.damaged:
            return f"Checked {r.checked} results: all intact.{index}"
        fixed = "; their entries were dropped" if r.fixed else ""
        return f"Checked {r.checked} results: {len(r.damaged)} damaged{fixed}.{index}"

    def _table(self) -> Table:
        rows = [(e.key[:12], e.operation, str(e.path), reason) for e, reason in self.report.damaged]
        return Table(("key", "operation", "path", "problem"), rows)

    def text(self) -> str:
        if not self.report.damaged:
            return self._message()
        return f"{self._table().text()}\n{self._message()}"

    def html(self) -> str:
        if not self.report.damaged:
            return _note(self._message())
        return _heading(self._message()) + self._table().html()


@dataclass(repr=False)
class ExportSummary(Report):
    """``export``: where the legacy JSON went and how many entries it holds."""

    path: Path
    count: int
    format: str = "legacy"

    def text(self) -> str:
        return f"Exported {self.count} results to {self.path} ({self.format} format)."

    def html(self) -> str:
        return _note(self.text())


@dataclass(repr=False)
class ImportSummary(Report):
    """``import``: imported, already present, and skipped because the file was missing."""

    path: Path
    report: ImportReport

    def text(self) -> str:
        r = self.report
        lines = [
            f"Imported {r.imported} results from {self.path}; {r.already_present} were "
            f"already in the store; {len(r.skipped_missing)} skipped (result file missing)"
            + (f"; {len(r.invalid)} unreadable." if r.invalid else ".")
        ]
        lines += [f"  missing: {p}" for p in r.skipped_missing]
        lines += [f"  unreadable: {p}" for p in r.invalid]
        return "\n".join(lines)

    def html(self) -> str:
        return "".join(_note(line) for line in self.text().splitlines())


# -- run -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunItem:
    """One image of ``run``: its result, or what went wrong."""

    image: str
    result: Result | None = None
    error: str | None = None

    @property
    def status(self) -> str:
        if self.result is None:
            return "failed"
        return "hit" if self.result.cache_hit else "fresh"

    def line(self) -> str:
        if self.result is None:
            return f"failed  {self.image}: {self.error}"
        return f"{self.status:<6}  {self.image} -> {self.result.path}"


@dataclass(repr=False)
class RunSummary(Report):
    """``run``: per image, hit or fresh and the result's path, or the error."""

    operation: str
    items: list[RunItem] = field(default_factory=list)

    @property
    def failed(self) -> list[RunItem]:
        return [i for i in self.items if i.result is None]

    @property
    def exit_code(self) -> int:
        return 1 if self.failed else 0

    def footer(self) -> str:
        hits = sum(1 for i in self.items if i.status == "hit")
        fresh = sum(1 for i in self.items if i.status == "fresh")
        return (
            f"{self.operation}: {len(self.items)} images, {hits} cache hits, {fresh} fresh, "
            f"{len(self.failed)} failed."
        )

    def text(self) -> str:
        return "\n".join([*(i.line() for i in self.items), self.footer()])

    def html(self) -> str:
        rows = [
            (
                i.status,
                i.image,
                str(i.result.path) if i.result else (i.error or ""),
                f"{i.result.elapsed:.2f} s" if i.result else "",
            )
            for i in self.items
        ]
        table = Table(("", "image", "result", "time"), rows, right=frozenset({3}))
        return table.html() + _note(self.footer())
