"""Filling stores for the cache-command tests: with the real engine, or through ``put``.

Plain functions (not fixtures), shared by ``test_magics.py`` and ``test_cli.py``.
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

from PIL import Image

from nbimgprep import Processor
from nbimgprep.backends.local import LocalBackend
from nbimgprep.operations import Endpoint, Operation, cache_key
from nbimgprep.store import ResultMeta, ResultStore

TESTDATA = Path(__file__).resolve().parent.parent.parent / "shared" / "testdata"
DAY = 86400.0


def small_photos(folder: Path) -> dict[str, Path]:
    """96-pixel copies of three test photos, so the local backend is quick on them.

    A missing photo fails the test: it is never skipped.
    """
    out = {}
    for name in ("astronaut.png", "chelsea.png", "rocket.jpg"):
        source = TESTDATA / name
        assert source.is_file(), f"test photo missing: {source}"
        with Image.open(source) as img:
            img.thumbnail((96, 96))
            target = folder / name
            img.save(target)
        out[name.split(".")[0]] = target
    return out


class LocalWorkUnderFalNames(LocalBackend):
    """The local backend's work, recorded under the default fal.ai endpoints: entries shaped
    as a fal.ai run leaves them (the kind the original app's format can state), offline."""

    name = "fal"

    def endpoint_for(self, operation: Operation) -> Endpoint:
        return Endpoint(operation.fal_endpoint)


def fill_with_engine(
    root: Path, photos: dict[str, Path], backend: str | LocalBackend = "local"
) -> None:
    """Five results of three images, made by the real engine with the local backend (or
    ``backend``)."""
    proc = Processor(backend=backend, cache_dir=root)
    try:
        proc.run_sync("upscale", photos["astronaut"], scale=2)
        proc.run_sync("upscale", photos["astronaut"], scale=4)
        proc.run_sync("face_detail", photos["astronaut"])
        proc.run_sync("remove_background", photos["chelsea"])
        proc.run_sync("upscale", photos["rocket"], scale=2)
    finally:
        proc.close()


def tiny_png(seed: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (4 + seed % 5, 4), (seed % 256, (seed // 256) % 256, 7)).save(out, "PNG")
    return out.getvalue()


def put_entry(
    store: ResultStore,
    seed: int,
    *,
    operation: str = "upscale",
    created: float | None = None,
    key: str | None = None,
) -> str:
    """An entry through the store's own ``put``: a tiny image for a made-up input."""
    image_hash = hashlib.sha256(f"input-{seed}".encode()).hexdigest()
    endpoint = Endpoint(f"local/{operation}")
    params = {"scale": 2} if operation == "upscale" else {}
    key = key or cache_key(image_hash, operation, endpoint, params)
    meta = ResultMeta(
        image_hash=image_hash,
        operation=operation,
        endpoint=endpoint,
        params=params,
        backend="local",
        width=8,
        height=8,
        content_type="image/png",
        backend_seconds=1.5,
        created=created,
    )
    store.put(key, tiny_png(seed), meta)
    return key
