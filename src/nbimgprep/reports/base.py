"""The base every command's report shares, and the small HTML pieces reports are built from."""

from __future__ import annotations

import html
from collections.abc import Iterable
from typing import TYPE_CHECKING

from ..formatting import Table, format_age, format_size

if TYPE_CHECKING:
    from ..store import Entry

__all__ = ["HTML_ROW_LIMIT", "Report", "entries_table", "heading", "note"]

#: An HTML listing shows at most this many rows (the object keeps them all).
HTML_ROW_LIMIT = 500


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


def heading(text: str) -> str:
    """A bold line above a table."""
    return f"<p style='margin:4px 0'><b>{html.escape(text)}</b></p>"


def note(text: str) -> str:
    """A grey line: a summary, or what an empty result means."""
    return f"<p style='margin:4px 0;color:#666'>{html.escape(text)}</p>"


def entries_table(entries: Iterable[Entry], now: float) -> Table:
    """The entries a clean or rm removed: key, image, operation, size, age, last hit, hits."""
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
