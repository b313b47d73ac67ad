"""The local background removal: GrabCut on a small copy, cleaned and feathered, its edges
refined with a guided filter, applied at full size as alpha."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from PIL import Image

from ...errors import BackendError, ImageError
from .work import Checkpoint, Logs, require_cv

__all__ = ["remove_background"]

#: GrabCut runs on a copy no larger than this (long side, pixels): its max-flow time grows
#: quickly with size, and a coarse cut is enough once the edges are refined.
GRABCUT_SIDE = 320
#: The cut's edges are refined with a guided filter on a copy no larger than this.
REFINE_SIDE = 1024
#: GrabCut needs background and subject samples: the image (and the copy it runs on) must be
#: at least this many pixels on its short side, so a border band leaves an inside.
MIN_CUT_SIDE = 8
NO_SUBJECT = (
    "The local background removal found no subject in this image; try cropping closer "
    "around it, or use the fal backend."
)


def remove_background(
    img: Image.Image, size: tuple[int, int], params: Mapping[str, Any], checkpoint: Checkpoint
) -> tuple[Image.Image, Logs]:
    """GrabCut on a small copy, cleaned and feathered, then applied at full size as alpha."""
    cv2, np = require_cv()
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
