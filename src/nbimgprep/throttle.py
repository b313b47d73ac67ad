"""How many backend calls a batch keeps in flight, and how it backs off when the API says 429.

A fal.ai account runs a limited number of requests at once (2 for a new account, rising to 40
as credits are bought; more through fal's sales). Past that, fal queues requests rather than
refusing them, but an API that answers 429 (too many requests) is asking the client to slow
down. :class:`Throttle` does what TCP does with a congested link (AIMD): on a 429 it halves
the calls in flight and pauses new ones for the server's ``Retry-After`` (or a doubling
backoff when it sent none), then grows back by half a call per fresh success, up to the
batch's bound. The item that was refused is tried again, never failed for it.
"""

from __future__ import annotations

import asyncio
import contextlib

__all__ = ["DEFAULT_CONCURRENCY", "Throttle"]

#: Calls in flight when ``run_many`` is not told otherwise: enough to keep a typical
#: paid fal.ai account (limits 2-40) busy; requests above an account's limit wait in fal's
#: queue without failing, and a 429 makes the batch slow down on its own.
DEFAULT_CONCURRENCY = 16

#: Longest pause after repeated 429s without a Retry-After, in seconds.
MAX_BACKOFF = 30.0
FIRST_BACKOFF = 0.5


class Throttle:
    """A semaphore whose size shrinks on 429s and grows back on successes.

    ``epoch = await throttle.acquire()`` before a call, ``throttle.release()`` after it;
    ``throttle.succeeded()`` when a fresh call worked, ``throttle.rate_limited(epoch, s)``
    when it was refused. Only the first refusal of calls started under the same window
    halves it, so a burst of 429s from calls already in flight counts once.
    """

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        self.limit = limit
        self.window = float(limit)
        self.in_flight = 0
        self.peak = 0
        self.refusals = 0
        self._epoch = 0
        self._backoff = FIRST_BACKOFF
        self._paused_until = 0.0
        self._changed = asyncio.Event()

    async def acquire(self) -> int:
        """Wait for a free slot (and for any pause to end); returns the window's epoch."""
        loop = asyncio.get_running_loop()
        while True:
            wait = self._paused_until - loop.time()
            if wait <= 0 and self.in_flight < max(1, int(self.window)):
                self.in_flight += 1
                self.peak = max(self.peak, self.in_flight)
                return self._epoch
            self._changed.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._changed.wait(), timeout=wait if wait > 0 else None)

    def release(self) -> None:
        self.in_flight -= 1
        self._changed.set()

    def succeeded(self) -> None:
        """A fresh call went through: grow back towards the bound; end the backoff."""
        self.window = min(float(self.limit), self.window + 0.5)
        self._backoff = FIRST_BACKOFF
        self._changed.set()

    def rate_limited(self, epoch: int, retry_after: float | None) -> None:
        """A call started under ``epoch`` was refused with a 429."""
        self.refusals += 1
        loop = asyncio.get_running_loop()
        if epoch == self._epoch:
            self._epoch += 1
            self.window = max(1.0, self.window / 2)
        pause = retry_after if retry_after is not None and retry_after >= 0 else self._backoff
        self._backoff = min(MAX_BACKOFF, self._backoff * 2)
        self._paused_until = max(self._paused_until, loop.time() + min(pause, MAX_BACKOFF))
        self._changed.set()
