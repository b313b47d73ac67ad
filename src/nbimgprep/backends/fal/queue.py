"""Following one request through fal's queue: status until COMPLETED, then the result.

* **The status stream first.** ``GET {status_url}/stream?logs=1`` is fal's server-sent event
  stream of the request's status: an event per change, the last one COMPLETED, so a finished
  request is noticed within a round trip of finishing, with one connection instead of a poll
  every so often. fal_client 1.0.x has no call for it (its ``iter_events`` polls every 0.1 s),
  so the stream is read with our own httpx client, sending the key to the ``status_url`` fal
  returned on submit, that is to fal's queue host only. A stream that ends early or drops is
  re-opened (up to :data:`STREAM_ATTEMPTS` failures).
* **Polling as the fallback** (a host without the stream, or one that keeps failing it):
  fal_client's ``status()`` (with its retries), after a pause of :data:`POLL_SHARE` times the
  time the request has been followed (at least 50 ms, at most 5 s). A fixed interval either
  makes many calls on long jobs or adds up to itself to short ones; a share of the elapsed time
  keeps the notice within about 5% of the run time (measured: 17 calls for a one-second job,
  51 for five seconds).
* Queue position and log lines become progress reports, each line once.
* **Cancel on the way out.** On any failure while the request is live the caller cancels it on
  the server (:func:`cancel_on_server`, ``PUT cancel``), so nobody pays for a result nobody will
  read.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import httpx

from ...errors import BackendError, InvalidResult
from .. import ProgressReporter
from .failures import Call, logger, short, step, translate

if TYPE_CHECKING:
    from fal_client import AsyncClient, AsyncRequestHandle, Completed, Status

__all__ = ["cancel_on_server", "fetch_result", "follow", "reattach", "result_file"]

POLL_FIRST = 0.05
POLL_SHARE = 0.05
POLL_MAX = 5.0
#: Stream failures (drops, early ends, bad events) before falling back to polling.
STREAM_ATTEMPTS = 3
#: A stream silent for this long is re-opened (it costs one request; fal may cut idle ones).
STREAM_IDLE = 120.0
#: How long a server-side cancel may take before we give up on it.
CANCEL_TIMEOUT = 10.0


class _Reports:
    """Turns statuses into progress reports: a state or position change, new log lines once."""

    def __init__(self, report: ProgressReporter) -> None:
        self.report = report
        self.state: str | None = None
        self.position: int | None = None
        self.seen = 0  # log lines reported so far

    def saw(self, status: Status, *, cumulative: bool) -> None:
        """``cumulative``: the status carries every log line so far (polling), not just new
        ones (the stream)."""
        from fal_client import Completed, InProgress, Queued

        if isinstance(status, Queued):
            if self.state != "queued" or status.position != self.position:
                self.report("queued", position=status.position)
            self.state, self.position = "queued", status.position
            return
        if not isinstance(status, (InProgress, Completed)):  # a later fal_client's Status
            raise InvalidResult(f"unknown status {status!r}.")
        lines = _messages(status.logs)
        new = lines[self.seen :] if cumulative else lines
        if new or (self.state != "running" and isinstance(status, InProgress)):
            self.report("running", logs=new)
        self.seen += len(new)
        self.state = "running"


async def follow(
    handle: AsyncRequestHandle, call: Call, report: ProgressReporter, http: httpx.AsyncClient
) -> Completed:
    """Wait for the request to complete: the status stream, else polling."""
    reports = _Reports(report)
    completed = await _stream(handle, call, reports, http)
    if completed is None:
        completed = await _poll(handle, call, reports)
    logger.debug("%s completed after %d status calls", call.where(), call.status_calls)
    return completed


async def reattach(
    client: AsyncClient, endpoint: str, request_id: str, call: Call
) -> AsyncRequestHandle | None:
    """A handle on a request an earlier process submitted, or None if it cannot be used:
    fal no longer knows it (HTTP 404/410: expired), or it failed or was cancelled. Then the
    caller submits afresh; otherwise it follows the handle as if it had just submitted it."""
    import fal_client

    call.request_id = request_id
    handle = await client.get_handle(endpoint, request_id)  # no network call
    failure: BackendError | None = None
    try:
        status = await handle.status(with_logs=False)
    except fal_client.FalClientHTTPError as exc:
        if exc.status_code in (404, 410):
            logger.debug("%s is gone (HTTP %d): submitting afresh", call.where(), exc.status_code)
            call.request_id = None
            return None
        failure = translate(exc, "checking the earlier request", call)
    except (fal_client.FalClientError, httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
        failure = translate(exc, "checking the earlier request", call)
    if failure is not None:  # raised here, without the httpx request (and key) as context
        raise failure
    call.status_calls += 1
    if isinstance(status, fal_client.Completed) and status.error is not None:
        logger.debug("%s had failed (%s): submitting afresh", call.where(), status.error_type)
        call.request_id = None
        return None
    logger.debug("%s: re-attached", call.where())
    return handle


async def _stream(
    handle: AsyncRequestHandle, call: Call, reports: _Reports, http: httpx.AsyncClient
) -> Completed | None:
    """COMPLETED from the status stream, or None when the stream is not to be had."""
    from fal_client import Completed

    url = handle.status_url + "/stream"
    headers = {"Authorization": f"Key {call.key}", "Accept": "text/event-stream"}
    timeout = httpx.Timeout(30.0, read=STREAM_IDLE)
    failures = 0
    while failures < STREAM_ATTEMPTS:
        try:
            async with http.stream(
                "GET", url, params={"logs": "1"}, headers=headers, timeout=timeout
            ) as response:
                call.status_calls += 1
                if response.status_code != 200:
                    # No stream here (or a refusal polling will name properly): poll.
                    logger.debug(
                        "%s: no status stream (HTTP %d)", call.where(), response.status_code
                    )
                    return None
                async for data in _events(response):
                    status = _parse_status(data)
                    reports.saw(status, cumulative=False)
                    if isinstance(status, Completed):
                        return status
            failures += 1  # the stream ended before COMPLETED
        except httpx.ReadTimeout:
            continue  # silent for STREAM_IDLE: re-open it
        except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
            # Only the type is logged: the key is in the request this exception holds.
            failures += 1
            logger.debug("%s: status stream failed (%s)", call.where(), type(exc).__name__)
    return None


async def _poll(handle: AsyncRequestHandle, call: Call, reports: _Reports) -> Completed:
    """Poll fal_client's ``status()`` every :data:`POLL_SHARE` of the elapsed time."""
    from fal_client import Completed

    started = time.monotonic()
    while True:
        elapsed = time.monotonic() - started
        await asyncio.sleep(min(max(POLL_FIRST, elapsed * POLL_SHARE), POLL_MAX))
        status = await step("polling the status", handle.status(with_logs=True), call)
        call.status_calls += 1
        reports.saw(status, cumulative=True)
        if isinstance(status, Completed):
            return status


async def _events(response: httpx.Response) -> AsyncIterator[str]:
    """The ``data`` of each server-sent event (the SSE format: ``data:`` lines, a blank line
    ends an event, lines starting with ``:`` are comments)."""
    data: list[str] = []
    async for line in response.aiter_lines():
        if not line:
            if data:
                yield "\n".join(data)
            data = []
        elif line.startswith("data:"):
            data.append(line[5:].removeprefix(" "))
    if data:
        yield "\n".join(data)


def _parse_status(data: str) -> Status:
    """A fal_client Status from one event's JSON (the same shape as the status call's)."""
    from fal_client import Completed, InProgress, Queued

    body = json.loads(data)
    state = body["status"]
    if state == "IN_QUEUE":
        return Queued(position=body.get("queue_position", 0))
    if state == "IN_PROGRESS":
        return InProgress(logs=body.get("logs"))
    if state == "COMPLETED":
        return Completed(
            logs=body.get("logs"),
            metrics=body.get("metrics") or {},
            error=body.get("error"),
            error_type=body.get("error_type"),
        )
    raise ValueError(f"unknown status {state!r}")


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
