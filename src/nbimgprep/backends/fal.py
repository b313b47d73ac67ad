"""The fal.ai backend: one queued model call per cache miss, through the official fal_client.

Why it looks the way it does:

* **A client per event loop.** ``fal_client.AsyncClient`` caches an ``httpx.AsyncClient``
  whose connections belong to the loop that first used them; reused from another loop it fails
  with "Event loop is closed". A backend is used from the Jupyter kernel's loop and from
  ``run_sync``'s private loop, so it keeps one fal client (and one download client) per running
  loop, never fal_client's module-level singleton. Entries of closed loops are dropped.
* **The key is read at run time**, from ``key`` or ``environ["FAL_KEY"]`` (``os.environ`` by
  default), so ``Processor(backend="fal")`` can be built before the key is set and a missing
  key is a clear :class:`~nbimgprep.errors.FalKeyMissing` at the first call. The key is sent to
  fal hosts only (fal_client's queue and storage calls), never to the result download, and it
  appears in no repr, log line or exception: errors are translated outside the ``except`` block
  so no httpx request (which carries the Authorization header) hangs off them.
* **Polling with a backoff** (50 ms growing by half to 1 s, back to 50 ms when the request changes
  state): fal_client's fixed 0.1 s poll makes ten requests a second per image; a fixed 1 s adds
  up to a second to every call. Queue position and logs become progress reports.
* **An overall timeout** (fal_client waits forever by default). On timeout, on task
  cancellation and on any failure while the request is live, the request is cancelled on the
  server (``PUT cancel``), so nobody pays for a result nobody will read.
* **Retries.** fal_client retries 408/409/429, ingress 502/503/504 (nginx pages without an
  ``x-fal-request-id``) and dropped connections, up to 10 attempts with exponential backoff
  (it does not read Retry-After); 500 and app errors are not retried. The result download is
  ours: up to 3 attempts on dropped connections, 408/429/5xx; never on 404 (an expired URL).
* **Bytes, not URLs.** fal keeps result files "at least 7 days", so the result is downloaded at
  once (streamed, size-capped, content-type and decode checked) and the engine caches bytes.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
import os
import threading
import weakref
from collections.abc import Awaitable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

import httpx

from ..errors import (
    BackendError,
    FalKeyMissing,
    FalKeyRejected,
    FalTimeout,
    InvalidResult,
    NbimgprepError,
)
from ..operations import Endpoint, Operation, get_operation
from . import BackendOutput, ProgressReporter

if TYPE_CHECKING:
    from fal_client import AsyncClient, AsyncRequestHandle, Completed

    from ..images import ImageRef

__all__ = ["FalBackend", "EndpointSpec"]

logger = logging.getLogger(__name__)

T = TypeVar("T")

#: How an endpoint may be given: an id, (id, {fixed arguments}), or an Endpoint.
EndpointSpec = str | tuple[str, Mapping[str, Any]] | Endpoint

#: Inputs up to this size travel inline as a data URI; larger ones go through fal storage.
DATA_URI_LIMIT = 1_000_000
#: Results larger than this are refused (a 100 MP PNG is ~ 150-300 MB; 200 MB is generous).
MAX_RESULT_BYTES = 200 * 1024 * 1024
POLL_FIRST = 0.05
POLL_GROWTH = 1.5
POLL_MAX = 1.0
DOWNLOAD_ATTEMPTS = 3
DOWNLOAD_BACKOFF = 0.2
#: How long a server-side cancel may take before we give up on it.
CANCEL_TIMEOUT = 10.0
_RETRY_DOWNLOAD = frozenset({408, 425, 429, 500, 502, 503, 504})
_GONE = frozenset({404, 410})
_BINARY_TYPES = frozenset({"application/octet-stream", "binary/octet-stream"})


@dataclass
class _LoopClients:
    """The HTTP clients bound to one event loop."""

    key_fingerprint: int = field(repr=False)
    fal: AsyncClient = field(repr=False)
    http: httpx.AsyncClient = field(repr=False)


@dataclass
class _Call:
    """What the outer frame needs to know about a call in flight."""

    endpoint: str
    key: str = field(repr=False)
    request_id: str | None = None
    polls: int = 0
    live: bool = False  # submitted and not yet completed: cancel it on failure
    cancelled: bool = False  # we asked the server to cancel it

    def where(self) -> str:
        rid = f" request {self.request_id}" if self.request_id else ""
        return f"fal.ai {self.endpoint}{rid}"


class FalBackend:
    """Runs operations on fal.ai. ``FalBackend()`` reads FAL_KEY when it first runs.

    ``endpoints`` maps an operation name to an endpoint id, ``(id, {arguments})`` or an
    :class:`~nbimgprep.operations.Endpoint`; operations not named use the table's default.
    ``timeout`` (seconds, ``None`` for none) bounds a whole call: upload, queue, run, download.
    """

    name = "fal"

    def __init__(
        self,
        key: str | None = None,
        *,
        endpoints: Mapping[str, EndpointSpec] | None = None,
        timeout: float | None = 300.0,
        environ: Mapping[str, str] | None = None,
        max_result_bytes: int = MAX_RESULT_BYTES,
        data_uri_limit: int = DATA_URI_LIMIT,
    ) -> None:
        self._key = key
        self._environ = environ
        self.timeout = timeout
        self.max_result_bytes = max_result_bytes
        self.data_uri_limit = data_uri_limit
        self.endpoints: dict[str, Endpoint] = {
            get_operation(op).name: _endpoint(spec) for op, spec in (endpoints or {}).items()
        }
        self._lock = threading.Lock()
        self._clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopClients] = (
            weakref.WeakKeyDictionary()
        )

    def __repr__(self) -> str:
        key = "set" if self._find_key() else "not set"
        overrides = {op: e.id for op, e in self.endpoints.items()}
        return f"FalBackend(endpoints={overrides}, timeout={self.timeout}, FAL_KEY {key})"

    # -- the Backend protocol ---------------------------------------------------------------

    def endpoint_for(self, operation: Operation) -> Endpoint:
        return self.endpoints.get(operation.name) or Endpoint(operation.fal_endpoint)

    async def run(
        self,
        operation: Operation,
        image: ImageRef,
        params: Mapping[str, Any],
        endpoint: Endpoint,
        report: ProgressReporter,
    ) -> BackendOutput:
        key = self._find_key()
        if not key:
            raise FalKeyMissing()
        call = _Call(endpoint.id, key)
        try:
            return await asyncio.wait_for(
                self._run(call, operation, image, params, endpoint, report), self.timeout
            )
        except asyncio.TimeoutError as exc:
            if isinstance(exc, NbimgprepError):
                raise
            cancelled = "; it was cancelled on the server" if call.cancelled else ""
            raise FalTimeout(
                f"{call.where()} did not finish within {self.timeout:g} s{cancelled}. fal.ai may "
                "be busy: try again later, or allow more time with Processor(timeout=...)."
            ) from None

    async def aclose(self) -> None:
        """Close the clients of the running loop (others close with their loop)."""
        loop = asyncio.get_running_loop()
        with self._lock:
            clients = self._clients.pop(loop, None)
        if clients is not None:
            await _close(clients)

    # -- one call -------------------------------------------------------------------------------

    async def _run(
        self,
        call: _Call,
        operation: Operation,
        image: ImageRef,
        params: Mapping[str, Any],
        endpoint: Endpoint,
        report: ProgressReporter,
    ) -> BackendOutput:
        clients = self._clients_for_loop(call.key)
        image_url = await self._input_url(clients.fal, image, call)
        arguments = {**operation.fal_arguments(params), **endpoint.arguments}
        arguments["image_url"] = image_url
        handle = await self._step("submitting", clients.fal.submit(endpoint.id, arguments), call)
        call.request_id, call.live = handle.request_id, True
        logger.debug("%s submitted", call.where())
        try:
            report("queued", position=None)
            completed = await self._follow(handle, call, report)
            result = await self._result(handle, completed, call)
            call.live = False
        finally:
            if call.live:
                await _cancel_on_server(handle, call)
        url, declared_type = _result_file(result, call)
        data, content_type = await self._download(clients.http, url, call)
        # The engine decodes and size-checks every backend's result before caching it.
        content_type = declared_type or content_type
        return BackendOutput(
            data=data,
            content_type=content_type,
            request_id=call.request_id,
            remote_url=None if url.startswith("data:") else url,
        )

    async def _input_url(self, client: AsyncClient, image: ImageRef, call: _Call) -> str:
        """A data URI for a small image; a fal storage URL (uploaded now) for a large one."""
        data, content_type = image.upload_bytes()
        if len(data) <= self.data_uri_limit:
            return f"data:{content_type};base64,{base64.b64encode(data).decode()}"
        ext = content_type.rsplit("/", 1)[-1]
        upload = client.upload(data, content_type, file_name=f"input.{ext}")
        url = await self._step("uploading the image", upload, call)
        logger.debug("%s: uploaded %d bytes", call.where(), len(data))
        return url

    async def _follow(
        self, handle: AsyncRequestHandle, call: _Call, report: ProgressReporter
    ) -> Completed:
        """Poll the status with a backoff until COMPLETED, reporting queue and logs."""
        from fal_client import Completed, InProgress, Queued

        delay, position, seen = POLL_FIRST, None, 0
        state: str | None = None
        while True:
            await asyncio.sleep(delay)
            status = await self._step("polling the status", handle.status(with_logs=True), call)
            call.polls += 1
            if isinstance(status, Completed):
                new = _messages(status.logs)[seen:]
                if new:
                    report("running", logs=new)
                logger.debug("%s completed after %d polls", call.where(), call.polls)
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

    async def _result(
        self, handle: AsyncRequestHandle, completed: Completed, call: _Call
    ) -> dict[str, Any]:
        """The result JSON; a COMPLETED request carrying an error becomes a BackendError."""
        call.live = False  # done on the server: nothing left to cancel
        if completed.error is not None and completed.error_type == "request_cancelled":
            raise BackendError(f"{call.where()} was cancelled on fal.ai; run it again.")
        result = await self._step("fetching the result", handle.get(interval=POLL_FIRST), call)
        if completed.error is not None:
            raise BackendError(
                f"{call.where()} failed on fal.ai: {_short(completed.error)}. Nothing was "
                "cached; try again, or try another endpoint."
            )
        if not isinstance(result, dict):
            raise InvalidResult(f"{call.where()} answered {type(result).__name__}, not an object.")
        return result

    async def _download(
        self, http: httpx.AsyncClient, url: str, call: _Call
    ) -> tuple[bytes, str | None]:
        """The result bytes: streamed, capped, retried on transient failures, never on 404."""
        if url.startswith("data:"):
            return _decode_data_uri(url, call)
        problem = ""
        for attempt in range(1, DOWNLOAD_ATTEMPTS + 1):
            wait = DOWNLOAD_BACKOFF * 2 ** (attempt - 1)
            try:
                async with http.stream("GET", url) as response:
                    status = response.status_code
                    if status in _GONE:
                        raise InvalidResult(
                            f"The result of {call.where()} is gone from {url} (HTTP {status}): "
                            "fal keeps result files for a limited time. Nothing was cached; "
                            "run the operation again."
                        )
                    if status in _RETRY_DOWNLOAD:
                        problem = f"HTTP {status}"
                        wait = max(wait, min(_retry_after(response), 5.0))
                    elif status >= 400:
                        raise InvalidResult(
                            f"Downloading the result of {call.where()} failed with HTTP "
                            f"{status} at {url}. Nothing was cached; run it again."
                        )
                    else:
                        return await self._read_capped(response, url, call)
            except httpx.TransportError as exc:
                problem = f"{type(exc).__name__}: {_short(str(exc))}"
            logger.debug("%s: download attempt %d failed (%s)", call.where(), attempt, problem)
            if attempt < DOWNLOAD_ATTEMPTS:
                await asyncio.sleep(wait)
        raise BackendError(
            f"Could not download the result of {call.where()} from {url} after "
            f"{DOWNLOAD_ATTEMPTS} attempts ({problem}). Nothing was cached; try again."
        )

    async def _read_capped(
        self, response: httpx.Response, url: str, call: _Call
    ) -> tuple[bytes, str | None]:
        cap = self.max_result_bytes
        too_big = InvalidResult(
            f"The result of {call.where()} at {url} is larger than {cap / 1e6:.0f} MB; "
            "refused (raise FalBackend(max_result_bytes=...) if that is expected)."
        )
        content_type = response.headers.get("content-type")
        _check_content_type(content_type, url, call)
        declared = response.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > cap:
            raise too_big
        buffer = bytearray()
        async for chunk in response.aiter_bytes():
            buffer += chunk
            if len(buffer) > cap:
                raise too_big
        return bytes(buffer), content_type

    # -- plumbing ------------------------------------------------------------------------------

    async def _step(self, stage: str, awaitable: Awaitable[T], call: _Call) -> T:
        """Await one fal_client call; translate its failures into our errors.

        The translated error is raised outside the ``except`` block, so it carries no
        ``__context__``: httpx exceptions hold the request, and the request holds the key.
        """
        import fal_client

        failure: BackendError
        try:
            return await awaitable
        except NbimgprepError:
            raise
        except (fal_client.FalClientError, httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
            failure = _translate(exc, stage, call)
        raise failure

    def _find_key(self) -> str | None:
        if self._key:
            return self._key
        environ = os.environ if self._environ is None else self._environ
        key = environ.get("FAL_KEY")
        if not key and environ.get("FAL_KEY_ID") and environ.get("FAL_KEY_SECRET"):
            key = f"{environ['FAL_KEY_ID']}:{environ['FAL_KEY_SECRET']}"
        return key or None

    def _clients_for_loop(self, key: str) -> _LoopClients:
        import fal_client

        loop = asyncio.get_running_loop()
        fingerprint = hash(key)
        with self._lock:
            for dead in [other for other in self._clients if other.is_closed()]:
                del self._clients[dead]
            clients = self._clients.get(loop)
            if clients is None or clients.key_fingerprint != fingerprint:
                clients = _LoopClients(
                    fingerprint,
                    fal_client.AsyncClient(key=key),
                    httpx.AsyncClient(follow_redirects=True, timeout=httpx.Timeout(60.0)),
                )
                self._clients[loop] = clients
            return clients


# -- helpers (pure functions) ---------------------------------------------------------------


def _endpoint(spec: EndpointSpec) -> Endpoint:
    if isinstance(spec, Endpoint):
        return spec
    if isinstance(spec, str):
        return Endpoint(spec)
    endpoint_id, arguments = spec
    return Endpoint(endpoint_id, dict(arguments))


async def _cancel_on_server(handle: AsyncRequestHandle, call: _Call) -> None:
    """Best-effort ``PUT cancel``; shielded so a second task cancel cannot cut it short."""

    async def cancel() -> None:
        try:
            await asyncio.wait_for(handle.cancel(), CANCEL_TIMEOUT)
            logger.debug("%s cancelled on the server", call.where())
        except Exception as exc:  # the request may have finished meanwhile: nothing to do
            logger.debug("%s: cancel failed (%s)", call.where(), type(exc).__name__)

    call.live, call.cancelled = False, True
    await asyncio.shield(asyncio.ensure_future(cancel()))


async def _close(clients: _LoopClients) -> None:
    await clients.http.aclose()
    # fal_client.AsyncClient has no aclose(); its httpx client is cached on the instance.
    cached = vars(clients.fal).get("_client")
    inner = getattr(cached, "value", None)
    if isinstance(inner, httpx.AsyncClient):
        await inner.aclose()


def _messages(logs: Sequence[Any] | None) -> list[str]:
    out = []
    for entry in logs or ():
        message = entry.get("message") if isinstance(entry, Mapping) else entry
        out.append(str(message))
    return out


def _result_file(result: Mapping[str, Any], call: _Call) -> tuple[str, str | None]:
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


def _decode_data_uri(url: str, call: _Call) -> tuple[bytes, str | None]:
    header, _, payload = url.partition(",")
    content_type = header[5:].split(";", 1)[0] or None
    try:
        return base64.b64decode(payload, validate=True), content_type
    except (binascii.Error, ValueError):
        raise InvalidResult(f"{call.where()} answered a data URI that is not base64.") from None


def _check_content_type(content_type: str | None, url: str, call: _Call) -> None:
    if content_type is None:
        return
    mime = content_type.split(";", 1)[0].strip().lower()
    if not mime.startswith("image/") and mime not in _BINARY_TYPES:
        raise InvalidResult(
            f"The result of {call.where()} at {url} is {mime}, not an image. Nothing was cached."
        )


def _retry_after(response: httpx.Response) -> float:
    value = response.headers.get("retry-after", "")
    try:
        return max(0.0, float(value))
    except ValueError:
        return 0.0


def _short(text: Any, limit: int = 300) -> str:
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _http_status(exc: BaseException) -> tuple[int | None, Any]:
    """The status code and the ``detail`` of a fal_client or httpx HTTP error."""
    import fal_client

    if isinstance(exc, fal_client.FalClientHTTPError):
        return exc.status_code, exc.message
    if isinstance(exc, httpx.HTTPStatusError):
        try:
            body = exc.response.json()
        except ValueError:
            body = exc.response.text
        detail = body.get("detail", body) if isinstance(body, dict) else body
        return exc.response.status_code, detail
    return None, None


def _fields(detail: Any) -> str:
    """'upscale_factor: must be ...; checkpoint: ...' from a FastAPI-style 422 detail."""
    if isinstance(detail, list):
        parts = []
        for item in detail:
            if isinstance(item, Mapping):
                loc = [str(p) for p in item.get("loc", ()) if p != "body"]
                parts.append(f"{'.'.join(loc) or '?'}: {item.get('msg', '')}")
            else:
                parts.append(str(item))
        if parts:
            return "; ".join(parts)
    return _short(detail)


def _translate(exc: BaseException, stage: str, call: _Call) -> BackendError:
    """One of our errors for a fal_client/httpx failure; the key is never in the text."""
    where = call.where()
    status, detail = _http_status(exc)
    error: BackendError
    if status in (401, 403):
        error = FalKeyRejected(
            f"FAL_KEY rejected by fal.ai (HTTP {status}) while {stage}. Check the key at "
            "https://fal.ai/dashboard/keys (and the account's balance), set FAL_KEY to a valid "
            "key, and run again."
        )
    elif status == 422:
        error = BackendError(
            f"{where} refused the arguments (HTTP 422) while {stage}: {_fields(detail)}. "
            "Check the endpoint and its arguments given in Processor(endpoints=...)."
        )
    elif status == 404 and stage == "submitting":
        error = BackendError(
            f"fal.ai has no endpoint {call.endpoint!r} (HTTP 404): {_short(detail)}. Check the "
            "endpoint id given in Processor(endpoints=...)."
        )
    elif status == 429:
        error = BackendError(
            f"fal.ai kept rate-limiting {where} (HTTP 429) while {stage}, after fal_client's "
            "retries. Wait a minute and run again, or run fewer calls at once."
        )
    elif status is not None and status >= 500:
        error = BackendError(
            f"fal.ai failed (HTTP {status}) while {stage} for {where}: {_short(detail)}. "
            "This is on fal's side; try again later."
        )
    elif status is not None:
        error = BackendError(
            f"fal.ai answered HTTP {status} while {stage} for {where}: {_short(detail)}."
        )
    elif isinstance(exc, httpx.TimeoutException):
        error = BackendError(
            f"fal.ai did not answer in time while {stage} for {where} "
            f"({type(exc).__name__}). Check the network and try again."
        )
    elif isinstance(exc, httpx.HTTPError):
        error = BackendError(
            f"Could not reach fal.ai while {stage} for {where} ({type(exc).__name__}: "
            f"{_short(exc)}). Check the network and try again."
        )
    else:
        error = InvalidResult(
            f"fal.ai sent a malformed response while {stage} for {where} "
            f"({type(exc).__name__}: {_short(exc)}). Nothing was cached; try again."
        )
    if call.key and call.key in str(error):
        error = type(error)(str(error).replace(call.key, "***"))
    return error
