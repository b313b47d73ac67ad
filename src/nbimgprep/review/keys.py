"""What each key does while the Review grid has the focus: a method of the Review (the same
as a button), or a move of the selection, worked out here on the list of shown items."""

from __future__ import annotations

from typing import Literal

__all__ = ["KEYS", "Move", "moved"]

Move = tuple[Literal["tile", "row", "page"], int]

#: Each key: the name of the Review method it calls, or a move by one tile, row or page.
KEYS: dict[str, str | Move] = {
    "ArrowLeft": ("tile", -1),
    "ArrowRight": ("tile", 1),
    "ArrowUp": ("row", -1),
    "ArrowDown": ("row", 1),
    "PageUp": ("page", -1),
    "PageDown": ("page", 1),
    "a": "accept",
    "r": "reject",
    "u": "clear",
    "Enter": "open",
}


def moved(move: Move, at: int | None, page: int, page_size: int, shown: int, columns: int) -> int:
    """The place (in the ``shown`` items) the selection goes to from place ``at`` (None: not
    shown) on ``page``: a tile or a row (``columns`` tiles) on, or the same place on the next
    page; a selection off the page starts on its first tile. Never past either end."""
    kind, step = move
    first = page * page_size
    on_page = -1 if at is None else at - first
    if not 0 <= on_page < page_size:
        to = first + (step * page_size if kind == "page" else 0)
    elif kind == "page":
        to = first + step * page_size + on_page
    else:
        to = first + on_page + step * (max(1, columns) if kind == "row" else 1)
    return min(max(to, 0), shown - 1)
