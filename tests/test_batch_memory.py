"""A batch of thousands holds a few inputs at a time, not all of them: each input's bytes and
pixels are let go when its call is done.

Measured on the process's resident memory (``VmRSS``, and its peak ``VmHWM``) in a fresh
interpreter: 24 fresh 1600x1600 inputs (7.7 MB of pixels and about as many of PNG bytes
each), two at a time, through a backend that decodes each input and reads its bytes as the
local and fal.ai backends do. Holding them all would take some 370 MB.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from PIL import Image

MB = 1024  # /proc/self/status counts kB
COUNT = 24

SCRIPT = """
import json, sys
from pathlib import Path
from PIL import Image

def memory():
    fields = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines())
    return {k: int(fields[k].split()[0]) for k in ("VmRSS", "VmHWM")}

from nbimgprep import Processor
from nbimgprep.backends import BackendOutput
from nbimgprep.images import encode_png
from nbimgprep.operations import Endpoint

class Decoding:
    name = "test"

    def endpoint_for(self, operation):
        return Endpoint(f"test/{operation.name}")

    async def run(self, operation, image, params, endpoint, report):
        size = image.open().size  # the pixels, as the local backend needs them
        assert image.data  # the bytes, as fal.ai is sent them
        return BackendOutput(encode_png(Image.new("RGB", size, "white")), "image/png")

proc = Processor(Decoding(), cache_dir=sys.argv[2])
marks = {"start": memory()}
batch = proc.run_many_sync("face_detail", sys.argv[1], concurrency=2, progress=False)
marks["done"] = memory()
marks["fresh"] = sum(1 for item in batch.items if item.result and not item.result.cache_hit)
print(json.dumps(marks))
"""


def test_a_batch_lets_each_input_go_when_its_call_is_done(tmp_path: Path) -> None:
    folder = tmp_path / "inputs"
    folder.mkdir()
    for i in range(COUNT):
        Image.effect_noise((1600, 1600), 30 + i).convert("RGB").save(
            folder / f"in{i:02}.png", compress_level=1
        )
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(folder), str(tmp_path / "cache")],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    marks = json.loads(done.stdout.strip().splitlines()[-1])
    print(marks)  # the figures, for -s runs
    assert marks["fresh"] == COUNT
    peak = (marks["done"]["VmHWM"] - marks["start"]["VmRSS"]) / MB
    assert peak < 150  # about 110 MB for two in flight; all 24 held: about 390 MB
