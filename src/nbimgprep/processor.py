"""Processor: the one engine behind every face of nbimgprep.

``run`` is the single path: key the request, look it up, and on a miss make exactly one
backend call per key (however many callers wait, in this process or another), validate the
result, store it, and hand back a :class:`Result` (what is done with the input before the call
and with its bytes after it is :mod:`nbimgprep.fresh`). ``run_sync`` only drives ``run`` on a
private event loop (see :mod:`nbimgprep.sync_loop`).
"""

from __future__ import annotations

import asyncio
import os
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any, Literal

from . import batch
from .backends import Backend, Resume, make_backend
from .batch import Sources
from .batch_results import Batch, BatchItem, Plan
from .flights import Flight, FlightTable
from .fresh import Miss, check_input, keep
from .images import ImageRef
from .journal import RequestJournal
from .key_lock import KeyLock
from .operations import Endpoint, cache_key, get_operation
from .results import (
    ProgressCallback,
    ProgressEvent,
    ProgressKind,
    Result,
    Source,
    Tier,
    result_of,
)
from .shared import SharedLink, SharedTier
from .store import Entry, ResultStore
from .sync_loop import LoopThread

__all__ = ["ProgressEvent", "Processor", "Result", "Source"]


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
        elapsed = time.perf_counter() - started
        return result_of(entry, cache_hit=True, elapsed=elapsed, tier="local")

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
            elapsed = time.perf_counter() - started
            result = result_of(entry, cache_hit=True, elapsed=elapsed, tier="local")
            _notify([on_progress], ProgressEvent("hit", key, elapsed=result.elapsed))
            return result
        request = Miss(op, image, endpoint, canonical, key, refresh, started)
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
        return self.store.tagged(tag)

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

    async def _join_flight(self, request: Miss, on_progress: ProgressCallback | None) -> Result:
        shared = await self._flights.join(
            request.key, lambda flight: self._produce(request, flight), on_progress
        )
        return replace(shared, elapsed=time.perf_counter() - request.started)

    async def _produce(self, request: Miss, flight: Flight) -> Result:
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
                        elapsed = time.perf_counter() - request.started
                        return result_of(entry, cache_hit=True, elapsed=elapsed, tier=tier)
                await asyncio.to_thread(check_input, request)
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
                    result = await asyncio.to_thread(
                        keep,
                        request,
                        output,
                        backend_seconds,
                        store=self.store,
                        shared=self.shared,
                        backend=self.backend.name,
                    )
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

    def _resume(self, journal: RequestJournal, request: Miss) -> dict[str, Resume]:
        """``resume=`` for a backend whose requests outlive this process (else nothing): the
        request a dead process left in the journal for this key, and how to note a new one."""
        if not getattr(self.backend, "resumable", False):
            return {}
        pending = journal.read(request.key)
        endpoint = request.endpoint.id
        earlier = pending.request_id if pending and pending.endpoint == endpoint else None
        return {"resume": Resume(earlier, lambda rid: journal.write(request.key, rid, endpoint))}

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
