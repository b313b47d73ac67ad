"""The shared tier's reports: ``stats --shared``, ``verify --shared``, ``push``/``pull``, and a
frame that names the shared cache above any other report (``list``, ``inspect``, ``clean`` with
``--shared``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..formatting import Table, format_size
from .base import Report, heading, note
from .maintenance import VerifySummary

__all__ = ["OnShared", "SharedStats", "SharedVerifySummary", "TransferSummary"]


@dataclass(repr=False)
class OnShared(Report):
    """Another report, about the shared cache at ``url`` rather than the local store."""

    url: str
    report: Report

    @property
    def exit_code(self) -> int:
        return self.report.exit_code

    def __getattr__(self, name: str) -> Any:  # x.entries, x.removed... of the inner report
        if name in ("url", "report"):
            raise AttributeError(name)
        return getattr(self.report, name)

    def text(self) -> str:
        return f"Shared cache {self.url}\n{self.report.text()}"

    def html(self) -> str:
        return heading(f"Shared cache {self.url}") + self.report.html()


@dataclass(repr=False)
class SharedStats(Report):
    """``stats --shared``: records, blobs and bytes, per operation."""

    url: str
    records: int
    blobs: int
    blob_bytes: int
    by_operation: dict[str, tuple[int, int]]
    unreadable: int = 0

    def _summary(self) -> str:
        damaged = f", {self.unreadable} unreadable records" if self.unreadable else ""
        return (
            f"Shared cache {self.url}: {self.records} entries, {self.blobs} result files, "
            f"{format_size(self.blob_bytes)}{damaged}."
        )

    def table(self) -> Table:
        rows = [
            (op, str(n), format_size(size)) for op, (n, size) in sorted(self.by_operation.items())
        ]
        return Table(("operation", "entries", "size"), rows, right=frozenset({1, 2}))

    def text(self) -> str:
        if not self.by_operation:
            return self._summary()
        return f"{self._summary()}\n{self.table().text()}"

    def html(self) -> str:
        if not self.by_operation:
            return note(self._summary())
        return heading(self._summary()) + self.table().html()


@dataclass(repr=False)
class SharedVerifySummary(VerifySummary):
    """``verify --shared``: the records whose blob was re-hashed, the damaged ones (report
    only: nothing is removed from a team's cache), and the records that cannot be read."""

    unreadable: int = 0

    @property
    def exit_code(self) -> int:
        return 1 if self.report.damaged or self.unreadable else 0

    def _message(self) -> str:
        text = super()._message()
        if self.unreadable:
            text += f" {self.unreadable} records cannot be read."
        if self.exit_code:
            text += (
                " Nothing was removed: each is a miss, never a wrong hit, and the next fresh "
                "result of its key uploads a sound copy."
            )
        return text


@dataclass(repr=False)
class TransferSummary(Report):
    """``push`` or ``pull``: how many entries moved, how many were there already."""

    direction: str
    url: str
    moved: list[str]
    present: int
    failed: int

    @property
    def exit_code(self) -> int:
        return 1 if self.failed else 0

    def text(self) -> str:
        where = "to" if self.direction == "push" else "from"
        verb = "Uploaded" if self.direction == "push" else "Copied"
        failed = f"; {self.failed} could not be moved" if self.failed else ""
        return (
            f"{verb} {len(self.moved)} entries {where} the shared cache {self.url} "
            f"({self.present} already there){failed}."
        )

    def html(self) -> str:
        return note(self.text())
