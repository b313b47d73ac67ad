"""Following one request through fal's queue: status until COMPLETED, then the result.

* **Polling with a backoff** (50 ms growing by half to 1 s, back to 50 ms when the request
  changes state): fal_client's fixed 0.1 s poll makes ten requests a second per image; a fixed
  1 s adds up to a second to every call. Queue position and logs become progress reports.
* **Cancel on the way out.** On any failure while the request is live the caller cancels it on
  the server (:func:`cancel_on_server`, ``PUT cancel``), so nobody pays for a result nobody will
  read.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ...errors import BackendError, InvalidResult
from .. import ProgressReporter
from .failures import Call, logger, short, step

if TYPE_CHECKING:
    from fal_client import AsyncRequestHandle, Completed

__all__ = ["cancel_on_server", "fetch_result", "follow", "result_file"]

POLL_FIRST = 0.05
POLL_GROWTH = 1.5
POLL_MAX = 1.0
#: How long a server-side cancel may take before we give up on it.
CANCEL_TIMEOUT = 10.0


async def follow(handle: AsyncRequestHandle, call: Call, report: ProgressReporter) -> Completed:
    """Poll the status with a backoff until COMPLETED, reporting queue and logs."""
    from fal_client import Completed, InProgress, Queued

    delay, position, seen = POLL_FIRST, None, 0
    state: str | None = None
    while True:
        await asyncio.sleep(delay)
        status = await step("polling the status", handle.status(with_logs=True), call)
        call.status_calls += 1
        if isinstance(status, Completed):
            new = _messages(status.logs)[seen:]
            if new:
                report("running", logs=new)
            logger.debug("%s completed after %d polls", call.where(), call.status_calls)
            return status
        if isinstance(status, Queued):
            if state != "queued" or status.position != position:
                report("queued", position=status.position)
            new_state, position = "queued", status.position
        elif isinstance(status, InProgress):
            new = _messages(status.logs)[seen:]
            if state != "running" or new:
                report("running", logs=new)
            seen += len(new)
            new_state = "running"
        else:  # a Status subclass a later fal_client might add
            raise InvalidResult(f"{call.where()}: unknown status {status!r}.")
        changed = state is not None and new_state != state
        delay = POLL_FIRST if changed else min(delay * POLL_GROWTH, POLL_MAX)
        state = new_state


async def fetch_result(
    handle: AsyncRequestHandle, completed: Completed, call: Call
) -> dict[str, Any]:
    """The result JSON; a COMPLETED request carrying an error becomes a BackendError."""
    call.live = False  # done on the server: nothing left to cancel
    if completed.error is not None and completed.error_type == "request_cancelled":
        raise BackendError(f"{call.where()} was cancelled on fal.ai; run it again.")
    result = await step("fetching the result", handle.get(interval=POLL_FIRST), call)
    if completed.error is not None:
        raise BackendError(
            f"{call.where()} failed on fal.ai: {short(completed.error)}. Nothing was "
            "cached; try again, or try another endpoint."
        )
    if not isinstance(result, dict):
        raise InvalidResult(f"{call.where()} answered {type(result).__name__}, not an object.")
    return result


async def cancel_on_server(handle: AsyncRequestHandle, call: Call) -> None:
    """Best-effort ``PUT cancel``; shielded so a second task cancel cannot cut it short."""

    async def cancel() -> None:
        try:
            await asyncio.wait_for(handle.cancel(), CANCEL_TIMEOUT)
            logger.debug("%s cancelled on the server", call.where())
        except Exception as exc:  # the request may have finished meanwhile: nothing to do
            logger.debug("%s: cancel failed (%s)", call.where(), type(exc).__name__)

    call.live, call.cancelled = False, True
    await asyncio.shield(asyncio.ensure_future(cancel()))


def result_file(result: Mapping[str, Any], call: Call) -> tuple[str, str | None]:
    """The output file's URL and declared content type: ``image``, or the first of ``images``."""
    image = result.get("image")
    images = result.get("images")
    if image is None and isinstance(images, list) and images:
        image = images[0]
    if isinstance(image, Mapping) and isinstance(image.get("url"), str) and image["url"]:
        declared = image.get("content_type")
        return image["url"], declared if isinstance(declared, str) else None
    raise InvalidResult(
        f"{call.where()} answered without an image (fields: {', '.join(sorted(result)) or 'none'})."
        " The endpoint may not be an image endpoint; check Processor(endpoints=...)."
    )


def _messages(logs: Sequence[Any] | None) -> list[str]:
    out = []
    for entry in logs or ():
        message = entry.get("message") if isinstance(entry, Mapping) else entry
        out.append(str(message))
    return out
