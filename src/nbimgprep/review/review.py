""":class:`Review`: look through a batch, accept, reject, redo and export, from Python or
from its widget (the same calls behind the buttons and keys, see :mod:`.grid`).

Building a Review reads no image: the items come from the batch, the decisions from two
tag queries. Flags and thumbnails are made when an item is first shown or filtered on.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..batch_results import Batch
from ..errors import NbimgprepError, OperationError
from ..results import Result
from .exporting import export_items
from .items import DECISIONS, FILTERS, Decision, Filter, ReviewItem
from .keys import KEYS, moved

if TYPE_CHECKING:
    from ..processor import Processor
    from ..widget import ImagePrep
    from .grid import ReviewGrid

__all__ = ["PAGE_SIZE", "Review"]

#: Tiles on a page of the grid.
PAGE_SIZE = 48


class Review:
    """A batch to look through: ``review.items``, ``accept(i)``, ``reject(i)``,
    ``clear(i)``, ``await redo(i)``, ``await retry_failed()``, ``open(i)`` and ``take()``,
    ``export(folder)``.

    Decisions are kept as tags on the results' cache entries ("accepted", "rejected"), so a
    new Review of the same batch, in a new kernel, shows them. Shown as a cell's value, a
    Review is a paged grid of tiles with the same controls.
    """

    def __init__(
        self,
        batch: Batch,
        processor: Processor | None = None,
        *,
        page_size: int = PAGE_SIZE,
    ) -> None:
        proc = processor if processor is not None else batch.processor
        if proc is None:
            raise NbimgprepError(
                "This batch does not know the Processor that ran it; "
                "pass it: Review(batch, processor=proc)."
            )
        if page_size < 1:
            raise OperationError(f"page_size={page_size} must be at least 1.")
        self._proc = proc
        self._batch = batch
        self.page_size = page_size
        decided = {d: proc.tagged(d) for d in DECISIONS}
        self.items: list[ReviewItem] = [
            ReviewItem(
                i,
                it.source,
                it.label,
                it.result,
                it.error,
                _decision_of(it.result, decided),
            )
            for i, it in enumerate(batch.items)
        ]
        self._filter: Filter = "all"
        self._page = 0
        self.selected: int | None = 0 if self.items else None
        #: The ImagePrep of the item last opened (``open(i)``), shown below the grid.
        self.prep: ImagePrep | None = None
        self._opened: int | None = None
        self._listeners: list[Callable[[set[int]], object]] = []
        self._grid: ReviewGrid | None = None

    # -- what is shown ----------------------------------------------------------------------

    @property
    def processor(self) -> Processor:
        return self._proc

    @property
    def filter(self) -> Filter:
        """Which items the grid shows: all, flagged, rejected, accepted, failed, undecided."""
        return self._filter

    @filter.setter
    def filter(self, which: Filter) -> None:
        if which not in FILTERS:
            raise OperationError(f"filter={which!r} is not one; use one of {', '.join(FILTERS)}.")
        self._filter = which
        self._page = 0
        self._changed()

    @property
    def shown(self) -> list[ReviewItem]:
        """The items the filter lets through, in batch order."""
        return [item for item in self.items if item.matches(self._filter)]

    @property
    def pages(self) -> int:
        return max(1, -(-len(self.shown) // self.page_size))

    @property
    def page(self) -> int:
        """The page shown, from 0."""
        return self._page

    @page.setter
    def page(self, number: int) -> None:
        self._page = min(max(0, int(number)), self.pages - 1)
        self._changed()

    @property
    def page_items(self) -> list[ReviewItem]:
        start = self._page * self.page_size
        return self.shown[start : start + self.page_size]

    @property
    def counts(self) -> dict[str, int]:
        """How many items are hits, fresh, failed, accepted, rejected, undecided (no flags:
        counting them would compute every item's)."""
        counts = dict.fromkeys(("hit", "fresh", "failed", "accepted", "rejected", "undecided"), 0)
        for item in self.items:
            counts[item.status] += 1
            if item.result is not None:
                counts[item.decision or "undecided"] += 1
        return counts

    @property
    def summary(self) -> str:
        """``60 items: 48 hits, 12 fresh, 0 failed · 3 accepted, 1 rejected, 56 undecided``"""
        c = self.counts
        return (
            f"{len(self.items)} items: {c['hit']} hits, {c['fresh']} fresh, {c['failed']} failed"
            f" · {c['accepted']} accepted, {c['rejected']} rejected, {c['undecided']} undecided"
        )

    # -- selecting and deciding -------------------------------------------------------------

    def select(self, index: int) -> ReviewItem:
        """Select item ``index`` (its place in the batch)."""
        item = self._item(index)
        before, self.selected = self.selected, index
        self._changed({index} | ({before} if before is not None else set()))
        return item

    def accept(self, index: int | None = None) -> None:
        """Accept item ``index`` (default: the selected one); kept as the tag "accepted"."""
        self._decide(index, "accepted")

    def reject(self, index: int | None = None) -> None:
        """Reject item ``index`` (default: the selected one); kept as the tag "rejected"."""
        self._decide(index, "rejected")

    def clear(self, index: int | None = None) -> None:
        """Take back the decision on item ``index`` (default: the selected one)."""
        self._decide(index, None)

    def _decide(self, index: int | None, decision: Decision | None) -> None:
        item = self._item(self._chosen(index))
        if item.result is None:
            raise OperationError(f"{item.label} failed; there is no result to decide on.")
        others = [d for d in DECISIONS if d != decision]
        self._proc.untag(item.result, *others)
        if decision is not None:
            self._proc.tag(item.result, decision)
        item.decision = decision
        self._changed({item.index})

    @property
    def accepted(self) -> list[Result]:
        return [i.result for i in self.items if i.decision == "accepted" and i.result]

    @property
    def rejected(self) -> list[Result]:
        return [i.result for i in self.items if i.decision == "rejected" and i.result]

    # -- keys -------------------------------------------------------------------------------

    def press(self, key: str, columns: int = 1) -> None:
        """Do what ``key`` does while the grid has the focus (the widget calls this; so can
        you): the arrows move the selection (up and down by ``columns``, the tiles in a
        row), PageDown and PageUp turn the page keeping the selection's place on it,
        **a** accepts, **r** rejects, **u** clears the decision, Enter opens the item."""
        action = KEYS.get(key)
        if action is None:
            raise OperationError(f"{key!r} does nothing here; the keys are {', '.join(KEYS)}.")
        if isinstance(action, str):
            getattr(self, action)()
            return
        shown = [item.index for item in self.shown]
        if shown:
            at = shown.index(self.selected) if self.selected in shown else None
            to = moved(action, at, self._page, self.page_size, len(shown), columns)
            self._page = to // self.page_size
            self.select(shown[to])

    # -- doing again ------------------------------------------------------------------------

    async def redo(
        self, index: int | None = None, endpoint: str | None = None, **params: Any
    ) -> Result:
        """A fresh call for item ``index`` (default: the selected one), with other
        ``params`` or another ``endpoint`` if given. The new result replaces the item's and
        starts undecided; an error leaves the item as it was and is raised."""
        item = self._item(self._chosen(index))
        result = await self._proc.run(
            self._batch.operation,
            item.source,
            refresh=True,
            endpoint=endpoint,
            **{**self._batch.params, **params},
        )
        item.outcome(result, None)
        self._changed({item.index})
        return result

    async def retry_failed(self) -> list[Result]:
        """Run every failed item again (hits where a result is cached since); returns the
        results of those that now succeed. Those that fail again keep their new error."""
        failed = [item for item in self.items if item.result is None]
        if not failed:
            return []
        batch = await self._proc.run_many(
            self._batch.operation,
            [item.source for item in failed],
            progress=False,
            **self._batch.params,
        )
        done: list[Result] = []
        for item, outcome in zip(failed, batch.items, strict=True):
            item.outcome(outcome.result, outcome.error)
            if outcome.result is not None:
                done.append(outcome.result)
        self._changed({item.index for item in failed})
        return done

    def open(self, index: int | None = None) -> ImagePrep:
        """An :class:`~nbimgprep.ImagePrep` of item ``index``'s input (default: the
        selected one), shown below the grid: crop, another operation, use its result."""
        from ..widget import ImagePrep

        item = self._item(self._chosen(index))
        self.prep = ImagePrep(item.source, self._proc)
        self._opened = item.index
        self._changed(set())
        return self.prep

    def take(self) -> Result:
        """Make the result of the opened ImagePrep (a crop and another operation, say) the
        opened item's result: its tile shows it, it starts undecided, and ``export``
        copies it under the input's name."""
        if self.prep is None or self._opened is None:
            raise OperationError(
                "No item is open: open one (review.open(i), or Enter), make a result in its "
                "ImagePrep, then take it."
            )
        item = self.items[self._opened]
        result = self.prep.result
        if result is None:
            raise OperationError(
                f"The ImagePrep of {item.name} has no result yet: press an operation there."
            )
        item.outcome(result, None, made_from=self.prep.result_input)
        self._changed({item.index})
        return result

    # -- exporting --------------------------------------------------------------------------

    def export(
        self,
        folder: str | os.PathLike[str],
        which: Decision | Filter = "accepted",
        overwrite: bool = False,
    ) -> list[Path]:
        """Copy the ``which`` results (default: the accepted ones; or any filter's) to
        ``folder`` (created if needed), each named as its input's stem with the result's
        suffix. Returns the paths. A name that exists, with ``overwrite`` false, raises an
        :class:`~nbimgprep.NbimgprepError` naming it, and nothing is written."""
        if which not in FILTERS:
            raise OperationError(f"which={which!r} is not one; use one of {', '.join(FILTERS)}.")
        chosen = [i for i in self.items if i.result is not None and i.matches(which)]
        return export_items(chosen, folder, overwrite=overwrite)

    # -- the widget -------------------------------------------------------------------------

    @property
    def grid(self) -> ReviewGrid:
        """The widget, made on first use (a Review that is never shown makes none)."""
        if self._grid is None:
            from .grid import ReviewGrid

            self._grid = ReviewGrid(self)
        return self._grid

    def on_change(self, listener: Callable[[set[int]], object]) -> None:
        """Call ``listener`` with the indexes of the items that changed (empty: the view)."""
        self._listeners.append(listener)

    def _changed(self, indexes: set[int] | None = None) -> None:
        for listener in self._listeners:
            listener(set() if indexes is None else indexes)

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.grid.widget)  # type: ignore[no-untyped-call]

    def _item(self, index: int) -> ReviewItem:
        if not 0 <= index < len(self.items):
            raise OperationError(
                f"There is no item {index}; this review has items 0 to {len(self.items) - 1}."
            )
        return self.items[index]

    def _chosen(self, index: int | None) -> int:
        if index is not None:
            return index
        if self.selected is None:
            raise OperationError("No item is selected; pass an index, or select one first.")
        return self.selected

    def __repr__(self) -> str:
        return f"<Review {self.summary}>"


def _decision_of(result: Result | None, decided: dict[Decision, set[str]]) -> Decision | None:
    if result is None:
        return None
    for decision, keys in decided.items():
        if result.key in keys:
            return decision
    return None
