"""The cache itself: a hit on an unchanged file against the original app's JSON design, and
the index's lookup and insert against diskcache."""

from __future__ import annotations

import hashlib
import json
import os
import random
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

from common import TESTDATA, Row, Sizes, median_seconds, ms, small_png

from nbimgprep import Processor
from nbimgprep.operations import Endpoint, cache_key
from nbimgprep.store import ResultMeta, ResultStore

PHOTO = TESTDATA / "astronaut.png"
META = ResultMeta(
    image_hash="",
    operation="upscale",
    endpoint=Endpoint("local/upscale"),
    params={"scale": 2},
    backend="local",
    width=64,
    height=48,
    content_type="image/png",
    backend_seconds=1.0,
)


def _put(store: ResultStore, seed: int) -> str:
    """One entry through the store's own ``put``, for a made-up input."""
    image_hash = hashlib.sha256(f"input-{seed}".encode()).hexdigest()
    key = cache_key(image_hash, "upscale", META.endpoint, META.params)
    store.put(key, small_png(seed), replace(META, image_hash=image_hash))
    return key


def fill(store: ResultStore, start: int, stop: int) -> list[str]:
    with ThreadPoolExecutor(4) as pool:
        return list(pool.map(lambda seed: _put(store, seed), range(start, stop)))


class JsonDesign:
    """The original app's cache, re-implemented faithfully: one JSON file
    ``{image_hash: {bgRemoved, upscaled, faceDetailed, timestamp}}``; every lookup hashes the
    uploaded file, reads and parses the whole file, and checks that the result file exists;
    every put reads, modifies and rewrites it."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / "image-processing-cache.json"
        self.results = folder / "processed_images"
        self.results.mkdir(parents=True, exist_ok=True)
        self.path.write_text("{}")

    def fill(self, n: int) -> None:
        data = {}
        for seed in range(n):
            image_hash = hashlib.sha256(f"input-{seed}".encode()).hexdigest()
            data[image_hash] = {
                "bgRemoved": None,
                "upscaled": f"/uploads/processed_images/{image_hash[:16]}.png",
                "faceDetailed": None,
                "timestamp": 1672531200000 + seed,
            }
        self.path.write_text(json.dumps(data))

    def put(self, image_hash: str, result: Path) -> None:
        data = json.loads(self.path.read_text())
        data.setdefault(image_hash, {})["upscaled"] = str(result)
        data[image_hash]["timestamp"] = int(time.time() * 1000)
        self.path.write_text(json.dumps(data))

    def lookup(self, image: Path) -> str | None:
        image_hash = hashlib.sha256(image.read_bytes()).hexdigest()
        entry = json.loads(self.path.read_text()).get(image_hash)
        if entry is None or not entry.get("upscaled"):
            return None
        path: str = entry["upscaled"]
        return path if os.path.exists(path) else None


class _Instant:
    """A backend that answers at once: the hit path never reaches it."""

    name = "local"

    def endpoint_for(self, operation: object) -> Endpoint:
        return Endpoint("local/upscale")

    async def run(self, operation: object, image: object, *args: object) -> object:
        from nbimgprep.backends import BackendOutput

        return BackendOutput(small_png(1), "image/png")

    async def aclose(self) -> None:
        pass


def store_figures(tmp: Path, sizes: Sizes) -> list[Row]:
    """Both store benchmarks on one filled store (filling 100,000 entries takes minutes)."""
    rows, store = hit_path(tmp, sizes)
    return rows + against_diskcache(tmp, sizes, store)


def hit_path(tmp: Path, sizes: Sizes) -> tuple[list[Row], ResultStore]:
    """A hit through ``run_sync`` on an unchanged photo, in a store of N entries, against the
    JSON design's lookup of the same photo in a file of N entries."""
    rows = []
    proc = Processor(_Instant(), cache_dir=tmp / "hit-store")  # type: ignore[arg-type]
    json_design = JsonDesign(tmp / "json-design")
    filled = 0
    proc.run_sync("upscale", PHOTO, scale=2)
    result = proc.run_sync("upscale", PHOTO, scale=2).path
    for n in sizes.store_entries:
        fill(proc.store, filled, n - 1)
        filled = n - 1
        json_design.fill(n - 1)
        json_design.put(hashlib.sha256(PHOTO.read_bytes()).hexdigest(), result)
        assert json_design.lookup(PHOTO) is not None
        ours = median_seconds(lambda: proc.run_sync("upscale", PHOTO, scale=2), 300)
        repeat = 30 if n <= 10_000 else 5
        theirs = median_seconds(lambda: json_design.lookup(PHOTO), repeat)
        ratio = theirs / ours
        target = "<= 0.5 ms and >= 100x faster" if n == 10_000 else ""
        met = (ours <= 0.0005 and ratio >= 100) if n == 10_000 else None
        rows.append(
            Row(
                f"hit on an unchanged {PHOTO.name} ({PHOTO.stat().st_size / 1e6:.1f} MB), "
                f"{n:,} entries: `run_sync` vs the original JSON-file design",
                ms(ours),
                ms(theirs),
                ratio,
                target,
                met,
                why="Most of a hit is fixed per-call work: the hop to the private event loop "
                "and to a worker thread (`run_sync`), a `stat()` and a `realpath` of the input, "
                "a memo query and an index query; on this shared 2-core machine "
                "each costs several times what it does on an idle one (the median moves "
                "between runs with the machine's load). "
                "The JSON design's time grows with the store, ours does not: the ratio passes "
                "100x by 100,000 entries.",
            )
        )
    proc.close()
    return rows, proc.store


def against_diskcache(tmp: Path, sizes: Sizes, store: ResultStore) -> list[Row]:
    """Index lookup (``ResultStore.lookup``, which checks the file and counts the hit) and
    insert (``put``: result file, sidecar, index row) against diskcache's get and set, both
    at N entries."""
    import diskcache

    keys = [e.key for e in store.entries()]
    n = len(keys)
    cache = diskcache.Cache(str(tmp / "dc-theirs"))
    for i, key in enumerate(keys):
        cache.set(key, small_png(i))
    rng = random.Random(7)
    sample = [rng.choice(keys) for _ in range(500)]
    it_ours, it_theirs = iter(sample * 3), iter(sample * 3)
    ours_get = median_seconds(lambda: store.lookup(next(it_ours)), 500)
    theirs_get = median_seconds(lambda: cache.get(next(it_theirs)), 500)
    seeds = iter(range(n, n + 1000))
    ours_put = median_seconds(lambda: _put(store, next(seeds)), 200)
    more = iter(range(n + 1000, n + 2000))
    theirs_put = median_seconds(lambda: cache.set(f"k{next(more)}", small_png(5)), 200)
    cache.close()
    return [
        Row(
            f"index lookup at {n:,} entries: `ResultStore.lookup` vs `diskcache.Cache.get`",
            ms(ours_get),
            ms(theirs_get),
            ours_get / theirs_get,
            "<= 2x diskcache",
            ours_get / theirs_get <= 2,
            why="`lookup` also checks that the result file is intact (a `stat()`) and builds "
            "a full entry (its parameters, endpoint and paths parsed from the row) and "
            "counts the hit in memory; diskcache's `get` is one read query returning one "
            "value. A narrower query for the hit path (path and size only) would close "
            "most of the gap.",
        ),
        Row(
            f"insert at {n:,} entries: `ResultStore.put` (file, sidecar, index row) vs "
            "`diskcache.Cache.set`",
            ms(ours_put),
            ms(theirs_put),
            ours_put / theirs_put,
        ),
    ]
