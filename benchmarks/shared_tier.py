"""A shared-tier hit against a local hit, measured in the same run.

Run: ``.venv/bin/python benchmarks/shared_tier.py`` (needs the ``shared`` and ``test`` extras).
Machine A makes N results and writes them through to a moto S3 server on 127.0.0.1; machine B
(its own empty local store) asks for each: the first ask is a shared hit (record GET, blob GET,
SHA-256 check, copy into the local store), the second a local hit. Also the cost of a shared
miss (one GET answered 404) added to a local miss. Loopback and moto: a real bucket adds the
network's round trips (two per hit, one per miss).
"""

from __future__ import annotations

import io
import statistics
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from conftest import CountingBackend  # noqa: E402
from nbimgprep import Processor  # noqa: E402
from nbimgprep.shared import SharedTier  # noqa: E402
from s3server import S3Server  # noqa: E402

N = 30


def photo(folder: Path, i: int, px: int) -> Path:
    img = Image.effect_noise((px, px), 40 + i).convert("RGB")
    path = folder / f"p{i}.png"
    out = io.BytesIO()
    img.save(out, format="PNG")
    path.write_bytes(out.getvalue())
    return path


def main() -> None:
    server = S3Server().start()
    try:
        url = server.new_url()
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            for px in (128, 512):
                photos = [photo(root, i + px, px) for i in range(N)]

                def machine(name: str, px: int = px) -> Processor:
                    tier = SharedTier(url, options=server.options(), timeout=30)
                    return Processor(
                        CountingBackend(),  # type: ignore[arg-type]
                        cache_dir=root / f"{name}{px}",
                        shared=tier,
                    )

                a, b = machine("a"), machine("b")
                for p in photos:
                    a.run_sync("upscale", p, scale=2)
                shared, local = [], []
                for p in photos:
                    t = time.perf_counter()
                    r = b.run_sync("upscale", p, scale=2)
                    shared.append(time.perf_counter() - t)
                    assert r.tier == "shared"
                    t = time.perf_counter()
                    r = b.run_sync("upscale", p, scale=2)
                    local.append(time.perf_counter() - t)
                    assert r.tier == "local"
                size = r.path.stat().st_size
                tier = SharedTier(url, options=server.options(), timeout=30)
                misses = []
                for i in range(N):
                    t = time.perf_counter()
                    tier.lookup(f"{i:064x}")
                    misses.append(time.perf_counter() - t)
                s, lo, m = (statistics.median(x) * 1000 for x in (shared, local, misses))
                print(
                    f"{px * 2}px results ({size / 1024:.0f} KB): shared hit {s:.1f} ms, "
                    f"local hit {lo:.2f} ms ({s / lo:.0f}x), shared miss +{m:.1f} ms "
                    f"(median of {N})"
                )
                a.close()
                b.close()
    finally:
        server.stop()


if __name__ == "__main__":
    main()
