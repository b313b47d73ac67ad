"""Single flight within a process: one backend call per key, shared by every caller asking at once.

The first caller for a key (the leader) starts the call as a task; everyone else asking for
that key while it runs waits on the same future and gets the same Result, fresh. A waiter that
is cancelled leaves; when the last one has left, the call itself is cancelled (and with it any
remote request). Thread-safe: ``run_sync`` callers on the private loop and ``await`` callers on
the notebook's loop share one table.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from .errors import ProcessingCancelled
from .results import ProgressCallback, Result

__all__ = ["Flight", "FlightTable"]


@dataclass
class Flight:
    """One backend call in progress, shared by everyone asking for the same key."""

    future: concurrent.futures.Future[Result] = field(default_factory=concurrent.futures.Future)
    listeners: list[ProgressCallback] = field(default_factory=list)
    waiters: int = 0
    task: asyncio.Task[Result] | None = None
    loop: asyncio.AbstractEventLoop | None = None


class FlightTable:
    """The calls in flight in this process, by key."""

    def __init__(self) -> None:
        self._flights: dict[str, Flight] = {}
        self._lock = threading.Lock()

    async def join(
        self,
        key: str,
        produce: Callable[[Flight], Coroutine[Any, Any, Result]],
        on_progress: ProgressCallback | None,
    ) -> Result:
        """The Result of the one call for ``key``: started with ``produce`` if none is in
        flight, joined otherwise."""
        with self._lock:
            flight = self._flights.get(key)
            leader = flight is None
            if flight is None:
                flight = Flight()
                self._flights[key] = flight
            if on_progress is not None:
                flight.listeners.append(on_progress)
            flight.waiters += 1
        if leader:
            loop = asyncio.get_running_loop()
            flight.loop = loop
            flight.task = loop.create_task(produce(flight))
            flight.task.add_done_callback(lambda t: self._land(key, flight, t))
        outcome = asyncio.wrap_future(flight.future)
        try:
            shared = await asyncio.shield(outcome)
        except asyncio.CancelledError:
            # Nobody will read this waiter's copy of the outcome: mark it read.
            outcome.add_done_callback(lambda f: f.cancelled() or f.exception())
            self._leave(flight)
            raise
        with self._lock:
            flight.waiters -= 1
        return shared

    def _leave(self, flight: Flight) -> None:
        """A waiter was cancelled: when nobody waits any more, stop the backend call."""
        with self._lock:
            flight.waiters -= 1
            abandoned = flight.waiters <= 0
        if abandoned and flight.task is not None and flight.loop is not None:
            flight.loop.call_soon_threadsafe(flight.task.cancel)

    def _land(self, key: str, flight: Flight, task: asyncio.Task[Result]) -> None:
        with self._lock:
            if self._flights.get(key) is flight:
                del self._flights[key]
        if task.cancelled():
            flight.future.set_exception(
                ProcessingCancelled("The operation was cancelled; nothing was cached.")
            )
        elif (exc := task.exception()) is not None:
            flight.future.set_exception(exc)
        else:
            flight.future.set_result(task.result())
