"""Another machine, for the shared-tier tests: its own local store, the team's bucket.

``python sharedworker.py CACHE_DIR PHOTO [--noisy] [--delay S]`` runs ``upscale`` twice on PHOTO
with a counting backend and prints one JSON line: backend calls, and per call whether it was a
hit, from which tier, and the SHA-256 of the bytes served. The shared tier comes from the
environment (``NBIMGPREP_CACHE_URL``, ``AWS_ENDPOINT_URL``, the AWS credentials), as a user's would.
``--noisy`` makes every backend call return different bytes (a backend that is not deterministic).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
from collections.abc import Mapping
from typing import Any

from conftest import CountingBackend
from nbimgprep import Processor
from nbimgprep.backends import BackendOutput, ProgressReporter
from nbimgprep.images import ImageRef
from nbimgprep.operations import Endpoint, Operation


class NoisyBackend(CountingBackend):
    """Each call's result differs in one pixel: two writers of one key disagree on bytes."""

    async def run(
        self,
        operation: Operation,
        image: ImageRef,
        params: Mapping[str, Any],
        endpoint: Endpoint,
        report: ProgressReporter,
    ) -> BackendOutput:
        from nbimgprep.images import decode_image, encode_png

        out = await super().run(operation, image, params, endpoint, report)
        img = decode_image(out.data, "result").convert("RGB")
        img.putpixel((0, 0), tuple(os.urandom(3)))
        return BackendOutput(encode_png(img), "image/png")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("cache_dir")
    parser.add_argument("photo")
    parser.add_argument("--noisy", action="store_true")
    parser.add_argument("--delay", type=float, default=0.0)
    args = parser.parse_args()
    backend = (NoisyBackend if args.noisy else CountingBackend)(delay=args.delay)
    proc = Processor(backend, cache_dir=args.cache_dir)
    calls = []
    for _ in range(2):
        result = proc.run_sync("upscale", args.photo, scale=2)
        digest = hashlib.sha256(result.path.read_bytes()).hexdigest()
        calls.append({"hit": result.cache_hit, "tier": result.tier, "sha256": digest})
    proc.close()
    print(json.dumps({"backend_calls": backend.calls, "calls": calls}))


if __name__ == "__main__":
    main()
