"""Batches: many inputs through one operation, as fast as the API allows and never paid twice.

``run_many`` is ``Processor.run`` per item, with a bound on the calls in flight that backs off
on 429s (:mod:`nbimgprep.throttle`), a progress bar (tqdm.auto: a widget in a notebook, text
in a terminal), per-item errors kept in the item's place, and an optional budget of fresh
calls (given out by :mod:`nbimgprep.plan`'s survey, which ``plan`` also answers from). The
inputs are those of :mod:`nbimgprep.sources`. Hashing, decoding and listing folders run in
worker threads, never on the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from .batch_results import Batch, BatchItem
from .errors import BudgetExceeded, NbimgprepError, OperationError, RateLimited
from .operations import get_operation
from .plan import plan, survey
from .results import ProgressCallback, ProgressEvent, Result, Source
from .sources import IMAGE_SUFFIXES, Sources, expand_sources, named
from .throttle import DEFAULT_CONCURRENCY, Throttle

if TYPE_CHECKING:
    from .processor import Processor

__all__ = ["IMAGE_SUFFIXES", "Sources", "expand_sources", "plan", "run_many"]

#: A call refused this many times with 429 in a row fails after all (the API is not recovering).
MAX_RATE_LIMITED_TRIES = 50
OnError = Literal["collect", "raise"]


@dataclass(frozen=True)
class _Input:
    index: int
    source: Source
    label: str


# -- the run ----------------------------------------------------------------------------------


async def run_many(
    proc: Processor,
    operation: str,
    sources: Sources,
    *,
    concurrency: int | None = None,
    progress: bool = True,
    on_error: OnError = "collect",
    max_fresh: int | None = None,
    refresh: bool = False,
    on_progress: ProgressCallback | None = None,
    on_item: Callable[[BatchItem], object] | None = None,
    **params: Any,
) -> Batch:
    """See :meth:`nbimgprep.Processor.run_many`."""
    started = time.perf_counter()
    op = get_operation(operation)
    canonical = op.canonical_params(params)
    if on_error not in ("collect", "raise"):
        raise OperationError(f'on_error={on_error!r}: use "collect" or "raise".')
    limit = DEFAULT_CONCURRENCY if concurrency is None else int(concurrency)
    if limit < 1:
        raise OperationError(f"concurrency={concurrency!r}: use a number of calls, 1 or more.")
    if max_fresh is not None and max_fresh < 0:
        raise OperationError(f"max_fresh={max_fresh!r}: use 0 or more (or None for no limit).")
    expanded = await asyncio.to_thread(expand_sources, sources)
    inputs = [_Input(i, s, label) for i, (s, label) in enumerate(expanded)]
    outcomes: list[Result | NbimgprepError | None] = [None] * len(inputs)
    runnable: dict[int, Source] = {i.index: i.source for i in inputs}
    if max_fresh is not None:
        await _apply_budget(
            proc, op.name, inputs, canonical, max_fresh, refresh, outcomes, runnable
        )

    bar = _ProgressBar(op.name, len(inputs), enabled=progress)

    def finish(item: _Input, outcome: Result | NbimgprepError) -> None:
        outcomes[item.index] = outcome
        bar.count(outcome)
        if on_item is not None:
            with bar.writing():
                _tell(on_item, _item(item, outcome))

    for item in inputs:
        if (pre := outcomes[item.index]) is not None:
            finish(item, pre)
    if not refresh:
        await _serve_hits(proc, op.name, inputs, canonical, runnable, finish, on_progress)
    throttle = Throttle(limit)
    pending = iter([i for i in inputs if i.index in runnable])

    async def one(item: _Input) -> None:
        source = runnable.pop(item.index)  # let its bytes and pixels go once it is done
        tries = 0
        while True:
            epoch = await throttle.acquire()
            try:
                result = await proc.run(
                    op.name, source, refresh=refresh, on_progress=on_progress, **canonical
                )
            except RateLimited as exc:
                tries += 1
                throttle.rate_limited(epoch, exc.retry_after)
                if tries < MAX_RATE_LIMITED_TRIES:
                    continue
                outcome: Result | NbimgprepError = named(exc, item.label)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                outcome = named(exc, item.label)
            else:
                if not result.cache_hit:
                    throttle.succeeded()
                outcome = result
            finally:
                throttle.release()
            break
        finish(item, outcome)
        if on_error == "raise" and isinstance(outcome, NbimgprepError):
            raise outcome

    async def worker() -> None:
        for item in pending:
            await one(item)

    workers = [asyncio.create_task(worker()) for _ in range(min(limit, len(runnable)))]
    try:
        if workers:
            await _first_failure(workers)
    finally:
        bar.close()
    if on_error == "raise":
        first = next((o for o in outcomes if isinstance(o, NbimgprepError)), None)
        if first is not None:
            raise first
    items = tuple(_item(i, o) for i, o in zip(inputs, outcomes, strict=True) if o is not None)
    return Batch(op.name, items, time.perf_counter() - started, canonical, throttle.refusals, proc)


#: Inputs looked up per worker-thread hop on the all-hit path.
HIT_CHUNK = 64


async def _serve_hits(
    proc: Processor,
    operation: str,
    inputs: list[_Input],
    params: dict[str, Any],
    runnable: dict[int, Source],
    finish: Callable[[_Input, Result | NbimgprepError], None],
    on_progress: ProgressCallback | None,
) -> None:
    """The all-hit path: look the inputs up in chunks, one worker-thread hop per chunk (a hop
    per item costs more than the lookup). Hits are finished here; everything else (misses,
    unreadable inputs) stays runnable and takes the ordinary path, which names its errors."""

    def look(chunk: list[_Input]) -> list[tuple[_Input, Source, Result | None]]:
        found: list[tuple[_Input, Source, Result | None]] = []
        for item in chunk:
            try:
                image = proc.image(runnable[item.index])
                found.append((item, image, proc.cached(operation, image, **params)))
            except NbimgprepError:
                found.append((item, runnable[item.index], None))
        return found

    todo = [i for i in inputs if i.index in runnable]
    for start in range(0, len(todo), HIT_CHUNK):
        for item, image, result in await asyncio.to_thread(look, todo[start : start + HIT_CHUNK]):
            if result is None:
                runnable[item.index] = image  # hashed once, reused by the run
                continue
            del runnable[item.index]
            if on_progress is not None:
                _tell(on_progress, ProgressEvent("hit", result.key, elapsed=result.elapsed))
            finish(item, result)


def _item(item: _Input, outcome: Result | NbimgprepError) -> BatchItem:
    if isinstance(outcome, Result):
        return BatchItem(item.index, item.source, item.label, result=outcome)
    return BatchItem(item.index, item.source, item.label, error=outcome)


def _tell(callback: Callable[[Any], object], value: object) -> None:
    """Call the user's callback; a failing one is reported, never allowed to sink the batch."""
    try:
        callback(value)
    except Exception as exc:
        warnings.warn(f"batch callback failed: {exc!r}", RuntimeWarning, stacklevel=2)


async def _first_failure(tasks: Sequence[asyncio.Task[None]]) -> None:
    """Wait for every task; on the first failure (or our own cancellation) cancel the rest,
    let them finish cancelling, then re-raise."""
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        for task in done:
            if not task.cancelled() and task.exception() is not None:
                raise task.exception()  # type: ignore[misc]
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def _apply_budget(
    proc: Processor,
    operation: str,
    inputs: list[_Input],
    params: dict[str, Any],
    max_fresh: int,
    refresh: bool,
    outcomes: list[Result | NbimgprepError | None],
    runnable: dict[int, Source],
) -> None:
    """Give the first ``max_fresh`` would-be fresh items (in input order) a call; the rest
    hold :class:`BudgetExceeded`. Hits cost nothing and always run."""

    pairs = [(i.source, i.label) for i in inputs]
    surveys = await asyncio.to_thread(survey, proc, operation, pairs, params)
    left = max_fresh
    for item, found in zip(inputs, surveys, strict=True):
        if found.image is not None:
            runnable[item.index] = found.image  # hashed once, reused by the run
        if found.error is not None or (found.hit and not refresh):
            continue
        if left > 0:
            left -= 1
            continue
        del runnable[item.index]
        outcomes[item.index] = BudgetExceeded(
            f"{item.label}: not processed, past max_fresh={max_fresh} fresh calls; nothing "
            "was paid for it. Run the batch again with a larger max_fresh to process it."
        )


class _ProgressBar:
    """tqdm.auto (a widget in a notebook, text on stderr in a terminal), counting hits,
    fresh calls and failures apart; tqdm shows the rate."""

    def __init__(self, operation: str, total: int, *, enabled: bool) -> None:
        self.counts = {"hit": 0, "fresh": 0, "failed": 0}
        self._bar: Any = None
        if enabled:
            from tqdm.auto import tqdm

            self._bar = tqdm(total=total, desc=operation, unit="img", dynamic_ncols=True)

    def count(self, outcome: Result | NbimgprepError) -> None:
        if isinstance(outcome, Result):
            self.counts["hit" if outcome.cache_hit else "fresh"] += 1
        else:
            self.counts["failed"] += 1
        if self._bar is not None:
            self._bar.set_postfix(self.counts, refresh=False)
            self._bar.update(1)

    def writing(self) -> contextlib.AbstractContextManager[object]:
        """Around a line printed while the bar shows: the bar steps aside, then comes back."""
        if self._bar is None:
            return contextlib.nullcontext()
        return self._bar.external_write_mode()  # type: ignore[no-any-return]

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
