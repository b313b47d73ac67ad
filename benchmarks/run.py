"""Speed of the engine, as ratios against baselines measured in the same run.

Run: ``.venv/bin/python benchmarks/run.py`` (writes BENCHMARKS.md beside the README).

1. A cache hit through ``run_sync`` on an unchanged 24 MP photo, against re-hashing the file
   (what a cache without the stat memo would pay on every call).
2. First look at a file: streamed SHA-256 through ``ImageRef`` against a plain read of the file.
3. A batch of misses through a backend with a fixed latency and 16 calls in flight, against
   the time the API alone would take for the same batch (the ideal).
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from PIL import Image

from nbimgprep import ImageRef, Processor
from nbimgprep.backends import BackendOutput, ProgressReporter
from nbimgprep.operations import Endpoint, Operation

ROOT = Path(__file__).resolve().parent.parent
PHOTO = ROOT.parent / "shared" / "testdata" / "coffee_24mp.jpg"


def best_of(fn: Callable[[], object], repeat: int) -> float:
    """Median seconds of ``repeat`` runs (the median resists a noisy neighbour)."""
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


class FixedLatency:
    """A stand-in for a remote API: answers every call after ``latency`` seconds."""

    name = "local"

    def __init__(self, latency: float) -> None:
        self.latency = latency
        out = io.BytesIO()
        Image.new("RGB", (64, 64), "teal").save(out, format="PNG")
        self.payload = out.getvalue()

    def endpoint_for(self, operation: Operation) -> Endpoint:
        return Endpoint(f"bench/{operation.name}")

    async def run(
        self,
        operation: Operation,
        image: ImageRef,
        params: Mapping[str, Any],
        endpoint: Endpoint,
        report: ProgressReporter,
    ) -> BackendOutput:
        await asyncio.sleep(self.latency)
        return BackendOutput(self.payload, "image/png")

    async def aclose(self) -> None:
        pass


def bench_hit(tmp: Path) -> dict[str, float]:
    proc = Processor(FixedLatency(0.0), cache_dir=tmp / "hit")
    proc.run_sync("face_detail", PHOTO)
    hit = best_of(lambda: proc.run_sync("face_detail", PHOTO), 300)

    def rehash() -> None:
        with PHOTO.open("rb") as f:
            hashlib.file_digest(f, "sha256")

    baseline = best_of(rehash, 50)
    proc.close()
    return {"hit_ms": hit * 1000, "rehash_ms": baseline * 1000, "ratio": hit / baseline}


def bench_first_hash() -> dict[str, float]:
    hashed = best_of(lambda: ImageRef(PHOTO).sha256, 20)
    read = best_of(PHOTO.read_bytes, 20)
    return {"hash_ms": hashed * 1000, "read_ms": read * 1000, "ratio": hashed / read}


def bench_batch(
    tmp: Path, n: int = 400, latency: float = 0.05, in_flight: int = 16
) -> dict[str, float]:
    images = []
    for i in range(n):
        out = io.BytesIO()
        Image.new("RGB", (32, 32), (i % 256, i // 256, 7)).save(out, format="PNG")
        images.append(out.getvalue())
    proc = Processor(FixedLatency(latency), cache_dir=tmp)

    async def batch() -> None:
        gate = asyncio.Semaphore(in_flight)

        async def one(data: bytes) -> None:
            async with gate:
                await proc.run("face_detail", data)

        await asyncio.gather(*(one(d) for d in images))

    t = time.perf_counter()
    proc._loop_thread.run(batch())
    took = time.perf_counter() - t
    ideal = n / in_flight * latency
    proc.close()
    return {"images": n, "seconds": took, "api_seconds": ideal, "ratio": took / ideal}


def main() -> None:
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        hit, first = bench_hit(tmp), bench_first_hash()
        batch = bench_batch(tmp / "stress")
        real = bench_batch(tmp / "real", n=640, latency=1.0, in_flight=64)
    lines = [
        "# Benchmarks",
        "",
        f"Measured by `benchmarks/run.py` on {time.strftime('%Y-%m-%d')}, Python "
        f"{sys.version.split()[0]}, on this project's 2-core machine. Each figure is a "
        "ratio against a baseline measured in the same run; absolute times are for scale only.",
        "",
        "| what | nbimgprep | baseline | ratio |",
        "| --- | --- | --- | --- |",
        f"| cache hit via `run_sync`, unchanged 24 MP JPEG (median of 300) | "
        f"{hit['hit_ms']:.2f} ms | re-hashing the file: {hit['rehash_ms']:.2f} ms | "
        f"{hit['ratio']:.2f}x |",
        f"| first look at the 24 MP JPEG: streamed SHA-256 | {first['hash_ms']:.2f} ms | "
        f"reading the file: {first['read_ms']:.2f} ms | {first['ratio']:.2f}x |",
        f"| batch of {batch['images']:.0f} misses, 16 in flight, 50 ms API latency | "
        f"{batch['seconds']:.2f} s | the API alone: {batch['api_seconds']:.2f} s | "
        f"{batch['ratio']:.2f}x |",
        f"| batch of {real['images']:.0f} misses, 64 in flight, 1 s API latency | "
        f"{real['seconds']:.2f} s | the API alone: {real['api_seconds']:.2f} s | "
        f"{real['ratio']:.2f}x |",
        "",
        "A hit costs a `stat()`, a memo lookup and an index lookup, never a read of the image. "
        "In the batch, the time above the API's own is the engine's per-miss work: decoding "
        "the result to validate it, writing and fsyncing the result file and its sidecar, and "
        "the index row (about 5 ms for one miss alone, two fsyncs of it; overlapped in a "
        "batch). The 50 ms row is a stress test; fal.ai calls take seconds, where that work "
        "disappears behind the API's own time.",
        "",
    ]
    (ROOT / "BENCHMARKS.md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
