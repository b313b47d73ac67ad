"""FalBackend: one queued model call per cache miss, through the official fal_client.

Why it looks the way it does:

* **Clients per event loop.** ``fal_client.AsyncClient`` caches an ``httpx.AsyncClient``
  whose connections belong to the loop that first used them; reused from another loop it fails
  with "Event loop is closed". A backend is used from the Jupyter kernel's loop and from
  ``run_sync``'s private loop, so it keeps one fal client (and one httpx client of ours) per
  running loop, never fal_client's module-level singleton. Entries of closed loops are dropped.
* **The key is read at run time** (:func:`~nbimgprep.backends.find_fal_key`: ``key``, or
  ``FAL_KEY`` / ``FAL_KEY_ID`` + ``FAL_KEY_SECRET`` in ``environ``), so
  ``Processor(backend="fal")`` can be built before the key is set and a missing key is a clear
  :class:`~nbimgprep.errors.FalKeyMissing` at the first call. It is sent to fal's API hosts
  only, never to the result download, and appears in no repr, log line or exception.
* **An overall timeout** (fal_client waits forever by default). On timeout, on task
  cancellation and on any failure while the request is live, the request is cancelled on the
  server, so nobody pays for a result nobody will read.
* **Retries.** fal_client retries 408/409/429, ingress 502/503/504 (nginx pages without an
  ``x-fal-request-id``) and dropped connections, up to 10 attempts with exponential backoff
  (it does not read Retry-After); 500 and app errors are not retried. The result download is
  ours (see :mod:`.transfer`).
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx

from ...errors import FalKeyMissing, FalTimeout, NbimgprepError
from ...operations import Endpoint, Operation, get_operation
from .. import BackendOutput, ProgressReporter, Resume, find_fal_key
from .failures import Call, logger, step
from .queue import cancel_on_server, fetch_result, follow, reattach, result_file
from .transfer import download, input_url

if TYPE_CHECKING:
    from fal_client import AsyncClient

    from ...images import ImageRef

__all__ = ["EndpointSpec", "FalBackend"]

#: How an endpoint may be given: an id, (id, {fixed arguments}), or an Endpoint.
EndpointSpec = str | tuple[str, Mapping[str, Any]] | Endpoint

#: Inputs up to this size travel inline as a data URI; larger ones go through fal storage.
DATA_URI_LIMIT = 1_000_000
#: Results larger than this are refused (a 100 MP PNG is ~ 150-300 MB; 200 MB is generous).
MAX_RESULT_BYTES = 200 * 1024 * 1024


@dataclass
class _LoopClients:
    """The HTTP clients bound to one event loop.

    ``http`` is ours, not fal_client's: it downloads results (without the key) and does what
    fal_client's public API lacks.
    """

    key_fingerprint: int = field(repr=False)
    fal: AsyncClient = field(repr=False)
    http: httpx.AsyncClient = field(repr=False)


class FalBackend:
    """Runs operations on fal.ai. ``FalBackend()`` reads FAL_KEY when it first runs.

    ``endpoints`` maps an operation name to an endpoint id, ``(id, {arguments})`` or an
    :class:`~nbimgprep.operations.Endpoint`; operations not named use the table's default.
    ``timeout`` (seconds, ``None`` for none) bounds a whole call: upload, queue, run, download.
    """

    name = "fal"
    #: A request lives on fal.ai beyond this process: run() accepts resume= (see Resume).
    resumable = True

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
        *,
        resume: Resume | None = None,
    ) -> BackendOutput:
        key = self._find_key()
        if not key:
            raise FalKeyMissing()
        call = Call(endpoint.id, key)
        run = self._run(call, operation, image, params, endpoint, report, resume)
        try:
            return await asyncio.wait_for(run, self.timeout)
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
        call: Call,
        operation: Operation,
        image: ImageRef,
        params: Mapping[str, Any],
        endpoint: Endpoint,
        report: ProgressReporter,
        resume: Resume | None,
    ) -> BackendOutput:
        clients = self._clients_for_loop(call.key)
        handle = None
        if resume is not None and resume.request_id:
            handle = await reattach(clients.fal, endpoint.id, resume.request_id, call)
        if handle is None:
            image_url = await input_url(clients.fal, image, self.data_uri_limit, call)
            arguments = {**operation.fal_arguments(params), **endpoint.arguments}
            arguments["image_url"] = image_url
            handle = await step("submitting", clients.fal.submit(endpoint.id, arguments), call)
            if resume is not None:
                resume.submitted(handle.request_id)
            logger.debug("%s submitted", call.where())
        call.request_id, call.live = handle.request_id, True
        try:
            report("queued", position=None)
            completed = await follow(handle, call, report, clients.http)
            result = await fetch_result(handle, completed, call)
            call.live = False
        finally:
            if call.live:
                await cancel_on_server(handle, call)
        url, declared_type = result_file(result, call)
        data, content_type = await download(clients.http, url, self.max_result_bytes, call)
        # The engine decodes and size-checks every backend's result before caching it.
        return BackendOutput(
            data=data,
            content_type=declared_type or content_type,
            request_id=call.request_id,
            remote_url=None if url.startswith("data:") else url,
        )

    # -- plumbing ------------------------------------------------------------------------------

    def _find_key(self) -> str | None:
        return self._key or find_fal_key(self._environ)

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


def _endpoint(spec: EndpointSpec) -> Endpoint:
    if isinstance(spec, Endpoint):
        return spec
    if isinstance(spec, str):
        return Endpoint(spec)
    endpoint_id, arguments = spec
    return Endpoint(endpoint_id, dict(arguments))


async def _close(clients: _LoopClients) -> None:
    await clients.http.aclose()
    # fal_client.AsyncClient has no aclose(). Its public get_handle() hands out request handles
    # that carry its (lazily made, cached) httpx client as their public ``client`` field; a
    # handle costs no network call, so we take one and close that client through it.
    handle = await clients.fal.get_handle("fal-ai/any", "none")
    await handle.client.aclose()
