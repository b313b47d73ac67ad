"""``proc.plan`` with a team's shared tier: what a colleague already paid for is counted as a
shared hit, not as a fresh call; the tier is asked once per local miss, several keys at a time;
and a tier that is down makes the plan say so and count those items fresh, never fail.

"Machines" are Processors with their own local stores sharing one bucket on moto's S3 server
(tests/s3server.py).
"""

from __future__ import annotations

import threading
import warnings
from pathlib import Path

import pytest

from conftest import CountingBackend
from nbimgprep import Plan, Processor
from nbimgprep.commands import run
from nbimgprep.plan import SHARED_LOOKUPS
from nbimgprep.shared import SharedRecord, SharedTier
from s3server import S3Server, fresh_s3_server, s3_server  # noqa: F401  (fixtures)
from test_batch import make_images

SLOW_MACHINE = 20.0  # a busy test machine: only the test of a dead server may see a failure


def machine(tmp_path: Path, name: str, tier: SharedTier) -> Processor:
    return Processor(CountingBackend(), cache_dir=tmp_path / name, shared=tier)  # type: ignore[arg-type]


def tier_of(server: S3Server, url: str, timeout: float = SLOW_MACHINE) -> SharedTier:
    return SharedTier(url, options=server.options(), timeout=timeout)


def megapixels(widths: list[int], height: int = 8, scale: int = 2) -> float:
    return sum(w * scale * height * scale for w in widths) / 1e6


def test_results_a_colleague_paid_for_are_shared_hits_not_fresh_calls(
    tmp_path: Path, s3_server: S3Server
) -> None:
    url = s3_server.new_url()
    paths = make_images(tmp_path / "in", 5)  # 10..14 px wide, 8 high
    colleague = machine(tmp_path, "colleague", tier_of(s3_server, url))
    colleague.run_many_sync("upscale", paths[:3], scale=2, progress=False)  # shared from here
    me = machine(tmp_path, "me", tier_of(s3_server, url))
    me.run_sync("upscale", paths[0], scale=2)  # a shared hit, now in my local store too
    records = f"{url.removeprefix('s3://')}/records/"
    asked, blobs = s3_server.count("GET", records), s3_server.count("GET", "/blobs/")

    plan = me.plan("upscale", paths, scale=2)

    assert plan == Plan(
        hits=1,
        fresh=2,
        fresh_megapixels=megapixels([13, 14]),
        shared=2,
        shared_url=url,
    )
    assert s3_server.count("GET", records) - asked == 4  # one record request per local miss
    assert s3_server.count("GET", "/blobs/") == blobs  # a plan fetches no result
    assert s3_server.count("GET", "list-type") == 0  # and lists nothing
    assert me.backend.calls == 0  # type: ignore[attr-defined]
    assert len(me.store) == 1  # a plan copies nothing in
    assert str(plan) == "1 hits, 2 shared hits, 2 fresh calls (0.0 MP of output)"
    page = plan._repr_html_()
    assert "shared cache hits (free)" in page and "could not be reached" not in page


def test_the_shared_tier_is_asked_several_keys_at_a_time_within_a_bound(
    tmp_path: Path, s3_server: S3Server
) -> None:
    class Gathering(SharedTier):
        """A tier whose record requests wait for one another, four at a time: a plan that
        asked one key after another would never get past the first."""

        def __init__(self, url: str) -> None:
            super().__init__(url, options=s3_server.options(), timeout=SLOW_MACHINE)
            self.together = threading.Barrier(4, timeout=SLOW_MACHINE)
            self.lock = threading.Lock()
            self.in_flight = self.peak = 0

        def record(self, key: str) -> SharedRecord | None:
            with self.lock:
                self.in_flight += 1
                self.peak = max(self.peak, self.in_flight)
            try:
                self.together.wait()
                return super().record(key)
            finally:
                with self.lock:
                    self.in_flight -= 1

    tier = Gathering(s3_server.new_url())
    paths = make_images(tmp_path / "in", 40)

    plan = machine(tmp_path, "me", tier).plan("face_detail", paths)

    assert (plan.fresh, plan.shared, plan.shared_down) == (40, 0, False)
    assert 4 <= tier.peak <= SHARED_LOOKUPS


def test_a_shared_tier_that_is_down_is_said_once_and_its_items_count_as_fresh(
    tmp_path: Path, fresh_s3_server: S3Server
) -> None:
    url = fresh_s3_server.new_url()
    paths = make_images(tmp_path / "in", 6)
    colleague = machine(tmp_path, "colleague", tier_of(fresh_s3_server, url))
    colleague.run_many_sync("upscale", paths[:2], scale=2, progress=False)
    me = machine(tmp_path, "me", tier_of(fresh_s3_server, url))
    fresh_s3_server.stop()

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        plan = me.plan("upscale", paths, scale=2)
        again = me.plan("upscale", paths, scale=2)  # the tier is in its quiet period now

    for p in (plan, again):
        assert (p.hits, p.shared, p.fresh, p.shared_down) == (0, 0, 6, True)
        assert p.fresh_megapixels == pytest.approx(megapixels([10, 11, 12, 13, 14, 15]))
        assert str(p).count("could not be reached") == 1 and url in str(p)
        assert "could not be reached" in p._repr_html_()
    assert len([w for w in caught if "not usable" in str(w.message)]) == 1
    assert me.backend.calls == 0  # type: ignore[attr-defined]


def test_a_dry_run_shows_the_shared_hits(tmp_path: Path, s3_server: S3Server) -> None:
    url = s3_server.new_url()
    paths = make_images(tmp_path / "in", 3)
    machine(tmp_path, "colleague", tier_of(s3_server, url)).run_sync("upscale", paths[0], scale=2)
    me = machine(tmp_path, "me", tier_of(s3_server, url))

    report = run(me, "upscale", [str(tmp_path / "in")], scale=2, dry_run=True)

    assert report.text() == (
        f"upscale (dry run, nothing called): 0 hits, 1 shared hits, 2 fresh calls "
        f"({megapixels([11, 12]):,.1f} MP of output)."
    )
    assert "shared cache hits (free)" in report.html()


def test_without_a_shared_tier_a_plan_reads_as_before(tmp_path: Path) -> None:
    paths = make_images(tmp_path / "in", 2)
    proc = Processor(CountingBackend(), cache_dir=tmp_path / "me", shared="")  # type: ignore[arg-type]

    plan = proc.plan("upscale", paths, scale=2)

    assert (plan.shared, plan.shared_url, plan.shared_down) == (0, None, False)
    assert str(plan) == "0 hits, 2 fresh calls (0.0 MP of output)"
    assert "shared" not in plan._repr_html_()


@pytest.mark.parametrize("sources", ["folder", "glob"])
def test_a_plan_and_a_batch_see_the_same_inputs(tmp_path: Path, sources: str) -> None:
    folder = tmp_path / "in"
    make_images(folder, 3)
    (folder / "notes.txt").write_text("not an image")
    (folder / "sub.png").mkdir()  # a folder named like an image is not one
    (folder / "link.png").symlink_to(folder / "img000.png")  # a link to an image is one
    given = str(folder) if sources == "folder" else str(folder / "*.png")
    proc = Processor(CountingBackend(), cache_dir=tmp_path / "me", shared="")  # type: ignore[arg-type]

    plan = proc.plan("face_detail", given)
    batch = proc.run_many_sync("face_detail", given, progress=False)

    assert plan.fresh + plan.hits == len(batch) == 4
    assert [Path(item.label).name for item in batch.items] == [
        "img000.png",
        "img001.png",
        "img002.png",
        "link.png",
    ]
