"""Speed of nbimgprep, as ratios against baselines measured in the same run.

Full run, by hand (a few minutes; writes BENCHMARKS.md beside the README)::

    PYTHONPATH=src .venv/bin/python benchmarks/run.py

Smoke run (seconds; what CI runs through tests/test_benchmarks.py; writes to ``--out``)::

    PYTHONPATH=src .venv/bin/python benchmarks/run.py --smoke --out /tmp/bench.md

Cases: the hit path against the original app's JSON-file design and the index against
diskcache (store_cases), hashing against sha256sum (hashing_cases), batches and one fresh call
against the fake fal server (batch_cases), the widget's preview (preview_cases), building the
Review gallery and what a page of it sends (review_cases). Public API only.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from batch_cases import fresh_batch, fresh_overhead, plan_files
from common import FULL, ROOT, SCRATCH, SMOKE, Row, Sizes, machine
from hashing_cases import hashing
from preview_cases import preview
from review_cases import review_build, review_pages
from store_cases import store_figures

CASES = (
    store_figures,
    hashing,
    fresh_batch,
    plan_files,
    fresh_overhead,
    preview,
    review_build,
    review_pages,
)

NOTES = """\
## Reading the figures

* **Hit path.** A hit on an unchanged file costs a `stat()`, a hash-memo query, an index query
  and a check of the result file's size, whatever the store's size; the JSON design reads and
  parses its whole file and re-hashes the image on every lookup, so it grows with both.
* **Fresh batches.** The fake fal server runs each request for the stated time once it has one
  of the slots (the account's concurrency limit); requests beyond the slots wait in its queue,
  as on fal.ai. The time above the ideal is how late the engine notices a finished request
  (status polling) plus its own work per result (download, validation, two fsyncs and an
  index row). With `concurrency` above the account's limit, fal's queue holds the next
  request ready, so a slot never waits for that work: hence the second row.
* **Review pages.** The bytes a page hands the browser are counted as a kernel would send
  them: every widget comm is a recorder, and the payload is the binary buffers of its
  messages (the thumbnails, 128 px on the long side: JPEG for opaque results, PNG for those
  with alpha), the JSON state counted apart. The photos are crops of the real test photos
  (../shared/testdata), processed by the local backend.
* **Stores on tmpfs.** Stores, the JSON file, diskcache and the 1 GB file live on `/dev/shm`,
  so the figures compare code, not this machine's shared disk, where each fsync costs 5-20 ms
  (a `put` makes two: result file and sidecar; diskcache makes none for small values).
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: seconds, for CI")
    parser.add_argument("--out", type=Path, help="where to write (default: BENCHMARKS.md)")
    parser.add_argument("--only", help="run only the cases whose name contains this")
    args = parser.parse_args(argv)
    sizes = SMOKE if args.smoke else FULL
    out = args.out or ROOT / "BENCHMARKS.md"
    started = time.perf_counter()
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(dir=SCRATCH, prefix="nbimgprep-bench-") as d:
        for case in CASES:
            if args.only and args.only not in case.__name__:
                continue
            t = time.perf_counter()
            folder = Path(d) / case.__name__
            folder.mkdir()
            found = case(folder, sizes)
            print(f"{case.__name__}: {time.perf_counter() - t:.1f} s", file=sys.stderr)
            for row in found:
                print("  " + " | ".join(row.cells()), file=sys.stderr)
            rows += found
    out.write_text(render(rows, sizes, time.perf_counter() - started))
    print(f"wrote {out}", file=sys.stderr)
    return 0


def render(rows: list[Row], sizes: Sizes, seconds: float) -> str:
    kind = "smoke run (tiny sizes)" if sizes.smoke else "full run"
    lines = [
        "# Benchmarks",
        "",
        f"Measured by `benchmarks/run.py` ({kind}, {seconds:.0f} s) on "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}: {machine()}, shared with "
        f"other work (load average {os.getloadavg()[0]:.1f} when the run ended). Each figure "
        "is a ratio against a baseline measured in the same run; absolute times are for scale "
        "only.",
        "",
        "| what | nbimgprep | baseline | ratio | target | |",
        "| --- | --- | --- | --- | --- | --- |",
        *("| " + " | ".join(row.cells()) + " |" for row in rows),
        "",
        NOTES,
    ]
    missed = [row for row in rows if row.met is False]
    if missed:
        lines += ["## Targets missed", ""]
        lines += [
            f"* **{row.what}**: {row.ours} (target {row.target}). {row.why}".rstrip()
            for row in missed
        ]
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
