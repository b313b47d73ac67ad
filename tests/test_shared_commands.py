"""The cache commands on the shared tier: ``--shared`` on list/inspect/stats/clean, push and pull,
from the terminal (``nbimgprep cache ...``) and in a notebook (``%imgcache ...``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell
from traitlets.config import Config

from conftest import CountingBackend
from nbimgprep import Processor
from nbimgprep.cli import main
from nbimgprep.shared import SharedTier
from s3server import S3Server, fresh_s3_server, s3_server  # noqa: F401  (fixtures)

SLOW_MACHINE = "20"


@pytest.fixture
def team(
    s3_server: S3Server, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[tuple[str, S3Server]]:
    """A shared cache URL, set in the environment as a user would (credentials too)."""
    url = s3_server.new_url()
    for name, value in {
        **s3_server.environ(),
        "NBIMGPREP_CACHE_URL": url,
        "NBIMGPREP_CACHE_TIMEOUT": SLOW_MACHINE,
    }.items():
        monkeypatch.setenv(name, value)
    yield url, s3_server


def machine(tmp_path: Path, name: str) -> Processor:
    return Processor(CountingBackend(), cache_dir=tmp_path / name)  # type: ignore[arg-type]


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_list_stats_and_inspect_show_the_shared_tier(
    tmp_path: Path,
    team: tuple[str, S3Server],
    photos: dict[str, Path],
    capsys: pytest.CaptureFixture[str],
) -> None:
    url, _ = team
    a = machine(tmp_path, "a")
    made = [a.run_sync("upscale", p, scale=2) for p in photos.values()]
    b_dir = str(tmp_path / "b")  # another machine, whose local store does not exist yet

    code, out, _ = cli(capsys, "cache", "--cache-dir", b_dir, "list", "--shared")
    assert code == 0
    assert f"Shared cache {url}" in out
    assert all(r.key[:12] in out for r in made) and "3 entries" in out

    code, out, _ = cli(capsys, "cache", "--cache-dir", b_dir, "stats", "--shared")
    assert code == 0 and "3 entries, 3 result files" in out and "upscale" in out

    code, out, _ = cli(
        capsys, "cache", "--cache-dir", b_dir, "inspect", made[0].key[:10], "--shared"
    )
    assert code == 0 and made[0].key in out and made[0].image_hash in out

    code, _, err = cli(capsys, "cache", "--cache-dir", b_dir, "inspect", "0" * 11 + "x", "--shared")
    assert code == 1 and "not a key prefix" in err
    assert not (tmp_path / "b").exists()  # reading the shared tier made no local store


def test_clean_shared_needs_yes_and_removes_records_then_blobs(
    tmp_path: Path,
    team: tuple[str, S3Server],
    photos: dict[str, Path],
    capsys: pytest.CaptureFixture[str],
) -> None:
    url, server = team
    a = machine(tmp_path, "a")
    made = a.run_sync("upscale", photos["rocket"], scale=2)
    tier = SharedTier(url, timeout=20)
    args = ("cache", "--cache-dir", str(tmp_path / "a"), "clean", "--shared", "--max-age-days", "0")

    code, out, _ = cli(capsys, *args)
    assert code == 1 and "Add --yes" in out
    assert tier.record(made.key) is not None  # a single entry, and still refused without --yes

    code, out, _ = cli(capsys, *args, "--dry-run")
    assert code == 0 and "would remove 1 entries" in out
    assert tier.record(made.key) is not None

    before = len(server.requests)
    code, out, _ = cli(capsys, *args, "--yes")
    assert code == 0 and "Removed 1 entries" in out
    assert tier.record(made.key) is None
    assert not tier.filesystem().exists(tier.blob_path(made.path.name.split(".")[0]))
    deletes = [p for m, p in server.requests[before:] if m == "POST"]  # bulk deletes, in order
    assert len(deletes) == 2  # the records, then the blobs
    assert a.run_sync("upscale", photos["rocket"], scale=2).tier == "local"  # local untouched

    code, _, err = cli(capsys, *args, "--yes", "--max-size", "1GB")
    assert code == 1 and "--max-age-days" in err


def test_push_then_pull_with_a_progress_bar(
    tmp_path: Path,
    team: tuple[str, S3Server],
    photos: dict[str, Path],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("NBIMGPREP_CACHE_URL", "")  # made offline: no shared tier
    offline = machine(tmp_path, "a")
    made = [offline.run_sync("upscale", p, scale=2) for p in photos.values()]
    monkeypatch.setenv("NBIMGPREP_CACHE_URL", team[0])

    code, out, err = cli(capsys, "cache", "--cache-dir", str(tmp_path / "a"), "push")
    assert code == 0 and "Uploaded 3 entries" in out and "(0 already there)" in out
    assert "push" in err and "3/3" in err  # tqdm's bar, on stderr
    code, out, _ = cli(capsys, "cache", "--cache-dir", str(tmp_path / "a"), "push")
    assert "Uploaded 0 entries" in out and "(3 already there)" in out

    code, out, err = cli(capsys, "cache", "--cache-dir", str(tmp_path / "b"), "pull")
    assert code == 0 and "Copied 3 entries" in out and "pull" in err
    b = machine(tmp_path, "b")
    got = [b.run_sync("upscale", p, scale=2) for p in photos.values()]
    assert [r.tier for r in got] == ["local"] * 3 and b.backend.calls == 0  # type: ignore[attr-defined]
    assert [r.path.read_bytes() for r in got] == [r.path.read_bytes() for r in made]


def test_verify_shared_re_hashes_every_result_and_reports_the_damaged_ones(
    tmp_path: Path,
    team: tuple[str, S3Server],
    photos: dict[str, Path],
    capsys: pytest.CaptureFixture[str],
) -> None:
    url, server = team
    made = [machine(tmp_path, "a").run_sync("upscale", p, scale=2) for p in photos.values()]
    args = ("cache", "--cache-dir", str(tmp_path / "b"), "verify", "--shared")

    code, out, err = cli(capsys, *args)
    assert code == 0 and f"Shared cache {url}" in out and "Checked 3 results: all intact" in out
    assert "verify" in err and "3/3" in err  # tqdm's bar, on stderr

    tier = SharedTier(url, timeout=20)
    bucket, name = tier.blob_path(made[1].path.name.split(".")[0]).split("/", 1)
    server.client().delete_object(Bucket=bucket, Key=name)
    code, out, _ = cli(capsys, *args)
    assert code == 1 and "Checked 3 results: 1 damaged" in out
    assert made[1].key[:12] in out and "result file missing" in out
    assert "Nothing was removed" in out and tier.record(made[1].key) is not None
    assert not (tmp_path / "b").exists()  # reading the shared tier made no local store


def test_no_shared_cache_set_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NBIMGPREP_CACHE_URL", raising=False)
    code, _, err = cli(capsys, "cache", "--cache-dir", str(tmp_path), "list", "--shared")
    assert code == 1 and "NBIMGPREP_CACHE_URL=s3://" in err


@pytest.fixture
def shell() -> Iterator[InteractiveShell]:
    config = Config()
    config.HistoryManager.enabled = False
    ip = InteractiveShell.instance(config=config)
    ip.config.pop("ImgCacheMagics", None)
    ip.run_line_magic("load_ext", "nbimgprep")
    yield ip
    ip.run_line_magic("unload_ext", "nbimgprep")
    ip.config.pop("ImgCacheMagics", None)


def test_the_magic_uses_the_shared_setting_for_run_and_for_shared_commands(
    tmp_path: Path,
    shell: InteractiveShell,
    fresh_s3_server: S3Server,
    photos: dict[str, Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, value in fresh_s3_server.environ().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("NBIMGPREP_CACHE_TIMEOUT", SLOW_MACHINE)
    url = fresh_s3_server.new_url()
    machine_a = Processor(
        CountingBackend(),  # type: ignore[arg-type]
        cache_dir=tmp_path / "a",
        shared=url,
    )
    made = machine_a.run_sync("upscale", photos["chelsea"], scale=2)
    shell.run_line_magic("config", f"ImgCacheMagics.cache_dir = {str(tmp_path / 'b')!r}")
    shell.run_line_magic("config", f"ImgCacheMagics.shared = {url!r}")

    listing = shell.run_line_magic("imgcache", "list --shared")
    assert [e.key for e in listing.entries] == [made.key]
    data, _ = shell.display_formatter.format(listing)
    assert f"Shared cache {url}" in data["text/html"]

    shell.run_line_magic("imgcache", f"run upscale {photos['chelsea']} --scale 2 --backend local")
    magics = next(c for c in shell.configurables if type(c).__name__ == "ImgCacheMagics")
    assert magics.processor("local").shared.tier.url == url
    checked = shell.run_line_magic("imgcache", "verify --shared")
    assert checked.exit_code == 0 and "Checked 2 results: all intact" in str(checked)  # + run
    refused = shell.run_line_magic("imgcache", "clean --shared --max-age-days 0")
    assert refused.exit_code == 1 and "Add --yes" in str(refused)

    shell.run_line_magic("config", "ImgCacheMagics.shared = ''")
    monkeypatch.delenv("NBIMGPREP_CACHE_URL", raising=False)
    with pytest.raises(UsageError, match="NBIMGPREP_CACHE_URL"):
        shell.run_line_magic("imgcache", "stats --shared")
