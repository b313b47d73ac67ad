"""Operations started by buttons: kept as tasks, waited for, cancelled, never lost.

Exceptions raised in widget callbacks are invisible in Jupyter, and a ``create_task`` nobody
keeps can be garbage-collected mid-run. Every coroutine a button starts is kept here until
it ends; a failure is handed to ``report`` (the status line), and ``wait`` lets scripts and
tests wait for what the buttons started.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

from ..errors import NbimgprepError, OperationError, ProcessingCancelled

__all__ = ["OperationSlot", "TaskKeeper", "reported", "reported_click"]

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., None])


def reported(method: F) -> F:
    """Run a widget callback so that a failure shows in the status line (through the
    object's ``_show_error``), not nowhere, and the widget stays usable."""

    def wrapper(self: Any, *args: Any) -> None:
        try:
            method(self, *args)
        except Exception as exc:
            self._show_error(exc)

    wrapper.__name__ = method.__name__
    wrapper.__doc__ = method.__doc__
    return wrapper  # type: ignore[return-value]


def reported_click(
    action: Callable[[], object], report: Callable[[BaseException], None]
) -> Callable[[Any], None]:
    """A button's ``on_click`` handler that runs ``action`` and reports its failure."""

    def on_click(_button: Any) -> None:
        try:
            action()
        except Exception as exc:
            report(exc)

    return on_click


class TaskKeeper:
    """The tasks buttons started; ``report`` is told of any failure not already shown."""

    def __init__(self, report: Callable[[BaseException], None]) -> None:
        self._report = report
        self._tasks: set[asyncio.Task[Any]] = set()

    def schedule(self, coro: Coroutine[Any, Any, Any]) -> None:
        """Run a button's coroutine as a kept task; its failure is shown, never lost."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            coro.close()
            raise NbimgprepError(
                "No running event loop to run the operation on: use the widget in Jupyter, "
                "or call `await prep.apply(...)` from async code."
            ) from None
        task = loop.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    async def wait(self) -> None:
        while self._tasks:
            await asyncio.wait(list(self._tasks))

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None and not isinstance(exc, NbimgprepError):
            # NbimgprepErrors were already shown where they happened; anything else is a bug.
            self._report(exc)


class OperationSlot:
    """At most one operation at a time, cancellable from a button.

    ``await slot.run(title, awaitable)`` returns its result; Cancel makes it raise
    :class:`~nbimgprep.errors.ProcessingCancelled` (nothing was cached).
    """

    def __init__(self) -> None:
        self._running: asyncio.Future[Any] | None = None
        self._cancel_asked = False

    @property
    def busy(self) -> bool:
        return self._running is not None

    def check_idle(self) -> None:
        if self._running is not None:
            raise OperationError(
                "An operation is already running: wait for it, or press Cancel first."
            )

    async def run(self, title: str, work: Awaitable[T]) -> T:
        self.check_idle()
        self._cancel_asked = False
        task = asyncio.ensure_future(work)
        self._running = task
        try:
            return await task
        except asyncio.CancelledError:
            if not self._cancel_asked:
                raise  # our caller was cancelled, not the operation
            raise ProcessingCancelled(
                f"{title} was cancelled; nothing was cached. Run it again when ready."
            ) from None
        finally:
            self._running = None

    def cancel(self) -> None:
        if self._running is not None and not self._running.done():
            self._cancel_asked = True
            self._running.cancel()
