"""``run``: per image, whether it was a cache hit or fresh and where the result is."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..formatting import Table
from .base import Report, note

if TYPE_CHECKING:
    from ..batch_results import Plan
    from ..results import Result

__all__ = ["RunItem", "RunPlan", "RunSummary"]


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
        return table.html() + note(self.footer())


@dataclass(repr=False)
class RunPlan(Report):
    """``run --dry-run``: how many images are hits and how many would be fresh calls."""

    operation: str
    plan: Plan

    def text(self) -> str:
        return f"{self.operation} (dry run, nothing called): {self.plan}."

    def html(self) -> str:
        return note(f"{self.operation} (dry run, nothing called)") + self.plan._repr_html_()
