"""How nbimgprep writes numbers and tables for people: sizes, ages, times, parameters, and a
:class:`Table` that renders as aligned text in a terminal or as HTML in a notebook.

Plain functions over plain values, shared by the reports, the argument grammar's help and the
widget, so a size or an age reads the same everywhere. Nothing here knows about the store or
the command line.
"""

from __future__ import annotations

import datetime as dt
import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["Markup", "Table", "format_age", "format_params", "format_size", "format_time"]

_TABLE_STYLE = "border-collapse:collapse;font-size:0.9em"
_CELL_STYLE = "padding:2px 8px;text-align:{align};vertical-align:top;white-space:nowrap"


def format_size(size: float) -> str:
    """Bytes for people: ``1536`` -> ``"1.5 KB"`` (powers of 1000, as ``--max-size`` reads them)."""
    value = float(size)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(value) < 1000 or unit == "TB":
            return f"{int(value)} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    raise AssertionError("unreachable")


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
    """``"scale=2"``, ``"a=1, b=x"``, or ``"-"`` when there are none."""
    return ", ".join(f"{k}={v}" for k, v in sorted(params.items())) or "-"


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
        plain = [["" if isinstance(c, Markup) else c for c in row] for row in self.rows]
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
