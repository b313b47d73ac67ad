"""A batch against the fake fal server: the server itself counts how many requests ran at once."""

from __future__ import annotations

from pathlib import Path

from fakefal import FakeFal, fake_fal  # noqa: F401  (fake_fal is a fixture)
from nbimgprep import Processor
from test_batch import make_images

KEY = "fake-key-id:fake-key-secret"


async def test_the_server_never_sees_more_requests_at_once_than_the_bound(
    fake_fal: FakeFal,  # noqa: F811
    tmp_path: Path,
) -> None:
    fake_fal.latency = 0.3
    proc = Processor(backend="fal", cache_dir=tmp_path / "cache", environ={"FAL_KEY": KEY})
    paths = make_images(tmp_path / "in", 9)

    batch = await proc.run_many("remove_background", paths, concurrency=3, progress=False)

    assert len(batch.fresh) == 9 and fake_fal.calls["submit"] == 9
    assert 1 < fake_fal.max_running_seen <= 3
    again = await proc.run_many("remove_background", paths, concurrency=3, progress=False)
    assert len(again.hits) == 9 and fake_fal.calls["submit"] == 9
    await proc.aclose()
