"""A fresh result: what one miss needs, the check of its input before anything is paid for,
and keeping what the backend made — validated, stored, published to the shared tier — as a
:class:`~nbimgprep.results.Result`, or handed over uncached when the store cannot be written.

Why a module of its own: the :class:`~nbimgprep.processor.Processor` decides *when* a backend
is called (lookup, single flight, the per-key lock, the journal); this module is *what is
done with* the input before the call and with the bytes after it: the one place an entry is
made from a call.
"""

from __future__ import annotations

import threading
import time
import warnings
from dataclasses import dataclass
from typing import Any

from .backends import BackendOutput
from .errors import ImageError, InvalidResult, OperationError, StoreError
from .images import MAX_PIXELS, ImageRef, content_type_of, decode_image
from .operations import Endpoint, Operation
from .results import Result, result_of
from .shared import SharedLink
from .store import ResultMeta, ResultStore
from .store.files import uncached_copy

__all__ = ["Miss", "check_input", "keep"]

#: Set once this process has warned that results are not being cached (once per process,
#: however many Processors it makes).
_store_warned = threading.Event()


@dataclass(frozen=True)
class Miss:
    """One miss to produce: everything the backend call and the store entry need."""

    op: Operation
    image: ImageRef
    endpoint: Endpoint
    params: dict[str, Any]
    key: str
    refresh: bool
    started: float


def check_input(miss: Miss) -> None:
    """Decode the input (a bad file fails here, before any cost) and refuse outputs larger
    than :data:`~nbimgprep.images.MAX_PIXELS`."""
    op, image, params = miss.op, miss.image, miss.params
    width, height = op.output_size(image.size, params)
    if width * height > MAX_PIXELS:
        raise OperationError(
            f"{image.name}: {op.name} {dict(params)} would make a {width}x{height} image "
            f"({width * height / 1e6:.0f} MP), more than the {MAX_PIXELS / 1e6:.0f} MP "
            "limit. Crop or downscale the input first, or use a smaller scale."
        )


def keep(
    miss: Miss,
    output: BackendOutput,
    backend_seconds: float,
    *,
    store: ResultStore,
    shared: SharedLink | None,
    backend: str,
) -> Result:
    """Validate the backend's bytes, store them (then publish them to the shared tier), and
    describe them as a Result. ``backend`` is the backend's name, recorded in the entry."""
    label = f"{miss.op.name} result from {miss.endpoint.id}"
    try:
        width, height = decode_image(output.data, label).size
    except ImageError as exc:
        raise InvalidResult(f"{exc} Nothing was cached; try again.") from None
    content_type = content_type_of(output.data) or output.content_type
    image = miss.image
    try:
        meta = ResultMeta(
            image_hash=image.sha256,
            operation=miss.op.name,
            endpoint=miss.endpoint,
            params=miss.params,
            backend=backend,
            width=width,
            height=height,
            content_type=content_type,
            backend_seconds=backend_seconds,
            request_id=output.request_id,
            remote_url=output.remote_url,
            source=str(image.path) if image.path is not None else image.name,
        )
        entry = store.put(miss.key, output.data, meta)
    except StoreError as exc:
        return _uncached(miss, exc, output, (width, height), backend)
    if shared is not None:  # after the local put: the tier failing loses nothing
        shared.publish(entry, output.data, replace=miss.refresh)
    return result_of(entry, cache_hit=False, elapsed=time.perf_counter() - miss.started)


def _uncached(
    miss: Miss, exc: StoreError, output: BackendOutput, size: tuple[int, int], backend: str
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
    name = uncached_copy(output.data, prefix=f"nbimgprep-{miss.op.name}-")
    return Result(
        cache_hit=False,
        path=name,
        key=miss.key,
        image_hash=miss.image.sha256,
        operation=miss.op.name,
        params=dict(miss.params),
        backend=backend,
        endpoint=miss.endpoint.id,
        elapsed=time.perf_counter() - miss.started,
        width=size[0],
        height=size[1],
    )
