"""The local face detail: frontal faces found with the Haar cascades inside OpenCV's wheels,
each gently smoothed, sharpened and lifted."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from PIL import Image

from ...errors import BackendError
from .work import INSTALL_HINT, Checkpoint, Logs, require_cv

__all__ = ["face_detail"]

#: Faces are searched on a copy no larger than this (long side, pixels).
DETECT_SIDE = 1024
FACE_CASCADE = "haarcascade_frontalface_default.xml"


def face_detail(
    img: Image.Image, size: tuple[int, int], params: Mapping[str, Any], checkpoint: Checkpoint
) -> tuple[Image.Image, Logs]:
    """Find frontal faces; gently smooth, sharpen and lift the contrast of each one."""
    cv2, np = require_cv()
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
