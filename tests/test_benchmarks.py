"""The benchmarks stay runnable: the smoke run (tiny sizes, seconds) writes its table."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_smoke_run_writes_every_figure(tmp_path: Path) -> None:
    out = tmp_path / "BENCHMARKS.md"
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "run.py"), "--smoke", "--out", str(out)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    text = out.read_text()
    assert "smoke run" in text
    for figure in (
        "JSON-file design",
        "diskcache",
        "sha256sum",
        "memory while hashing",
        "vs the ideal",
        "sequential loop",
        "all-hit rerun",
        "`plan` over",
        "bare `fal_client`",
        "widget preview",
        "building a `Review`",
        "cut-outs with alpha",
        "paging back",
    ):
        assert figure in text, figure
    # Not a timing: paging back re-sends no thumbnail, on any machine.
    (paging,) = [line for line in text.splitlines() if "paging back" in line]
    assert paging.endswith("| 0 bytes | met |"), paging
