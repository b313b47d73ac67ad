"""LocalBackend: every operation offline, with Pillow and classical computer vision.

Why it exists: a user with no FAL_KEY (or behind a firewall, or in CI) still gets real results
through the same cache and the same faces. Nothing is downloaded at run time: upscaling is
Pillow's Lanczos resampler, background removal is OpenCV's GrabCut, and face detail finds faces
with the Haar cascades that ship inside ``opencv-python-headless`` 4.x. The results are honest
but plainly below the fal.ai models (BiRefNet, SeedVR, CodeFormer).

The pixel work runs in a worker thread so the event loop (and a notebook's widgets) stay
responsive; cancelling the awaiting task stops the work at its next checkpoint.
"""

from __future__ import annotations

import asyncio
import io
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from PIL import Image, ImageFilter

from ..errors import BackendError, ImageError
from ..memory import release_freed_memory
from ..operations import Endpoint, Operation
from . import BackendOutput, ProgressReporter

if TYPE_CHECKING:
    from ..images import ImageRef

__all__ = ["LocalBackend"]

#: GrabCut runs on a copy no larger than this (long side, pixels): its max-flow time grows
#: quickly with size, and a coarse cut is enough once the edges are refined.
GRABCUT_SIDE = 320
#: The cut's edges are refined with a guided filter on a copy no larger than this.
REFINE_SIDE = 1024
#: GrabCut needs background and subject samples: the image (and the copy it runs on) must be
#: at least this many pixels on its short side, so a border band leaves an inside.
MIN_CUT_SIDE = 8
#: Faces are searched on a copy no larger than this (long side, pixels).
DETECT_SIDE = 1024
FACE_CASCADE = "haarcascade_frontalface_default.xml"
INSTALL_HINT = 'pip install "nbimgprep[local]"'
NO_SUBJECT = (
    "The local background removal found no subject in this image; try cropping closer "
    "around it, or use the fal backend."
)

Logs = list[str]
#: (input, the output size the operation promises, params, checkpoint) -> (output, log lines)
Work = Callable[
    [Image.Image, tuple[int, int], Mapping[str, Any], "Checkpoint"], tuple[Image.Image, Logs]
]


@dataclass(frozen=True)
class LocalWork:
    """How the local backend does one operation, and whether it needs OpenCV for it."""

    work: Work
    needs_cv: bool


class _Cancelled(Exception):
    """Raised inside the worker thread when the awaiting task was cancelled."""


class Checkpoint:
    """Lets the worker thread stop between stages once the awaiting task is cancelled."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    def __call__(self) -> None:
        if self._event.is_set():
            raise _Cancelled


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
            _require_cv()
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
    except _Cancelled:
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


def _require_cv() -> tuple[Any, Any]:
    """OpenCV and NumPy, or a BackendError saying how to install them."""
    try:
        import cv2
        import numpy as np
    except ImportError as exc:
        raise BackendError(
            "The local backend needs OpenCV and NumPy for background removal and face "
            f"detail, and they are not installed ({exc}). Fix: {INSTALL_HINT}"
        ) from None
    return cv2, np


# -- upscale -------------------------------------------------------------------------------


def _upscale(
    img: Image.Image, size: tuple[int, int], params: Mapping[str, Any], checkpoint: Checkpoint
) -> tuple[Image.Image, Logs]:
    """Lanczos to exactly the promised size, then a mild unsharp mask on the colour only."""
    scale = size[0] / img.width
    big = img.resize(size, Image.Resampling.LANCZOS)  # RGBA/LA: premultiplied by Pillow
    checkpoint()
    sharpen = ImageFilter.UnsharpMask(radius=0.6 * scale, percent=70, threshold=2)
    if big.mode in ("RGBA", "LA"):
        *colour, alpha = big.split()
        body = _filter_in_bands(Image.merge("RGB" if big.mode == "RGBA" else "L", colour), sharpen)
        big = Image.merge(big.mode, (*body.split(), alpha))
    else:
        big = _filter_in_bands(big, sharpen)
    return big, [f"Lanczos x{scale:g} with mild sharpening: {size[0]}x{size[1]}"]


def _filter_in_bands(
    img: Image.Image, flt: ImageFilter.Filter, rows: int = 512, margin: int = 32
) -> Image.Image:
    """``img.filter(flt)`` a band of rows at a time, written back into ``img``.

    A whole-image filter holds its input, its output and a transposed copy at once (three
    times the image: 860 MB for a 96 MP upscale); bands hold the image once. Each band is
    read with ``margin`` rows of context on both sides, far wider than the sharpening
    kernel, and read before the band above it is written back, so the result is the same
    as filtering the whole image.
    """
    width, height = img.size
    if height <= rows + 2 * margin:
        return img.filter(flt)

    def band(top: int) -> Image.Image:
        return img.crop((0, max(0, top - margin), width, min(height, top + rows + margin)))

    pending = band(0)
    for top in range(0, height, rows):
        done = pending.filter(flt)
        if top + rows < height:
            pending = band(top + rows)  # before this band is written over its context rows
        skip = top - max(0, top - margin)
        img.paste(done.crop((0, skip, width, skip + min(rows, height - top))), (0, top))
    return img


# -- remove_background ---------------------------------------------------------------------


def _remove_background(
    img: Image.Image, size: tuple[int, int], params: Mapping[str, Any], checkpoint: Checkpoint
) -> tuple[Image.Image, Logs]:
    """GrabCut on a small copy, cleaned and feathered, then applied at full size as alpha."""
    cv2, np = _require_cv()
    if min(img.size) < MIN_CUT_SIDE:
        raise ImageError(
            f"{img.width}x{img.height} is too small to tell a subject from its background "
            f"(the local background removal needs at least {MIN_CUT_SIDE} px on each side); "
            "use a larger image or crop, or the fal backend."
        )
    rgba = img.convert("RGBA")
    full = np.asarray(rgba)
    height, width = full.shape[:2]
    # Small enough to cut quickly, large enough on the short side to have an inside.
    factor = min(1.0, max(GRABCUT_SIDE / max(width, height), MIN_CUT_SIDE / min(width, height)))
    small_size = (max(1, round(width * factor)), max(1, round(height * factor)))
    small = cv2.resize(full, small_size, interpolation=cv2.INTER_AREA)
    bgr = np.ascontiguousarray(small[:, :, 2::-1])
    known_bg = small[:, :, 3] < 128  # already transparent in the input
    checkpoint()

    mask = _initial_mask(cv2, np, bgr, known_bg)
    if (mask == cv2.GC_BGD).all():  # e.g. an input that is already transparent all over
        raise BackendError(NO_SUBJECT)
    bgd_model = np.zeros((1, 65), np.float64)
    fgd_model = np.zeros((1, 65), np.float64)
    mode = cv2.GC_INIT_WITH_MASK
    for _ in range(4):  # one iteration per call, so cancellation is checked in between
        cv2.grabCut(bgr, mask, None, bgd_model, fgd_model, 1, mode)
        mode = cv2.GC_EVAL
        checkpoint()
    fg = ((mask == cv2.GC_FGD) | (mask == cv2.GC_PR_FGD)).astype(np.uint8)
    fg = _clean_mask(cv2, np, fg)
    if not fg.any():
        raise BackendError(NO_SUBJECT)
    alpha = _refined_alpha(cv2, np, fg, full)
    alpha = np.minimum(alpha, full[:, :, 3])
    out = full.copy()
    out[:, :, 3] = alpha
    kept = float((alpha > 127).mean())
    return Image.fromarray(out, "RGBA"), [f"GrabCut kept {kept:.0%} of the image as subject"]


def _initial_mask(cv2: Any, np: Any, bgr: Any, known_bg: Any) -> Any:
    """Border band: background; the bottom band only probably so (subjects touch it).

    Border pixels whose colour the rest of the border hardly shows (a subject cut by the
    frame) stay probably-foreground, so GrabCut decides them.
    """
    h, w = bgr.shape[:2]
    band = max(2, round(0.03 * min(h, w)))
    mask = np.full((h, w), cv2.GC_PR_FGD, np.uint8)
    border = np.zeros((h, w), bool)
    border[:band, :] = border[:, :band] = border[:, w - band :] = True
    bottom = np.zeros((h, w), bool)
    bottom[h - band :, :] = True
    mask[border] = cv2.GC_BGD
    mask[bottom & ~border] = cv2.GC_PR_BGD
    mask[known_bg] = cv2.GC_BGD
    return mask


def _clean_mask(cv2: Any, np: Any, fg: Any) -> Any:
    """Drop specks, fill pinholes, keep the subject's large connected parts."""
    side = max(fg.shape)
    k = max(3, round(side / 160) | 1)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k))
    fg = cv2.morphologyEx(fg, cv2.MORPH_OPEN, kernel)
    fg = cv2.morphologyEx(fg, cv2.MORPH_CLOSE, kernel)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(fg, connectivity=8)
    if count <= 1:
        return fg
    areas = stats[1:, cv2.CC_STAT_AREA]
    keep = 1 + np.flatnonzero(areas >= 0.1 * areas.max())
    fg = np.isin(labels, keep).astype(np.uint8)
    # Enclosed holes up to 3% of the image are mostly parts of the subject whose colour looked
    # like the background (a dark collar, a shadowed fold); true holes are usually larger.
    holes = 1 - fg
    count, labels, stats, _ = cv2.connectedComponentsWithStats(holes, connectivity=4)
    small_hole = stats[:, cv2.CC_STAT_AREA] < 0.03 * fg.size
    touches = np.zeros(count, bool)
    touches[np.unique(labels[0, :])] = touches[np.unique(labels[-1, :])] = True
    touches[np.unique(labels[:, 0])] = touches[np.unique(labels[:, -1])] = True
    fill = np.flatnonzero(small_hole & ~touches)
    fill = fill[fill > 0] if count else fill
    if fill.size:
        fg[np.isin(labels, fill) & (holes == 1)] = 1
    return fg


def _refined_alpha(cv2: Any, np: Any, fg: Any, full: Any) -> Any:
    """The coarse cut, snapped to the photo's own edges, as a full-size soft alpha.

    A colour guided filter (He et al.) at up to REFINE_SIDE pixels turns the blocky mask
    into an alpha that follows the image's edges; it is then scaled to full size, where a
    slight blur feathers what is left of the steps.
    """
    height, width = full.shape[:2]
    factor = min(1.0, REFINE_SIDE / max(width, height))
    size = (max(1, round(width * factor)), max(1, round(height * factor)))
    guide = cv2.resize(full[:, :, :3], size, interpolation=cv2.INTER_AREA)
    guide = guide.astype(np.float32) / 255.0
    coarse = cv2.resize(fg.astype(np.float32), size, interpolation=cv2.INTER_LINEAR)
    radius = max(2, round(max(size) / 160))
    alpha = _guided_filter(cv2, np, guide, coarse, radius, 1e-3)
    alpha = np.clip((alpha - 0.5) * 1.6 + 0.5, 0.0, 1.0)  # firmer: fewer see-through parts
    alpha = cv2.GaussianBlur(alpha, (0, 0), 0.7)
    if size != (width, height):
        alpha = cv2.resize(alpha, (width, height), interpolation=cv2.INTER_LINEAR)
        alpha = cv2.GaussianBlur(alpha, (0, 0), max(0.7, 0.4 / factor))
    return np.clip(alpha * 255.0 + 0.5, 0, 255).astype(np.uint8)


def _guided_filter(cv2: Any, np: Any, guide: Any, src: Any, radius: int, eps: float) -> Any:
    """Edge-preserving smoothing of ``src`` along the colour edges of ``guide`` (H x W x 3)."""

    def mean(a: Any) -> Any:
        return cv2.boxFilter(a, -1, (2 * radius + 1, 2 * radius + 1))

    channels = [guide[:, :, i] for i in range(3)]
    mu = [mean(c) for c in channels]
    mu_p = mean(src)
    cov_ip = [mean(c * src) - m * mu_p for c, m in zip(channels, mu, strict=True)]
    var = {
        (i, j): mean(channels[i] * channels[j]) - mu[i] * mu[j] + (eps if i == j else 0.0)
        for i in range(3)
        for j in range(i, 3)
    }
    sigma = np.stack(
        [np.stack([var[min(i, j), max(i, j)] for j in range(3)], -1) for i in range(3)], -2
    )
    a = np.linalg.solve(sigma, np.stack(cov_ip, -1)[..., None])[..., 0]
    b = mu_p - (a * np.stack(mu, -1)).sum(-1)
    mean_a = np.stack([mean(np.ascontiguousarray(a[:, :, i])) for i in range(3)], -1)
    return (mean_a * guide).sum(-1) + mean(b)


# -- face_detail ---------------------------------------------------------------------------


def _face_detail(
    img: Image.Image, size: tuple[int, int], params: Mapping[str, Any], checkpoint: Checkpoint
) -> tuple[Image.Image, Logs]:
    """Find frontal faces; gently smooth, sharpen and lift the contrast of each one."""
    cv2, np = _require_cv()
    alpha = img.getchannel("A") if img.mode in ("RGBA", "LA") else None
    colour = img.convert("RGB" if img.mode in ("RGB", "RGBA") else "L")
    pixels = np.asarray(colour)
    faces = _find_faces(cv2, np, pixels)
    checkpoint()
    if not faces:
        return img, ["no face found: image returned unchanged"]
    out = pixels.copy()
    for box in faces:
        _enhance_face(cv2, np, pixels, out, box)
        checkpoint()
    result = Image.fromarray(out, colour.mode)
    if alpha is not None:
        result = Image.merge(img.mode, (*result.split(), alpha))
    noun = "face" if len(faces) == 1 else "faces"
    return result, [f"found {len(faces)} {noun}; detail enhanced"]


def _find_faces(cv2: Any, np: Any, pixels: Any) -> list[tuple[int, int, int, int]]:
    """Frontal faces as (x, y, w, h) in full-size pixels, largest first."""
    path = cv2.data.haarcascades + FACE_CASCADE
    cascade = cv2.CascadeClassifier(path)
    if cascade.empty():
        raise BackendError(f"OpenCV's face cascade {path} is missing; reinstall it: {INSTALL_HINT}")
    gray = pixels if pixels.ndim == 2 else cv2.cvtColor(pixels, cv2.COLOR_RGB2GRAY)
    height, width = gray.shape
    factor = min(1.0, DETECT_SIDE / max(width, height))
    if factor < 1.0:
        size = (max(1, round(width * factor)), max(1, round(height * factor)))
        gray = cv2.resize(gray, size, interpolation=cv2.INTER_AREA)
    gray = cv2.equalizeHist(gray)
    min_side = max(24, round(min(gray.shape) / 12))
    found = cascade.detectMultiScale(
        gray, scaleFactor=1.1, minNeighbors=6, minSize=(min_side, min_side)
    )
    boxes = [tuple(round(v / factor) for v in box) for box in found]
    return sorted(boxes, key=lambda b: b[2] * b[3], reverse=True)  # type: ignore[misc]


def _enhance_face(cv2: Any, np: Any, src: Any, out: Any, box: Sequence[int]) -> None:
    """Edge-preserving smoothing, CLAHE and unsharp mask, blended through a soft ellipse.

    Only pixels under the ellipse change; everything else in ``out`` stays as it was.
    """
    x, y, w, h = box
    H, W = src.shape[:2]
    # The cascade box covers brows to mouth; widen it to take in the whole face.
    cx, cy = x + w / 2, y + h * 0.55
    rx, ry = w * 0.62, h * 0.78
    x0, x1 = max(0, int(cx - rx)), min(W, int(cx + rx) + 1)
    y0, y1 = max(0, int(cy - ry)), min(H, int(cy + ry) + 1)
    region = src[y0:y1, x0:x1]
    gray_input = region.ndim == 2
    rgb = cv2.cvtColor(region, cv2.COLOR_GRAY2RGB) if gray_input else region

    d = max(5, round(w / 40))
    smooth = cv2.bilateralFilter(rgb, d, 18, d / 2)
    lab = cv2.cvtColor(smooth, cv2.COLOR_RGB2LAB)
    tiles = max(2, round(w / 96))
    clahe = cv2.createCLAHE(clipLimit=1.6, tileGridSize=(tiles, tiles))
    light = lab[:, :, 0]
    lab[:, :, 0] = cv2.addWeighted(clahe.apply(light), 0.5, light, 0.5, 0)
    toned = cv2.cvtColor(lab, cv2.COLOR_LAB2RGB).astype(np.float32)
    blur = cv2.GaussianBlur(toned, (0, 0), max(1.0, w / 180))
    enhanced = np.clip(toned + 0.8 * (toned - blur), 0, 255)
    if gray_input:
        enhanced = cv2.cvtColor(enhanced.astype(np.uint8), cv2.COLOR_RGB2GRAY).astype(np.float32)

    weight = np.zeros(region.shape[:2], np.float32)
    centre = (round(cx - x0), round(cy - y0))
    axes = (max(1, round(rx * 0.82)), max(1, round(ry * 0.82)))
    cv2.ellipse(weight, centre, axes, 0, 0, 360, 1.0, -1)
    weight = cv2.GaussianBlur(weight, (0, 0), max(1.0, w / 14))
    weight[weight < 1.0 / 255] = 0.0
    if not gray_input:
        weight = weight[:, :, None]
    blended = region.astype(np.float32) * (1.0 - weight) + enhanced * weight
    changed = weight > 0
    target = out[y0:y1, x0:x1]
    mixed = np.clip(blended + 0.5, 0, 255).astype(np.uint8)
    np.copyto(target, mixed, where=np.broadcast_to(changed, target.shape))


_WORK: Mapping[str, LocalWork] = {
    "remove_background": LocalWork(_remove_background, needs_cv=True),
    "upscale": LocalWork(_upscale, needs_cv=False),  # Pillow alone
    "face_detail": LocalWork(_face_detail, needs_cv=True),
}
