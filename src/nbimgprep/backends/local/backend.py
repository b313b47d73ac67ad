"""LocalBackend: the Backend protocol offline, each operation's work run in a worker thread
so the event loop (and a notebook's widgets) stay responsive; cancelling the awaiting task
stops the work at its next checkpoint."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from PIL import Image

from ...errors import BackendError, ImageError
from ...memory import release_freed_memory
from ...operations import Endpoint, Operation
from .. import BackendOutput, ProgressReporter
from .cutout import remove_background
from .faces import face_detail
from .upscale import upscale
from .work import Cancelled, Checkpoint, Logs, Work, require_cv

if TYPE_CHECKING:
    from ...images import ImageRef

__all__ = ["LocalBackend"]


@dataclass(frozen=True)
class LocalWork:
    """How the local backend does one operation, and whether it needs OpenCV for it."""

    work: Work
    needs_cv: bool


class LocalBackend:
    """The offline backend: ``Processor(backend="local")``.

    Endpoint ids are ``local/<operation>``, so a result made here never answers a fal.ai call.
    Upscaling needs only Pillow; background removal and face detail need the ``local`` extra
    (OpenCV and NumPy), imported when first used so ``import nbimgprep`` never needs them.
    """

    name = "local"

    def endpoint_for(self, operation: Operation) -> Endpoint:
        return Endpoint(operation.local_endpoint)

    async def run(
        self,
        operation: Operation,
        image: ImageRef,
        params: Mapping[str, Any],
        endpoint: Endpoint,
        report: ProgressReporter,
    ) -> BackendOutput:
        how = _WORK.get(operation.name)
        if how is None:
            raise BackendError(
                f"The local backend cannot run {operation.name!r}; it runs "
                f"{', '.join(_WORK)}. Use the fal backend for it."
            )
        if how.needs_cv:
            require_cv()
        report("running", logs=[f"{operation.name} of {image.name} on this machine (offline)"])
        checkpoint = Checkpoint()
        try:
            data, logs = await asyncio.to_thread(
                _run_work, how.work, operation, image, params, checkpoint
            )
        except asyncio.CancelledError:
            checkpoint.cancel()
            raise
        if logs:
            report("running", logs=logs)
        return BackendOutput(data=data, content_type="image/png")

    async def aclose(self) -> None:
        """Nothing to release: the backend holds no connections or models."""

    def __repr__(self) -> str:
        return "LocalBackend()"


def _run_work(
    work: Work,
    operation: Operation,
    image: ImageRef,
    params: Mapping[str, Any],
    checkpoint: Checkpoint,
) -> tuple[bytes, Logs]:
    """Decode, process and encode, in the worker thread; errors become BackendErrors."""
    img = image.open()
    checkpoint()
    try:
        result, logs = work(img, operation.output_size(img.size, params), params, checkpoint)
    except Cancelled:
        raise
    except (ImageError, BackendError) as exc:  # said without the input's name: add it
        raise type(exc)(f"{image.name}: {exc}") from None
    except MemoryError:
        raise BackendError(
            f"{image.name}: not enough memory to process {img.width}x{img.height} locally; "
            "crop or downscale it first, or use the fal backend."
        ) from None
    except Exception as exc:  # OpenCV's cv2.error, or a bug: say what failed on what
        detail = "" if type(exc).__module__.startswith("cv2") else f" ({type(exc).__name__}: {exc})"
        raise BackendError(
            f"The local backend's {operation.describe(params)} failed on {image.name} "
            f"({img.width}x{img.height}, {img.mode}){detail}. Try the fal backend, or crop "
            "or convert the image first."
        ) from exc
    checkpoint()
    data = _encode_png(result)
    del result  # a 96 MP upscale is 288 MB: give it back before the result is checked
    release_freed_memory()
    return data, logs


def _encode_png(img: Image.Image) -> bytes:
    """PNG bytes; results over a megapixel get lighter compression (still lossless): level 6
    takes about five times longer for files only ~15% smaller."""
    out = io.BytesIO()
    level = 6 if img.width * img.height <= 1_000_000 else 1
    img.save(out, format="PNG", compress_level=level)
    return out.getvalue()


_WORK: Mapping[str, LocalWork] = {
    "remove_background": LocalWork(remove_background, needs_cv=True),
    "upscale": LocalWork(upscale, needs_cv=False),  # Pillow alone
    "face_detail": LocalWork(face_detail, needs_cv=True),
}
