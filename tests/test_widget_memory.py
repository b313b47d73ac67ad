"""A kernel is not a photo editor: ImagePrep keeps previews, not full-resolution pixels.

Measured on the process's resident memory (``VmRSS``, and its peak ``VmHWM``, from
/proc/self/status) in a fresh interpreter, so nothing else the test run did is counted:
an ImagePrep on the 24 MP test photo, upscale 2x on the local backend (a 96 MP result),
Use result, Reset.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

MB = 1024  # /proc/self/status counts kB

SCRIPT = """
import asyncio, json, sys
from pathlib import Path

def memory():
    fields = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines())
    return {k: int(fields[k].split()[0]) for k in ("VmRSS", "VmHWM")}

import cv2, ipycanvas, ipywidgets, numpy  # loaded before the baseline: they are not images
from nbimgprep import ImagePrep, Processor

proc = Processor(backend="local", cache_dir=sys.argv[2])
marks = {"start": memory()}

async def steps():
    prep = ImagePrep(sys.argv[1], proc)
    marks["shown"] = memory()
    result = await prep.apply("upscale", scale=2)
    marks["result shown"] = memory()
    marks["result size"] = [result.width, result.height]
    prep.use_result()
    marks["result used"] = memory()
    marks["input size"] = [prep.history[-1].width, prep.history[-1].height]
    prep.reset()
    marks["reset"] = memory()

asyncio.run(steps())
print(json.dumps(marks))
"""


@pytest.fixture(scope="module")
def marks(testdata: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    photo = testdata / "coffee_24mp.jpg"
    cache = tmp_path_factory.mktemp("memory") / "cache"
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(photo), str(cache)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    measured: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    print({k: v for k, v in measured.items()})  # the figures, for -s runs
    return measured


def rss(marks: dict[str, object], when: str, field: str = "VmRSS") -> float:
    value = marks[when]
    assert isinstance(value, dict)
    return float(value[field]) / MB


def test_the_upscale_of_a_24_mp_photo_peaks_under_1_gb(marks: dict[str, object]) -> None:
    assert marks["result size"] == [12000, 8000]
    assert rss(marks, "reset", "VmHWM") < 1000


def test_once_the_result_is_shown_memory_is_back_within_300_mb_of_the_start(
    marks: dict[str, object],
) -> None:
    start = rss(marks, "start")
    assert rss(marks, "shown") - start < 300
    assert rss(marks, "result shown") - start < 300
    assert marks["input size"] == [12000, 8000]
    assert rss(marks, "result used") - start < 300


def test_reset_gives_the_memory_back(marks: dict[str, object]) -> None:
    assert rss(marks, "reset") - rss(marks, "start") < 150
