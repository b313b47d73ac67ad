"""What every benchmark shares: the sizes of a full and a smoke run, timing, and one table row.

Every figure is a ratio against a baseline measured in the same run, on the same machine, so
a noisy neighbour moves both; absolute times are given for scale only.
"""

from __future__ import annotations

import io
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
TESTDATA = ROOT.parent / "shared" / "testdata"
#: tmpfs: stores, files and the 1 GB file live in memory, so the figures measure the code and
#: not this machine's shared disk (an fsync there costs 5-20 ms, and is the same for everyone).
SCRATCH = Path("/dev/shm") if Path("/dev/shm").is_dir() else None


@dataclass(frozen=True)
class Sizes:
    """How big each benchmark is: the full run (by hand) or the smoke run (CI, seconds)."""

    smoke: bool
    store_entries: tuple[int, ...]
    hash_bytes: int
    fresh_calls: int
    fal_latency: float
    fal_slots: int
    sequential_calls: int
    plan_files: int
    overhead_calls: int
    review_items: int
    #: Tiles on a page of the Review grid (its default, 48, in the full run).
    review_page: int
    #: The long side the review's photos are brought down to (the test photos are 640 or
    #: less, but for the 24 MP one).
    review_photo_side: int


FULL = Sizes(False, (1_000, 10_000, 100_000), 1 << 30, 320, 1.3, 16, 8, 10_000, 5, 10_000, 48, 640)
SMOKE = Sizes(True, (100, 300), 16 << 20, 16, 0.05, 4, 2, 200, 2, 300, 12, 160)


@dataclass(frozen=True)
class Row:
    """One line of BENCHMARKS.md."""

    what: str
    ours: str
    baseline: str
    ratio: float
    target: str = ""
    met: bool | None = None
    #: Why the target can be missed, and what would fix it (printed only when it is).
    why: str = ""

    def cells(self) -> list[str]:
        verdict = "" if self.met is None else ("met" if self.met else "**missed**")
        tiny = 0 < self.ratio < 0.01  # two significant digits, not "0.00x"
        ratio = f"{self.ratio:.2g}x" if tiny else f"{self.ratio:,.2f}x"
        return [self.what, self.ours, self.baseline, ratio, self.target, verdict]


def median_seconds(fn: Callable[[], object], repeat: int) -> float:
    """Median seconds of ``repeat`` runs (the median resists a noisy neighbour)."""
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def ms(seconds: float) -> str:
    return f"{seconds * 1000:,.3f} ms" if seconds < 0.01 else f"{seconds * 1000:,.1f} ms"


def small_png(seed: int, size: tuple[int, int] = (64, 48)) -> bytes:
    """A small image of its own (distinct bytes per seed)."""
    out = io.BytesIO()
    Image.new("RGB", size, (seed % 256, (seed // 256) % 256, (seed * 7) % 256)).save(out, "PNG")
    return out.getvalue()


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores ({cpu}), "
        f"Python {sys.version.split()[0]}"
    )
