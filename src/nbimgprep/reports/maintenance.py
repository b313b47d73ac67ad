"""``stats``, ``clean``, ``rm``, ``verify``, ``export`` and ``import``: what looking after the
store found or did, rendered from what the store returned."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..formatting import Table, format_size
from .base import HTML_ROW_LIMIT, Report, entries_table, heading, note

if TYPE_CHECKING:
    from ..store import Entry, ImportOutcome, StoreStats, VerifyOutcome

__all__ = [
    "CacheStats",
    "CleanSummary",
    "ExportSummary",
    "ImportSummary",
    "RemovalSummary",
    "VerifySummary",
]

_STAT_NAMES = {
    "bytes": "bytes on disk",
    "hit_rate": "hit rate",
    "seconds_saved": "backend seconds saved",
}


def _as_mapping(value: Any) -> dict[str, Any]:
    """One operation's figures as ``{name: value}``, from a dict or a dataclass."""
    if isinstance(value, Mapping):
        return dict(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    return {"entries": value}


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
        parts = [heading(f"nbimgprep cache at {self.root}"), summary.html()]
        if per_op is not None:
            parts += [heading("per operation"), per_op.html()]
        return "".join(parts)


@dataclass(repr=False)
class CleanSummary(Report):
    """``clean``: what went (or would go), and why nothing went when ``--yes`` was missing."""

    removed: list[Entry]
    freed_bytes: int
    criteria: str
    now: float
    dry_run: bool = False
    refused: bool = False
    #: The most entries a clean removes without ``--yes`` (named when it was refused).
    confirm_limit: int | None = None
    #: Result files no entry pointed to, removed (or, dry, to be removed), and their bytes.
    orphans: int = 0
    orphan_bytes: int = 0

    @property
    def exit_code(self) -> int:
        return 1 if self.refused else 0

    def _message(self) -> str:
        n, size = len(self.removed), format_size(self.freed_bytes)
        why = f"Criteria: {self.criteria}."
        if not self.removed and not self.orphans:
            return f"Nothing to clean. {why}"
        if self.refused:
            more = f", more than {self.confirm_limit}" if self.confirm_limit is not None else ""
            return (
                f"Nothing removed: this clean would remove {n} entries ({size}){more}. "
                f"Add --yes to remove them. {why}"
            )
        also = ""
        if self.orphans:
            also = (
                f"; and {self.orphans} orphan result files no entry pointed to "
                f"({format_size(self.orphan_bytes)})"
            )
        if self.dry_run:
            return f"Dry run: would remove {n} entries, freeing {size}{also}. {why}"
        return f"Removed {n} entries, freed {size}{also}. {why}"

    def text(self) -> str:
        if not self.removed:
            return self._message()
        return f"{entries_table(self.removed, self.now).text()}\n{self._message()}"

    def html(self) -> str:
        if not self.removed:
            return note(self._message())
        return heading(self._message()) + entries_table(self.removed, self.now).html(
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
        return f"{entries_table(self.removed, self.now).text()}\n{self._message()}"

    def html(self) -> str:
        return heading(self._message()) + entries_table(self.removed, self.now).html()


@dataclass(repr=False)
class VerifySummary(Report):
    """``verify``: how many results were checked, and the damaged ones that were dropped."""

    report: VerifyOutcome
    now: float

    @property
    def exit_code(self) -> int:
        return 1 if self.report.damaged or not self.report.index_ok else 0

    def _message(self) -> str:
        r = self.report
        notes = "" if r.index_ok else " The index failed its integrity check."
        if r.orphans:
            notes += (
                f" {r.orphans} orphan result files no entry points to "
                f"({format_size(r.orphan_bytes)}): `clean` removes them."
            )
        if not r.damaged:
            return f"Checked {r.checked} results: all intact.{notes}"
        fixed = "; their entries were dropped" if r.fixed else ""
        return f"Checked {r.checked} results: {len(r.damaged)} damaged{fixed}.{notes}"

    def _table(self) -> Table:
        rows = [(e.key[:12], e.operation, str(e.path), reason) for e, reason in self.report.damaged]
        return Table(("key", "operation", "path", "problem"), rows)

    def text(self) -> str:
        if not self.report.damaged:
            return self._message()
        return f"{self._table().text()}\n{self._message()}"

    def html(self) -> str:
        if not self.report.damaged:
            return note(self._message())
        return heading(self._message()) + self._table().html()


@dataclass(repr=False)
class ExportSummary(Report):
    """``export``: where the legacy JSON went, how many entries it holds, how many it left
    out and why, and the ``--root`` that imports it again."""

    path: Path
    count: int
    format: str = "legacy"
    left_out: Mapping[str, int] = dataclasses.field(default_factory=dict)
    root: Path | None = None

    def text(self) -> str:
        lines = [f"Exported {self.count} results to {self.path} ({self.format} format)."]
        lines += [f"{n} left out: {reason}." for reason, n in self.left_out.items()]
        if self.root is not None and self.count:
            lines.append(
                f"Its paths are relative to {self.root}: import it with --root {self.root}."
            )
        return "\n".join(lines)

    def html(self) -> str:
        return "".join(note(line) for line in self.text().splitlines())


@dataclass(repr=False)
class ImportSummary(Report):
    """``import``: imported, already present, and skipped, with the count of each reason."""

    path: Path
    report: ImportOutcome
    examples: int = 3

    def text(self) -> str:
        r = self.report
        lines = [
            f"Imported {r.imported} results from {self.path}; {r.already_present} were "
            f"already in the store; {len(r.skipped)} skipped."
        ]
        for reason, n in r.reasons.items():
            items = [s.item for s in r.skipped if s.reason == reason]
            shown = ", ".join(items[: self.examples]) + (", …" if n > self.examples else "")
            lines.append(f"  {n} skipped: {reason} ({shown})")
        return "\n".join(lines)

    def html(self) -> str:
        return "".join(note(line) for line in self.text().splitlines())
