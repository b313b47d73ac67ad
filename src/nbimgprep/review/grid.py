"""The Review widget: a paged grid of tiles, with buttons and keys for what the Python API does.

One small widget group per tile (the thumbnail as an ``ipywidgets.Image``, a caption, a
select button), made the first time its item is shown and kept: paging back shows widgets
the browser already has, so no thumbnail is sent twice. Only the visible page's thumbnails
are ever made; no full-resolution image is kept.
"""

from __future__ import annotations

import asyncio
import html
from typing import Any

import ipywidgets as widgets

from ..batch_results import BADGE_COLOURS
from ..thumbnails import CHECKERBOARD_CSS, thumbnail_of_file
from .items import FILTERS, ReviewItem
from .keyboard import KeyScope
from .keys import KEYS
from .review import Review

__all__ = ["TILE_PX", "ReviewGrid"]

#: The long side of a tile's thumbnail.
TILE_PX = 128
DECISION_COLOURS = {"accepted": "#1a7f37", "rejected": "#cf222e"}
#: The keys, as the page line shows them (what each does: ``Review.press``).
KEY_HINT = "keys, after a click on the grid: arrows, a/r/u, Enter opens, PageUp/PageDown"


class _Tile:
    """One item's widgets: the thumbnail (sent once), its caption and its select button."""

    def __init__(self, grid: ReviewGrid, item: ReviewItem) -> None:
        self.item = item
        self.image = widgets.Image(format="png", layout=widgets.Layout(max_width=f"{TILE_PX}px"))
        self.image.add_class("nbimgprep-review-picture")
        self.caption = widgets.HTML()
        self.button = widgets.Button(
            description=item.name[:18], tooltip=item.label, layout=widgets.Layout(width="auto")
        )
        self.button.on_click(lambda _: grid.review.select(item.index))
        self.box = widgets.VBox(
            [self.image, self.caption, self.button],
            layout=widgets.Layout(width=f"{TILE_PX + 12}px", padding="4px"),
        )
        self.box.add_class("nbimgprep-review-tile")
        self.sent = 0
        self.shown: object = None
        self.refresh()

    def refresh(self) -> None:
        """Show the item as it is now: only a new result (a redo, a retry) makes and sends
        a new thumbnail; a decision changes the caption alone."""
        item = self.item
        if item.result is not self.shown:
            self.shown = item.result
            thumb = None if item.result is None else thumbnail_of_file(item.result.path, TILE_PX)
            if thumb is not None:
                self.image.format = thumb.format
                self.image.value = thumb.data
                self.sent += len(thumb.data)
            self.image.layout.display = None if thumb is not None else "none"
        self.caption.value = _caption(item)

    def mark(self, selected: bool) -> None:
        border = "2px solid #0969da" if selected else "2px solid transparent"
        if self.box.layout.border != border:
            self.box.layout.border = border


def _caption(item: ReviewItem) -> str:
    status = item.status
    parts = [
        f'<span style="color:#fff;background:{BADGE_COLOURS[status]};border-radius:3px;'
        f'padding:0 4px">{status}</span>'
    ]
    if item.decision is not None:
        parts.append(
            f'<span style="color:{DECISION_COLOURS[item.decision]};font-weight:bold">'
            f"{item.decision}</span>"
        )
    parts += [
        f'<span style="background:#fff8c5;border-radius:3px;padding:0 3px">{html.escape(f)}</span>'
        for f in item.flags
    ]
    error = (
        f'<div style="color:#cf222e;font-size:10px;max-height:80px;overflow:hidden">'
        f"{html.escape(str(item.error))}</div>"
        if item.error is not None
        else ""
    )
    return f'<div style="font-size:11px;line-height:1.5">{" ".join(parts)}{error}</div>'


class ReviewGrid:
    """``grid.widget`` (what a cell shows), ``grid.tiles`` (those made so far, by item
    index) and ``grid.bytes_sent`` (thumbnail bytes handed to the browser)."""

    def __init__(self, review: Review) -> None:
        self.review = review
        self.tiles: dict[int, _Tile] = {}
        self.summary = widgets.HTML()
        self.status = widgets.HTML()
        self.page_label = widgets.HTML()
        self.filter = widgets.Dropdown(
            options=list(FILTERS), value=review.filter, description="show"
        )
        self.filter.observe(self._on_filter, names="value")
        self.buttons = {
            name: widgets.Button(description=label, tooltip=tip)
            for name, label, tip in (
                ("previous", "◀ page", "previous page"),
                ("next", "page ▶", "next page"),
                ("accept", "Accept", "accept the selected item"),
                ("reject", "Reject", "reject the selected item"),
                ("clear", "Undecide", "clear the selected item's decision"),
                ("open", "Open", "open the selected item below"),
                ("take", "Take result", "the result made below becomes the opened item's"),
                ("redo", "Redo selected", "a fresh call for the selected item"),
                ("retry", "Retry failed", "run the failed items again"),
            )
        }
        actions = {
            "previous": lambda: setattr(review, "page", review.page - 1),
            "next": lambda: setattr(review, "page", review.page + 1),
            "accept": review.accept,
            "reject": review.reject,
            "clear": review.clear,
            "open": review.open,
            "take": review.take,
            "redo": lambda: self._start(review.redo()),
            "retry": lambda: self._start(review.retry_failed()),
        }
        for name, button in self.buttons.items():
            button.on_click(lambda _, act=actions[name]: self._guarded(act))
        self.grid = widgets.GridBox(
            layout=widgets.Layout(
                grid_template_columns=f"repeat(auto-fill, {TILE_PX + 16}px)", grid_gap="4px"
            )
        )
        self.keys = KeyScope(
            self.grid,
            KEYS,
            lambda key, columns: self._guarded(lambda: review.press(key, columns)),
        )
        self.grid.add_class("nbimgprep-review-grid")
        self.below = widgets.Box()
        # Behind a picture with transparency, the checkerboard every face uses.
        style = widgets.HTML(
            f"<style>.nbimgprep-review-picture{{{CHECKERBOARD_CSS}}}"
            ".nbimgprep-review-grid:focus{outline:1px dashed #8c959f;outline-offset:2px}</style>"
        )
        self.widget = widgets.VBox(
            [
                style,
                self.summary,
                widgets.HBox(
                    [self.filter, *self.buttons.values()], layout={"flex_flow": "row wrap"}
                ),
                self.page_label,
                self.grid,
                self.status,
                self.below,
                self.keys,
            ]
        )
        self.widget.add_class("nbimgprep-review")
        review.on_change(self._on_change)
        self._show_page()

    @property
    def bytes_sent(self) -> int:
        return sum(tile.sent for tile in self.tiles.values())

    def _tile(self, item: ReviewItem) -> _Tile:
        tile = self.tiles.get(item.index)
        if tile is None:
            tile = self.tiles[item.index] = _Tile(self, item)
        return tile

    def _show_page(self) -> None:
        review = self.review
        selected = review.selected
        tiles = [self._tile(item) for item in review.page_items]
        for tile in tiles:
            tile.mark(tile.item.index == selected)
        boxes = tuple(tile.box for tile in tiles)
        if self.grid.children != boxes:
            self.grid.children = boxes
        self.page_label.value = (
            f"<small>page {review.page + 1} of {review.pages} · {len(review.shown)} shown"
            f" · {KEY_HINT}</small>"
        )
        self.summary.value = f"<b>{html.escape(review.summary)}</b>"
        below = (review.prep,) if review.prep is not None else ()
        if self.below.children != below:
            self.below.children = below
        if self.filter.value != review.filter:
            self.filter.value = review.filter

    def _on_change(self, indexes: set[int]) -> None:
        for index in indexes:
            tile = self.tiles.get(index)
            if tile is not None:
                tile.refresh()
        self._show_page()

    def _on_filter(self, change: dict[str, Any]) -> None:
        if change["new"] != self.review.filter:
            self.review.filter = change["new"]

    def _guarded(self, action: Any) -> None:
        try:
            action()
            self.status.value = ""
        except Exception as exc:  # a face shows the error instead of losing it
            self.status.value = f'<span style="color:#cf222e">{html.escape(str(exc))}</span>'

    def _start(self, coro: Any) -> None:
        task = asyncio.get_event_loop().create_task(coro)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[Any]) -> None:
        exc = task.exception() if not task.cancelled() else None
        if exc is not None:
            self.status.value = f'<span style="color:#cf222e">{html.escape(str(exc))}</span>'
