"""Processor: the one engine behind every face of nbimgprep.

``run`` is the single path: key the request, look it up, and on a miss make exactly one
backend call per key (however many callers wait, in this process or another), validate the
result, store it, and hand back a :class:`Result`. ``run_sync`` only drives ``run`` on a
private event loop (see :mod:`nbimgprep.sync_loop`).
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

from . import batch
from .backends import Backend, BackendOutput, Resume, make_backend
from .batch import Sources
from .batch_results import Batch, BatchItem, Plan
from .errors import ImageError, InvalidResult, OperationError, StoreError
from .flights import Flight, FlightTable
from .images import MAX_PIXELS, ImageRef, content_type_of, decode_image
from .journal import RequestJournal
from .key_lock import KeyLock
from .operations import Endpoint, Operation, cache_key, get_operation
from .results import ProgressCallback, ProgressEvent, ProgressKind, Result, Source, Tier
from .shared import SharedLink, SharedTier
from .store import Entry, ResultMeta, ResultStore
from .store.files import uncached_copy
from .sync_loop import LoopThread

__all__ = ["ProgressEvent", "Processor", "Result", "Source"]

#: Set once this process has warned that results are not being cached (once per process,
#: however many Processors it makes).
_store_warned = threading.Event()


@dataclass(frozen=True)
class _Request:
    """One miss to produce: everything the backend call and the store entry need."""

    op: Operation
    image: ImageRef
    endpoint: Endpoint
    params: dict[str, Any]
    key: str
    refresh: bool
    started: float


class Processor:
    """Runs operations on images, through the cache.

    >>> proc = Processor()                                 # doctest: +SKIP
    >>> r = await proc.run("upscale", "photo.jpg", scale=2)  # doctest: +SKIP
    >>> r.cache_hit, r.path                                # doctest: +SKIP

    ``backend`` is ``"local"``, ``"fal"``, a :class:`~nbimgprep.backends.Backend` object, or
    None: fal.ai when ``FAL_KEY`` is set, the offline local backend otherwise.
    ``shared`` (default ``$NBIMGPREP_CACHE_URL``) is a team's ``s3://bucket/prefix`` behind
    the local store, with fsspec/s3fs ``shared_options`` (see :mod:`nbimgprep.shared`).
    """

    def __init__(
        self,
        backend: str | Backend | None = None,
        *,
        cache_dir: str | os.PathLike[str] | None = None,
        store: ResultStore | None = None,
        endpoints: Mapping[str, Any] | None = None,
        timeout: float = 300.0,
        environ: Mapping[str, str] | None = None,
        shared: str | SharedTier | None = None,
        shared_options: Mapping[str, Any] | None = None,
    ) -> None:
        env = os.environ if environ is None else environ
        self.store = store if store is not None else ResultStore(cache_dir, environ=env)
        self.shared = SharedLink.configured(shared, shared_options, self.store, env)
        self.backend = make_backend(backend, endpoints=endpoints, timeout=timeout, environ=env)
        self._flights = FlightTable()
        self._loop_thread = LoopThread()

    def __repr__(self) -> str:
        shared = "" if self.shared is None else f", shared={self.shared.tier.url!r}"
        return (
            f"Processor(backend={self.backend.name!r}, cache_dir={str(self.store.root)!r}{shared})"
        )

    # -- keying ---------------------------------------------------------------------------

    def image(self, source: Source) -> ImageRef:
        """An :class:`ImageRef` for ``source`` that remembers file hashes in the store."""
        if isinstance(source, ImageRef):
            return source
        return ImageRef(source, memo=self.store)

    def endpoint_for(self, operation: str) -> Endpoint:
        """The endpoint this processor's backend uses for ``operation``."""
        return self.backend.endpoint_for(get_operation(operation))

    def key_for(self, operation: str, source: Source, **params: Any) -> str:
        """The cache key a call with these arguments would use."""
        op = get_operation(operation)
        return cache_key(
            self.image(source).sha256,
            op.name,
            self.backend.endpoint_for(op),
            op.canonical_params(params),
        )

    def cached(self, operation: str, source: Source, **params: Any) -> Result | None:
        """The cached result of this call, counted as a hit, or None (not counted as a miss:
        the call that follows counts it). Blocking (it reads and hashes the input): in async
        code, call it from a worker thread. A batch looks its hits up in bulk this way."""
        started = time.perf_counter()
        key = self.key_for(operation, source, **params)
        entry = self.store.lookup(key, count_miss=False)
        if entry is None:
            return None
        return self._result(entry, cache_hit=True, started=started, tier="local")

    # -- running --------------------------------------------------------------------------

    async def run(
        self,
        operation: str,
        source: Source,
        *,
        refresh: bool = False,
        on_progress: ProgressCallback | None = None,
        endpoint: str | Endpoint | None = None,
        **params: Any,
    ) -> Result:
        """Run ``operation`` on ``source`` through the cache.

        A hit returns at once. On a miss (or with ``refresh=True``, which replaces the
        entry) the backend is called once per key, however many callers ask at the same time.
        ``on_progress`` receives :class:`ProgressEvent` objects. Errors are never cached.
        ``endpoint`` (an id or an :class:`Endpoint`) asks for another model than the
        backend's own for this call; its results are keyed apart.
        """
        started = time.perf_counter()
        op = get_operation(operation)
        canonical = op.canonical_params(params)
        if endpoint is None:
            endpoint = self.backend.endpoint_for(op)
        elif isinstance(endpoint, str):
            endpoint = Endpoint(endpoint)

        def key_and_lookup() -> tuple[ImageRef, str, Entry | None]:
            # Reading, encoding and hashing the input happen here, off the event loop; the
            # bytes read are kept for the miss's decode and upload (one read, not two).
            image = self.image(source)
            key = cache_key(image.sha256_for_processing(), op.name, endpoint, canonical)
            return image, key, (None if refresh else self.store.lookup(key))

        image, key, entry = await asyncio.to_thread(key_and_lookup)
        if entry is not None:
            result = self._result(entry, cache_hit=True, started=started, tier="local")
            _notify([on_progress], ProgressEvent("hit", key, elapsed=result.elapsed))
            return result
        request = _Request(op, image, endpoint, canonical, key, refresh, started)
        return await self._join_flight(request, on_progress)

    def run_sync(
        self,
        operation: str,
        source: Source,
        *,
        refresh: bool = False,
        on_progress: ProgressCallback | None = None,
        endpoint: str | Endpoint | None = None,
        **params: Any,
    ) -> Result:
        """:meth:`run` for plain code: scripts, and cells that prefer not to ``await``."""
        return self._loop_thread.run(
            self.run(
                operation,
                source,
                refresh=refresh,
                on_progress=on_progress,
                endpoint=endpoint,
                **params,
            )
        )

    # -- tags (a review's decisions; they never change what a lookup returns) --------------

    def tag(self, result: Result, *tags: str) -> None:
        """Add ``tags`` to ``result``'s cache entry (``proc.tag(r, "accepted")``)."""
        self.store.tag(result.key, *tags)

    def untag(self, result: Result, *tags: str) -> None:
        """Remove ``tags`` from ``result``'s cache entry."""
        self.store.untag(result.key, *tags)

    def tagged(self, tag: str) -> set[str]:
        """The keys of every cache entry carrying ``tag``: one query, however many."""
        return {entry.key for entry in self.store.entries(tag=tag)}

    # -- batches (see nbimgprep.batch) ---------------------------------------------------

    async def run_many(
        self,
        operation: str,
        sources: Sources,
        *,
        concurrency: int | None = None,
        progress: bool = True,
        on_error: Literal["collect", "raise"] = "collect",
        max_fresh: int | None = None,
        refresh: bool = False,
        on_progress: ProgressCallback | None = None,
        on_item: Callable[[BatchItem], object] | None = None,
        **params: Any,
    ) -> Batch:
        """Run ``operation`` on every source: a list of paths, bytes, PIL images or
        ImageRefs, a folder (its images, sorted) or a glob. Returns a :class:`Batch` in
        input order; a failed item holds its error (naming the input) in its place.

        ``concurrency`` bounds the calls in flight (default
        :data:`~nbimgprep.throttle.DEFAULT_CONCURRENCY`; a 429 lowers it for a while and the
        refused item is retried). ``progress`` shows a tqdm bar; ``on_error="raise"`` raises
        the first error and cancels the rest; ``max_fresh=N`` makes at most N fresh calls,
        the items past it hold :class:`~nbimgprep.errors.BudgetExceeded`. ``on_item``
        receives each :class:`~nbimgprep.batch_results.BatchItem` as it finishes.
        """
        return await batch.run_many(
            self,
            operation,
            sources,
            concurrency=concurrency,
            progress=progress,
            on_error=on_error,
            max_fresh=max_fresh,
            refresh=refresh,
            on_progress=on_progress,
            on_item=on_item,
            **params,
        )

    def run_many_sync(self, operation: str, sources: Sources, **options: Any) -> Batch:
        """:meth:`run_many` for plain code (same arguments)."""
        return self._loop_thread.run(self.run_many(operation, sources, **options))

    def plan(self, operation: str, sources: Sources, **params: Any) -> Plan:
        """How many of ``sources`` are cache hits (local, and in the shared tier if there is
        one) and how many would be fresh calls (and their output megapixels), without calling
        the backend (see :mod:`nbimgprep.plan`). A plain method: fine inside a running event
        loop."""
        return batch.plan(self, operation, sources, **params)

    async def _join_flight(self, request: _Request, on_progress: ProgressCallback | None) -> Result:
        shared = await self._flights.join(
            request.key, lambda flight: self._produce(request, flight), on_progress
        )
        return replace(shared, elapsed=time.perf_counter() - request.started)

    async def _produce(self, request: _Request, flight: Flight) -> Result:
        """The one backend call for a key: lock, re-check, check input, call, keep."""

        def emit(
            kind: ProgressKind, position: int | None = None, logs: tuple[str, ...] = ()
        ) -> None:
            elapsed = time.perf_counter() - request.started
            _notify(flight.listeners, ProgressEvent(kind, request.key, position, logs, elapsed))

        def report(
            kind: Literal["queued", "running"], *, position: int | None = None, logs: Any = ()
        ) -> None:
            emit(kind, position, tuple(str(line) for line in logs))

        try:
            async with KeyLock(self.store.lock_path(request.key), self.store.file_mode):
                if not request.refresh:
                    # Another process may have produced it while we waited for the lock.
                    entry = await asyncio.to_thread(
                        self.store.lookup, request.key, count_miss=False
                    )
                    tier: Tier = "local"
                    if entry is None and self.shared is not None:
                        # Another machine may have paid for it: one request, under the lock.
                        tier = "shared"
                        entry = await asyncio.to_thread(self.shared.fetch, request.key)
                    if entry is not None:
                        emit("hit")
                        return self._result(
                            entry, cache_hit=True, started=request.started, tier=tier
                        )
                await asyncio.to_thread(self._check_input, request)
                backend_started = time.perf_counter()
                journal = RequestJournal(self.store.root)
                try:
                    output = await self.backend.run(
                        request.op,
                        request.image,
                        request.params,
                        request.endpoint,
                        report,
                        **self._resume(journal, request),
                    )
                    backend_seconds = time.perf_counter() - backend_started
                    result = await asyncio.to_thread(self._keep, request, output, backend_seconds)
                finally:  # stored, or failed in a live process: nothing left to resume
                    journal.remove(request.key)
        except asyncio.CancelledError:
            emit("failed", logs=("cancelled",))
            raise
        except BaseException as exc:
            emit("failed", logs=(str(exc),))
            raise
        emit("done")
        return result

    def _resume(self, journal: RequestJournal, request: _Request) -> dict[str, Resume]:
        """``resume=`` for a backend whose requests outlive this process (else nothing): the
        request a dead process left in the journal for this key, and how to note a new one."""
        if not getattr(self.backend, "resumable", False):
            return {}
        pending = journal.read(request.key)
        endpoint = request.endpoint.id
        earlier = pending.request_id if pending and pending.endpoint == endpoint else None
        return {"resume": Resume(earlier, lambda rid: journal.write(request.key, rid, endpoint))}

    def _check_input(self, request: _Request) -> None:
        """Decode the input (a bad file fails here, before any cost) and refuse outputs
        larger than :data:`MAX_PIXELS`."""
        op, image, params = request.op, request.image, request.params
        width, height = op.output_size(image.size, params)
        if width * height > MAX_PIXELS:
            raise OperationError(
                f"{image.name}: {op.name} {dict(params)} would make a {width}x{height} image "
                f"({width * height / 1e6:.0f} MP), more than the {MAX_PIXELS / 1e6:.0f} MP "
                "limit. Crop or downscale the input first, or use a smaller scale."
            )

    def _keep(self, request: _Request, output: BackendOutput, backend_seconds: float) -> Result:
        """Validate the backend's bytes, store them, and describe them as a Result."""
        label = f"{request.op.name} result from {request.endpoint.id}"
        try:
            width, height = decode_image(output.data, label).size
        except ImageError as exc:
            raise InvalidResult(f"{exc} Nothing was cached; try again.") from None
        content_type = content_type_of(output.data) or output.content_type
        image = request.image
        try:
            meta = ResultMeta(
                image_hash=image.sha256,
                operation=request.op.name,
                endpoint=request.endpoint,
                params=request.params,
                backend=self.backend.name,
                width=width,
                height=height,
                content_type=content_type,
                backend_seconds=backend_seconds,
                request_id=output.request_id,
                remote_url=output.remote_url,
                source=str(image.path) if image.path is not None else image.name,
            )
            entry = self.store.put(request.key, output.data, meta)
        except StoreError as exc:
            return self._uncached(request, exc, output, (width, height))
        if self.shared is not None:  # after the local put: the tier failing loses nothing
            self.shared.publish(entry, output.data, replace=request.refresh)
        return self._result(entry, cache_hit=False, started=request.started)

    def _uncached(
        self, request: _Request, exc: StoreError, output: BackendOutput, size: tuple[int, int]
    ) -> Result:
        """The store cannot be written: hand the result over anyway, from a temp file (in a
        folder removed when the process exits). One warning per process."""
        if not _store_warned.is_set():
            _store_warned.set()
            warnings.warn(
                f"{exc} Results are returned but NOT cached until this is fixed "
                "(free disk space, or point NBIMGPREP_CACHE_DIR at a writable folder).",
                RuntimeWarning,
                stacklevel=2,
            )
        name = uncached_copy(output.data, prefix=f"nbimgprep-{request.op.name}-")
        return Result(
            cache_hit=False,
            path=name,
            key=request.key,
            image_hash=request.image.sha256,
            operation=request.op.name,
            params=dict(request.params),
            backend=self.backend.name,
            endpoint=request.endpoint.id,
            elapsed=time.perf_counter() - request.started,
            width=size[0],
            height=size[1],
        )

    def _result(
        self, entry: Entry, *, cache_hit: bool, started: float, tier: Tier | None = None
    ) -> Result:
        return Result(
            cache_hit=cache_hit,
            path=entry.path,
            key=entry.key,
            image_hash=entry.image_hash,
            operation=entry.operation,
            params=dict(entry.params),
            backend=entry.backend,
            endpoint=entry.endpoint,
            elapsed=time.perf_counter() - started,
            width=entry.width,
            height=entry.height,
            tier=tier,
        )

    # -- lifecycle ------------------------------------------------------------------------

    async def aclose(self) -> None:
        """Close the backend's connections."""
        await self.backend.aclose()

    def close(self) -> None:
        """Close connections and stop the private event loop."""
        self._loop_thread.run(self.aclose())
        self._loop_thread.close()


def _notify(listeners: Sequence[ProgressCallback | None], event: ProgressEvent) -> None:
    """Tell every listener; a failing listener is reported, never allowed to break the call."""
    for listener in listeners:
        if listener is None:
            continue
        try:
            listener(event)
        except Exception as exc:  # a progress display must not sink the operation
            warnings.warn(f"on_progress callback failed: {exc!r}", RuntimeWarning, stacklevel=2)
