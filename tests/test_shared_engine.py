"""The shared tier behind the engine: a result paid for on one machine is a hit on every other.

"Machines" are Processors with their own local stores (in this process, or separate processes
through tests/sharedworker.py) sharing one bucket on a real S3 API server (tests/s3server.py).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from conftest import CountingBackend
from nbimgprep import Processor
from nbimgprep.backends import BackendOutput
from nbimgprep.shared import SharedTier
from s3server import CREDENTIALS, S3Server, fresh_s3_server, s3_server  # noqa: F401  (fixtures)

TESTS = Path(__file__).resolve().parent
SLOW_MACHINE = 20.0


def machine(tmp_path: Path, name: str, server: S3Server, url: str, **kw: object) -> Processor:
    """A Processor with its own local store. The lookup timeout is long: the test machine is
    busy, and only the tests of slowness may see a slow server."""
    backend = kw.pop("backend", None) or CountingBackend()
    return Processor(
        backend,  # type: ignore[arg-type]
        cache_dir=tmp_path / name,
        shared=SharedTier(url, options=server.options(), timeout=SLOW_MACHINE),
        **kw,  # type: ignore[arg-type]
    )


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def shared_warnings() -> Iterator[list[warnings.WarningMessage]]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield caught


def test_a_result_made_on_one_machine_is_a_hit_on_another_then_local(
    tmp_path: Path, s3_server: S3Server, photos: dict[str, Path]
) -> None:
    url = s3_server.new_url()
    a, b = machine(tmp_path, "a", s3_server, url), machine(tmp_path, "b", s3_server, url)
    made = a.run_sync("upscale", photos["chelsea"], scale=2)
    assert (made.cache_hit, made.tier, a.backend.calls) == (False, None, 1)  # type: ignore[attr-defined]

    got = b.run_sync("upscale", photos["chelsea"], scale=2)
    assert (got.cache_hit, got.tier) == (True, "shared")
    assert b.backend.calls == 0  # type: ignore[attr-defined]
    assert sha(got.path) == sha(made.path)
    assert got.path.is_relative_to(tmp_path / "b")  # copied into b's own store
    assert "shared cache hit" in got.status

    again = b.run_sync("upscale", photos["chelsea"], scale=2)
    assert (again.cache_hit, again.tier) == (True, "local")
    assert b.backend.calls == 0  # type: ignore[attr-defined]


def test_two_processes_with_their_own_stores_pay_once(
    tmp_path: Path, s3_server: S3Server, photos: dict[str, Path]
) -> None:
    env = {**os.environ, **s3_server.environ(), "NBIMGPREP_CACHE_URL": s3_server.new_url()}
    env["NBIMGPREP_CACHE_TIMEOUT"] = str(SLOW_MACHINE)

    def run_machine(name: str) -> dict[str, object]:
        out = subprocess.run(
            [
                sys.executable,
                str(TESTS / "sharedworker.py"),
                str(tmp_path / name),
                str(photos["rocket"]),
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            cwd=TESTS,
        )
        assert out.returncode == 0, out.stderr
        assert "not usable" not in out.stderr
        return json.loads(out.stdout)  # type: ignore[no-any-return]

    a = run_machine("a")
    b = run_machine("b")
    assert a["backend_calls"] == 1
    assert b["backend_calls"] == 0
    assert [(c["hit"], c["tier"]) for c in b["calls"]] == [(True, "shared"), (True, "local")]  # type: ignore[index, union-attr]
    assert b["calls"][0]["sha256"] == a["calls"][0]["sha256"]  # type: ignore[index]


def test_two_writers_of_one_key_at_once_leave_an_intact_hit_for_a_third(
    tmp_path: Path, s3_server: S3Server, photos: dict[str, Path]
) -> None:
    url = s3_server.new_url()
    env = {**os.environ, **s3_server.environ(), "NBIMGPREP_CACHE_URL": url}
    env["NBIMGPREP_CACHE_TIMEOUT"] = str(SLOW_MACHINE)
    barrier = tmp_path / "barrier"  # both writers miss the tier, then compute and write at once
    barrier.mkdir()
    writers = [
        subprocess.Popen(
            [
                sys.executable,
                str(TESTS / "sharedworker.py"),
                str(tmp_path / name),
                str(photos["astronaut"]),
                "--noisy",
                "--barrier",
                str(barrier),
            ],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=TESTS,
        )
        for name in ("w1", "w2")
    ]
    made = []
    for proc in writers:
        stdout, stderr = proc.communicate(timeout=120)
        assert proc.returncode == 0, stderr
        made.append(json.loads(stdout)["calls"][0]["sha256"])
    assert made[0] != made[1]  # both paid (they raced), with different bytes

    third = machine(tmp_path, "third", s3_server, url)
    got = third.run_sync("upscale", photos["astronaut"], scale=2)
    assert (got.cache_hit, got.tier, third.backend.calls) == (True, "shared", 0)  # type: ignore[attr-defined]
    assert sha(got.path) in made  # one writer's bytes, whole
    Image.open(got.path).load()


class BigBackend(CountingBackend):
    """A 30 MB PNG (noise does not compress)."""

    async def run(self, *args: object, **kw: object) -> BackendOutput:
        self.calls += 1
        img = Image.frombytes("RGBA", (2800, 2800), os.urandom(2800 * 2800 * 4))
        out = io.BytesIO()
        img.save(out, format="PNG", compress_level=0)
        return BackendOutput(out.getvalue(), "image/png")


def test_a_30_mb_result_round_trips_intact(
    tmp_path: Path, s3_server: S3Server, photos: dict[str, Path]
) -> None:
    url = s3_server.new_url()
    a = machine(tmp_path, "a", s3_server, url, backend=BigBackend())
    made = a.run_sync("upscale", photos["chelsea"], scale=2)
    assert made.path.stat().st_size > 30 * 10**6
    b = machine(tmp_path, "b", s3_server, url, backend=BigBackend())
    got = b.run_sync("upscale", photos["chelsea"], scale=2)
    assert (got.tier, b.backend.calls) == ("shared", 0)  # type: ignore[attr-defined]
    assert sha(got.path) == sha(made.path)


def test_a_blob_tampered_with_on_the_server_is_not_served(
    tmp_path: Path,
    s3_server: S3Server,
    photos: dict[str, Path],
    shared_warnings: list[warnings.WarningMessage],
) -> None:
    url = s3_server.new_url()
    made = machine(tmp_path, "a", s3_server, url).run_sync("upscale", photos["rocket"], scale=2)
    tier = SharedTier(url, options=s3_server.options(), timeout=SLOW_MACHINE)
    record = tier.record(made.key)
    assert record is not None
    bucket, name = tier.blob_path(record.blob).split("/", 1)
    data = made.path.read_bytes()
    s3_server.client().put_object(Bucket=bucket, Key=name, Body=data[:-1] + b"\0")

    b = machine(tmp_path, "b", s3_server, url)
    got = b.run_sync("upscale", photos["rocket"], scale=2)
    assert (got.cache_hit, b.backend.calls) == (False, 1)  # type: ignore[attr-defined]
    assert sha(got.path) == sha(made.path)
    assert any("damaged" in str(w.message) for w in shared_warnings)
    # b's fresh result repaired the shared copy: a third machine gets intact bytes.
    c = machine(tmp_path, "c", s3_server, url)
    healed = c.run_sync("upscale", photos["rocket"], scale=2)
    assert (healed.tier, sha(healed.path)) == ("shared", sha(made.path))


def test_server_stopped_mid_run_means_local_only_with_one_warning(
    tmp_path: Path,
    fresh_s3_server: S3Server,
    photos: dict[str, Path],
    shared_warnings: list[warnings.WarningMessage],
) -> None:
    url = fresh_s3_server.new_url()
    a = machine(tmp_path, "a", fresh_s3_server, url)
    b = machine(tmp_path, "b", fresh_s3_server, url)
    assert a.run_sync("upscale", photos["chelsea"], scale=2).cache_hit is False
    fresh_s3_server.stop()
    for proc in (a, b):
        for photo in photos.values():
            result = proc.run_sync("upscale", photo, scale=2)
            assert result.path.is_file()
        assert proc.run_sync("upscale", photos["rocket"], scale=2).tier == "local"
    assert (a.backend.calls, b.backend.calls) == (3, 3)  # type: ignore[attr-defined]
    unusable = [w for w in shared_warnings if "not usable" in str(w.message)]
    assert len(unusable) == 1
    assert CREDENTIALS["secret"] not in str(unusable[0].message)


def test_nbimgprep_cache_url_turns_the_shared_tier_on(
    tmp_path: Path, s3_server: S3Server, photos: dict[str, Path]
) -> None:
    url = s3_server.new_url()
    env = {
        "NBIMGPREP_CACHE_URL": url,
        "AWS_ENDPOINT_URL": s3_server.endpoint,
        "NBIMGPREP_CACHE_TIMEOUT": str(SLOW_MACHINE),
    }
    proc = Processor(
        CountingBackend(),  # type: ignore[arg-type]
        cache_dir=tmp_path / "a",
        environ=env,
        shared_options={**CREDENTIALS, "client_kwargs": {"region_name": "us-east-1"}},
    )
    assert proc.shared is not None and proc.shared.tier.url == url
    assert url in repr(proc) and CREDENTIALS["secret"] not in repr(proc)
    proc.run_sync("upscale", photos["chelsea"], scale=2)
    assert SharedTier(url, options=s3_server.options(), timeout=SLOW_MACHINE).record(
        proc.key_for("upscale", photos["chelsea"], scale=2)
    )
    assert Processor(cache_dir=tmp_path / "b", environ={}).shared is None


def test_nothing_secret_reaches_the_local_store(
    tmp_path: Path, s3_server: S3Server, photos: dict[str, Path]
) -> None:
    url = s3_server.new_url()
    machine(tmp_path, "a", s3_server, url).run_sync("upscale", photos["chelsea"], scale=2)
    machine(tmp_path, "b", s3_server, url).run_sync("upscale", photos["chelsea"], scale=2)
    for path in (tmp_path / "b").rglob("*"):
        if path.is_file():
            assert CREDENTIALS["secret"].encode() not in path.read_bytes(), path
