"""A private event loop in a daemon thread: how ``run_sync`` runs coroutines.

A Jupyter kernel already runs an event loop in its main thread, so ``asyncio.run`` cannot
be called from a cell, and patching the loop to be re-entrant (nest_asyncio) makes a later
"Run All" hang on ipykernel 7. Instead each :class:`~nbimgprep.processor.Processor` owns
one loop in a background thread and hands it coroutines with ``run_coroutine_threadsafe``;
the calling thread just waits for the answer, and Ctrl-C / "Interrupt kernel" cancels the
coroutine (and with it any remote request).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

__all__ = ["LoopThread"]


class LoopThread:
    """Starts its loop on first use; :meth:`close` stops it (it restarts if used again)."""

    def __init__(self, name: str = "nbimgprep-loop") -> None:
        self._name = name
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def _ensure_loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None or self._loop.is_closed() or not self._thread_alive():
                loop = asyncio.new_event_loop()
                ready = threading.Event()

                def serve() -> None:
                    asyncio.set_event_loop(loop)
                    loop.call_soon(ready.set)
                    loop.run_forever()

                thread = threading.Thread(target=serve, name=self._name, daemon=True)
                thread.start()
                ready.wait()
                self._loop, self._thread = loop, thread
            return self._loop

    def _thread_alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The loop (started if needed)."""
        return self._ensure_loop()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the private loop and wait for its result in this thread."""
        if threading.current_thread() is self._thread:
            coro.close()
            raise RuntimeError(
                "run_sync was called from inside nbimgprep's own event loop (for example from "
                "an on_progress callback); use `await proc.run(...)` there instead."
            )
        future = asyncio.run_coroutine_threadsafe(coro, self._ensure_loop())
        try:
            return future.result()
        except BaseException:
            # KeyboardInterrupt ("Interrupt kernel") and friends: stop the work too.
            future.cancel()
            raise

    def close(self) -> None:
        """Stop the loop and its thread."""
        with self._lock:
            loop, thread = self._loop, self._thread
            self._loop = self._thread = None
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(loop.stop)
            if thread is not None and thread is not threading.current_thread():
                thread.join(timeout=5)
            if not loop.is_running():
                loop.close()
