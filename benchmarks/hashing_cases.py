"""Hashing a large input: ``ImageRef``'s streamed SHA-256 against coreutils' ``sha256sum``, and
the memory it takes (in a fresh process, against the same process doing nothing)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from common import ROOT, Row, Sizes

# Peak memory from /proc (VmHWM: this process image's high-water mark); ru_maxrss would carry
# the parent's peak over the fork.
_PROBE = """
import json, sys, time
from nbimgprep.images import ImageRef
path, hash_it = sys.argv[1], sys.argv[2] == "1"
t = time.perf_counter()
digest = ImageRef(path).sha256 if hash_it else ""
took = time.perf_counter() - t
status = open("/proc/self/status").read().split("VmHWM:")[1]
print(json.dumps({"seconds": took, "digest": digest, "peak_kb": int(status.split()[0])}))
"""


def _probe(path: Path, hash_it: bool) -> dict[str, float | str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    out = subprocess.run(
        [sys.executable, "-c", _PROBE, str(path), "1" if hash_it else "0"],
        capture_output=True,
        text=True,
        check=True,
        env=env,
    )
    result: dict[str, float | str] = json.loads(out.stdout)
    return result


def hashing(tmp: Path, sizes: Sizes) -> list[Row]:
    big = tmp / "big.bin"
    block = os.urandom(16 << 20)
    with big.open("wb") as f:
        for _ in range(sizes.hash_bytes // len(block)):
            f.write(block)
    size = big.stat().st_size
    ours_runs, theirs_runs = [], []
    for _ in range(3):
        ours = _probe(big, hash_it=True)
        ours_runs.append(float(ours["seconds"]))
        t = time.perf_counter()
        done = subprocess.run(["sha256sum", str(big)], capture_output=True, text=True, check=True)
        theirs_runs.append(time.perf_counter() - t)
        assert done.stdout.split()[0] == ours["digest"]
    idle = _probe(big, hash_it=False)
    ours_s, theirs_s = min(ours_runs), min(theirs_runs)
    extra_mb = (float(ours["peak_kb"]) - float(idle["peak_kb"])) / 1024
    big.unlink()
    throughput = theirs_s / ours_s
    return [
        Row(
            f"SHA-256 of a {size / 2**30:.2f} GiB file: `ImageRef(path).sha256` vs `sha256sum` "
            "(best of 3; speed)",
            f"{size / ours_s / 1e6:,.0f} MB/s",
            f"{size / theirs_s / 1e6:,.0f} MB/s",
            throughput,
            ">= 0.9x sha256sum",
            throughput >= 0.9,
        ),
        Row(
            "memory while hashing it: peak RSS of the process above that of the same process "
            "not hashing",
            f"+{extra_mb:.1f} MB",
            f"{float(idle['peak_kb']) / 1024:.0f} MB (process, idle)",
            float(ours["peak_kb"]) / float(idle["peak_kb"]),
            "constant (a 1 MiB buffer)",
            extra_mb < 16,
        ),
    ]
