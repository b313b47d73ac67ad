"""Backends: where an operation actually runs.

A backend turns (operation, image, params, endpoint) into result bytes. It knows nothing of
the cache: the :class:`~nbimgprep.processor.Processor` keys, looks up, validates and stores.
Two exist: ``"local"`` (offline, classical computer vision) and ``"fal"`` (fal.ai models).
Tests may pass any object that follows :class:`Backend`.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

from ..errors import OperationError

if TYPE_CHECKING:
    from ..images import ImageRef
    from ..operations import Endpoint, Operation

__all__ = [
    "Backend",
    "BackendOutput",
    "ProgressReporter",
    "Resume",
    "find_fal_key",
    "make_backend",
]


@dataclass(frozen=True)
class BackendOutput:
    """What a backend returns: the result's bytes, and where they came from."""

    data: bytes
    content_type: str | None = None
    request_id: str | None = None
    remote_url: str | None = None


class ProgressReporter(Protocol):
    """Called by a backend while it waits: ``report("queued", position=3)``,
    ``report("running", logs=["step 1/4"])``."""

    def __call__(
        self,
        kind: Literal["queued", "running"],
        *,
        position: int | None = None,
        logs: Sequence[str] = (),
    ) -> None: ...


@dataclass(frozen=True)
class Resume:
    """How a remote request outlives the process that made it (see :mod:`nbimgprep.journal`).

    Given to backends that set ``resumable = True`` as ``run(..., resume=Resume(...))``:
    ``request_id`` is a request an earlier, dead process submitted for this very key (None:
    none); the backend re-attaches to it (status, then result) instead of submitting again,
    and submits afresh if it is gone or failed. ``submitted(request_id)`` must be called as
    soon as a new submit returns, so a crash from then on can be resumed in turn.
    """

    request_id: str | None
    submitted: Callable[[str], None]


@runtime_checkable
class Backend(Protocol):
    """The seam between the engine and a model provider.

    A backend whose work is a remote request that survives its process (fal.ai) also sets
    ``resumable = True`` and accepts a keyword argument ``resume`` (a :class:`Resume`) in
    :meth:`run`; other backends (the local one, test doubles) need neither.
    """

    #: ``"local"`` or ``"fal"``: recorded in every cache entry.
    name: str

    def endpoint_for(self, operation: Operation) -> Endpoint:
        """The endpoint (id and fixed arguments) this backend uses for ``operation``."""
        ...

    async def run(
        self,
        operation: Operation,
        image: ImageRef,
        params: Mapping[str, Any],
        endpoint: Endpoint,
        report: ProgressReporter,
    ) -> BackendOutput:
        """Produce the result of ``operation`` on ``image``. Raise a BackendError on failure.

        Cancelling the task running this coroutine must stop the work (and cancel any
        remote request)."""
        ...

    async def aclose(self) -> None:
        """Release connections; the backend may be used again afterwards."""
        ...


def find_fal_key(environ: Mapping[str, str] | None = None) -> str | None:
    """The fal.ai key in ``environ`` (``os.environ`` by default): ``FAL_KEY``, or
    ``FAL_KEY_ID`` and ``FAL_KEY_SECRET`` joined as ``id:secret``; None when neither is set.

    The one place that decides "is there a fal key": :func:`make_backend` picks fal.ai by it,
    and the fal backend reads the key through it when a call runs."""
    env = os.environ if environ is None else environ
    key = env.get("FAL_KEY")
    if not key and env.get("FAL_KEY_ID") and env.get("FAL_KEY_SECRET"):
        key = f"{env['FAL_KEY_ID']}:{env['FAL_KEY_SECRET']}"
    return key or None


def make_backend(
    backend: str | Backend | None,
    *,
    endpoints: Mapping[str, Any] | None,
    timeout: float,
    environ: Mapping[str, str],
) -> Backend:
    """The backend a :class:`~nbimgprep.processor.Processor` was asked for: a name, an object,
    or None (fal.ai when a fal key is set, the offline local backend otherwise)."""
    if backend is None:
        if find_fal_key(environ):
            backend = "fal"
        else:
            print(
                "nbimgprep: FAL_KEY is not set, using the offline local backend "
                '(lower quality; set FAL_KEY or pass backend="fal" for fal.ai models).',
                file=sys.stderr,
            )
            backend = "local"
    if backend == "fal":
        from .fal import FalBackend

        return FalBackend(endpoints=endpoints, timeout=timeout, environ=environ)
    if endpoints:
        raise OperationError(
            'endpoints= applies to the fal backend only; remove it, or use backend="fal".'
        )
    if backend == "local":
        from .local import LocalBackend

        return LocalBackend()
    if isinstance(backend, str):
        raise OperationError(f'Unknown backend {backend!r}; use "local" or "fal".')
    return backend
