"""Another machine, for the shared-tier tests: its own local store, the team's bucket.

``python sharedworker.py CACHE_DIR PHOTO [--noisy] [--delay S]`` runs ``upscale`` twice on PHOTO
with a counting backend and prints one JSON line: backend calls, and per call whether it was a
hit, from which tier, and the SHA-256 of the bytes served. The shared tier comes from the
environment (``NBIMGPREP_CACHE_URL``, ``AWS_ENDPOINT_URL``, the AWS credentials), as a user's would.
``--noisy`` makes every backend call return different bytes (a backend that is not
deterministic); ``--barrier DIR`` holds each backend call until the other writer's is there.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from conftest import CountingBackend
from nbimgprep import Processor
from nbimgprep.backends import BackendOutput, ProgressReporter
from nbimgprep.images import ImageRef
from nbimgprep.operations import Endpoint, Operation


class NoisyBackend(CountingBackend):
    """Each call's result differs in one pixel: two writers of one key disagree on bytes.

    With a ``barrier`` folder, a call first waits there until ``parties`` calls (in as many
    processes) have reached it: then every one of them has missed the shared tier, and they
    all write the same key at once.
    """

    barrier: Path | None = None
    parties = 2

    async def run(
        self,
        operation: Operation,
        image: ImageRef,
        params: Mapping[str, Any],
        endpoint: Endpoint,
        report: ProgressReporter,
    ) -> BackendOutput:
        from nbimgprep.images import decode_image, encode_png

        if self.barrier is not None:
            (self.barrier / str(os.getpid())).touch()
            deadline = time.monotonic() + 60
            while len(list(self.barrier.iterdir())) < self.parties:
                assert time.monotonic() < deadline, "the other writer never came"
                await asyncio.sleep(0.01)
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
    parser.add_argument("--barrier", type=Path, help="with --noisy: wait for the other writer")
    args = parser.parse_args()
    backend = (NoisyBackend if args.noisy else CountingBackend)(delay=args.delay)
    if args.barrier is not None:
        backend.barrier = args.barrier  # type: ignore[attr-defined]
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
