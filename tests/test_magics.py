"""``%imgcache`` in a real IPython shell, on stores filled by the real engine (local backend).

Each test gets its own copy of a store the engine filled once per session, so a test may
clean, delete or corrupt freely. The 10,000-entry store is filled through ``ResultStore.put``
with tiny images and only read.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell
from traitlets import TraitError
from traitlets.config import Config

from cachefill import DAY, LocalWorkUnderFalNames, fill_with_engine, put_entry
from nbimgprep.magics import ImgCacheMagics
from nbimgprep.reports import CacheListing
from nbimgprep.store import ResultStore

# -- fixtures ---------------------------------------------------------------------------------


@pytest.fixture
def shell() -> Iterator[InteractiveShell]:
    """The real IPython shell with ``%load_ext nbimgprep``; unloaded afterwards."""
    config = Config()
    config.HistoryManager.enabled = False
    ip = InteractiveShell.instance(config=config)
    ip.config.pop("ImgCacheMagics", None)  # %config settings outlive the extension
    ip.run_line_magic("load_ext", "nbimgprep")
    yield ip
    ip.run_line_magic("unload_ext", "nbimgprep")
    ip.config.pop("ImgCacheMagics", None)


@pytest.fixture
def ip(shell: InteractiveShell, cache: Path) -> InteractiveShell:
    """The shell, with ``%imgcache`` pointed at this test's store through ``%config``."""
    shell.run_line_magic("config", f"ImgCacheMagics.cache_dir = {str(cache)!r}")
    return shell


def imgcache(ip: InteractiveShell, line: str) -> Any:
    return ip.run_line_magic("imgcache", line)


def html_of(ip: InteractiveShell, obj: object) -> str:
    data, _ = ip.display_formatter.format(obj)
    assert "text/plain" in data
    html: str = data["text/html"]
    return html


def body_rows(html: str) -> int:
    """Rows in the first table's body."""
    body = html.split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    return body.count("<tr>")


# -- loading and settings ---------------------------------------------------------------------


def test_load_ext_registers_imgcache_and_unload_removes_it(shell: InteractiveShell) -> None:
    assert shell.find_line_magic("imgcache") is not None
    assert any(isinstance(c, ImgCacheMagics) for c in shell.configurables)

    shell.run_line_magic("unload_ext", "nbimgprep")
    assert shell.find_line_magic("imgcache") is None
    assert not any(isinstance(c, ImgCacheMagics) for c in shell.configurables)

    shell.run_line_magic("load_ext", "nbimgprep")
    assert shell.find_line_magic("imgcache") is not None


def test_config_sets_the_store_directory(ip: InteractiveShell, cache: Path) -> None:
    listing = imgcache(ip, "list")
    assert len(listing.entries) == 5
    assert all(e.path.is_relative_to(cache) for e in listing.entries)


def test_cache_dir_defaults_to_the_environment_variable(
    shell: InteractiveShell, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NBIMGPREP_CACHE_DIR", str(tmp_path / "from-env"))
    assert ImgCacheMagics(shell).cache_dir == str(tmp_path / "from-env")
    monkeypatch.delenv("NBIMGPREP_CACHE_DIR")
    assert Path(ImgCacheMagics(shell).cache_dir) == Path.cwd() / ".cache" / "nbimgprep"


def test_settings_reject_bad_values(shell: InteractiveShell) -> None:
    magics = ImgCacheMagics(shell)
    assert magics.max_age_days == 30
    with pytest.raises(TraitError, match="0 or more"):
        magics.max_age_days = -1
    with pytest.raises(TraitError, match="backend"):
        magics.backend = "cloud"


def test_shared_defaults_to_the_environment_and_empty_means_off(
    shell: InteractiveShell, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NBIMGPREP_CACHE_URL", raising=False)
    assert ImgCacheMagics(shell).shared == ""
    monkeypatch.setenv("NBIMGPREP_CACHE_URL", "s3://team-bucket/nbimgprep")
    assert ImgCacheMagics(shell).shared == "s3://team-bucket/nbimgprep"
    shell.run_line_magic("config", "ImgCacheMagics.shared = 's3://other/prefix'")
    assert ImgCacheMagics(shell).shared == "s3://other/prefix"


def test_run_passes_the_shared_url_to_a_processor_that_takes_it(
    ip: InteractiveShell, photos: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    import nbimgprep.processor

    made: list[str | None] = []

    class TieredProcessor(nbimgprep.processor.Processor):
        def __init__(self, *args: Any, shared: str | None = None, **kwargs: Any) -> None:
            made.append(shared)
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(nbimgprep.processor, "Processor", TieredProcessor)
    imgcache(ip, f"run upscale {photos['chelsea']} --backend local")
    assert made == [""]  # off, even if NBIMGPREP_CACHE_URL were set for the Processor

    ip.run_line_magic("config", "ImgCacheMagics.shared = 's3://team/cache'")
    imgcache(ip, f"run upscale {photos['chelsea']} --backend local")
    assert made == ["", "s3://team/cache"]  # the setting changed: a new processor


def test_help_for_every_subcommand(
    shell: InteractiveShell, capsys: pytest.CaptureFixture[str]
) -> None:
    doc = shell.find_line_magic("imgcache").__doc__
    for sub in ("list", "inspect", "stats", "clean", "rm", "verify", "export", "import", "run"):
        assert f"usage: %imgcache {sub}" in doc
    shell.run_cell("%imgcache?")
    assert "usage: %imgcache clean" in capsys.readouterr().out

    assert imgcache(shell, "clean --help") is None
    assert "--max-size SIZE" in capsys.readouterr().out


# -- list -------------------------------------------------------------------------------------


def test_list_shows_one_row_per_entry(ip: InteractiveShell, cache: Path) -> None:
    listing = imgcache(ip, "list")
    keys = {e.key for e in ResultStore(cache).entries()}
    assert {e.key for e in listing.entries} == keys

    html = html_of(ip, listing)
    assert body_rows(html) == 5
    for header in ("key", "image", "operation", "endpoint", "size", "dimensions", "age", "hits"):
        assert f">{header}</th>" in html
    assert html.count(">local/upscale</td>") == 3


def test_list_result_can_be_assigned(ip: InteractiveShell) -> None:
    ip.run_cell("x = %imgcache list --limit 2", store_history=False)
    x = ip.user_ns["x"]
    assert isinstance(x, CacheListing)
    assert len(x.entries) == 2


# -- inspect ----------------------------------------------------------------------------------


def test_inspect_an_image_path_shows_input_and_results_side_by_side(
    ip: InteractiveShell, photos: dict[str, Path]
) -> None:
    report = imgcache(ip, f"inspect {photos['astronaut']}")
    assert sorted(e.operation for e in report.entries) == ["face_detail", "upscale", "upscale"]

    html = html_of(ip, report)
    assert html.count("<img ") == 4  # the input and its three results
    assert html.count("data:image/") == 4
    assert "input: astronaut.png" in html
    for e in report.entries:
        assert e.key in html


def test_inspect_unknown_or_ambiguous_is_a_usage_error(ip: InteractiveShell, cache: Path) -> None:
    with pytest.raises(UsageError, match="no cache key or image hash starts with"):
        imgcache(ip, "inspect 0000000000")
    with pytest.raises(UsageError, match="not a cache key"):
        imgcache(ip, "inspect no-such-file.png")

    store = ResultStore(cache)
    put_entry(store, 1, key="abcd" + "0" * 60)
    put_entry(store, 2, key="abcd" + "1" * 60)
    with pytest.raises(UsageError, match="matches 2 entries"):
        imgcache(ip, "inspect abcd")


# -- stats, clean, rm, verify, export, import: each shown as HTML -----------------------------


def test_stats_shows_totals_and_a_table_per_operation(ip: InteractiveShell) -> None:
    report = imgcache(ip, "stats")
    assert report.stats.entries == 5
    html = html_of(ip, report)
    assert "hit rate" in html
    assert "per operation" in html
    for op in ("upscale", "face_detail", "remove_background"):
        assert f">{op}</td>" in html


def test_clean_shows_what_it_removed(ip: InteractiveShell, cache: Path) -> None:
    old = put_entry(ResultStore(cache), 1, created=time.time() - 31 * DAY)
    report = imgcache(ip, "clean")
    assert [e.key for e in report.removed] == [old]
    html = html_of(ip, report)
    assert "Removed 1 entries" in html
    assert f">{old[:12]}</td>" in html


def test_clean_default_age_follows_the_setting(ip: InteractiveShell, cache: Path) -> None:
    store = ResultStore(cache)
    put_entry(store, 1, created=time.time() - 8 * DAY)
    assert imgcache(ip, "clean").removed == []
    ip.run_line_magic("config", "ImgCacheMagics.max_age_days = 7")
    assert len(imgcache(ip, "clean").removed) == 1


def test_a_refused_clean_lists_what_it_would_remove_and_says_add_yes(
    ip: InteractiveShell, cache: Path
) -> None:
    store = ResultStore(cache)
    for seed in range(8):
        put_entry(store, seed)
    refused = imgcache(ip, "clean --max-age-days 0")
    html = html_of(ip, refused)
    assert "Add --yes" in html
    assert body_rows(html) == 13
    assert len(store) == 13
    assert len(imgcache(ip, "clean --max-age-days 0 --yes").removed) == 13
    assert len(store) == 0


def test_clean_accepts_sizes_with_units(ip: InteractiveShell) -> None:
    assert imgcache(ip, "clean --max-size 2GB").removed == []
    assert imgcache(ip, "clean --max-size 1.5MiB --dry-run").removed == []


def test_rm_shows_what_it_deleted(ip: InteractiveShell, cache: Path) -> None:
    entry = ResultStore(cache).entries(op="remove_background")[0]
    report = imgcache(ip, f"rm {entry.key[:12]}")
    assert [e.key for e in report.removed] == [entry.key]
    assert f">{entry.key[:12]}</td>" in html_of(ip, report)


def test_rm_of_nothing_is_a_usage_error(ip: InteractiveShell, cache: Path) -> None:
    with pytest.raises(UsageError, match="no cache key or image hash starts with"):
        imgcache(ip, "rm 0000000000")
    assert len(ResultStore(cache)) == 5


def test_verify_shows_the_damaged_results(ip: InteractiveShell, cache: Path) -> None:
    assert "all intact" in html_of(ip, imgcache(ip, "verify"))
    missing = ResultStore(cache).entries(op="remove_background")[0]
    missing.path.unlink()
    html = html_of(ip, imgcache(ip, "verify"))
    assert "1 damaged" in html
    assert f">{missing.key[:12]}</td>" in html


def test_export_then_import_into_another_store_set_by_config(
    ip: InteractiveShell, tmp_path: Path, photos: dict[str, Path]
) -> None:
    local_only = html_of(ip, imgcache(ip, f"export {tmp_path / 'local.json'}"))
    assert "Exported 0 results" in local_only and "5 left out" in local_only
    made = tmp_path / "fal-made"
    fill_with_engine(made, photos, backend=LocalWorkUnderFalNames())
    ip.run_line_magic("config", f"ImgCacheMagics.cache_dir = {str(made)!r}")
    target = tmp_path / "legacy" / "image-processing-cache.json"
    assert "Exported 4 results" in html_of(ip, imgcache(ip, f"export {target}"))
    ip.run_line_magic("config", f"ImgCacheMagics.cache_dir = {str(tmp_path / 'fresh')!r}")
    imported = imgcache(ip, f"import {target} --root {made}")
    assert imported.report.imported == 4
    assert "Imported 4 results" in html_of(ip, imported)
    assert len(imgcache(ip, "list").entries) == 4


def test_import_of_a_missing_file_is_a_usage_error(ip: InteractiveShell, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="no such file"):
        imgcache(ip, f"import {tmp_path / 'nope.json'}")


# -- run --------------------------------------------------------------------------------------


def test_run_through_the_magic_is_fresh_then_a_hit(
    ip: InteractiveShell, photos: dict[str, Path]
) -> None:
    first = imgcache(ip, f"run upscale {photos['chelsea']} --backend local")
    assert [i.status for i in first.items] == ["fresh"]
    again = imgcache(ip, f"run upscale {photos['chelsea']} {photos['astronaut']} --backend local")
    assert [i.status for i in again.items] == ["hit", "hit"]
    assert str(again.items[0].result.path) in str(again)
    assert "2 cache hits" in html_of(ip, again)


# -- bad arguments and the empty store --------------------------------------------------------


@pytest.mark.parametrize(
    "line",
    [
        "",
        "frobnicate",
        "list --sort name",
        "list --limit 0",
        "list --limit many",
        "list --op sharpen",
        "inspect",
        "inspect a b",
        "clean --max-age-days -1",
        "clean --max-age-days soon",
        "clean --max-size 2XB",
        "rm",
        "export",
        "export out.json --format csv",
        "import",
        "run upscale",
        "run face_detail a.jpg --scale 2",
        "list --unknown-flag",
    ],
)
def test_bad_arguments_are_usage_errors_with_the_usage(ip: InteractiveShell, line: str) -> None:
    with pytest.raises(UsageError) as raised:
        imgcache(ip, line)
    assert "usage: %imgcache" in str(raised.value)


def test_unbalanced_quotes_are_a_usage_error(ip: InteractiveShell) -> None:
    with pytest.raises(UsageError, match="quotation"):
        imgcache(ip, "inspect 'photo.jpg")


def test_run_cell_with_a_bad_line_shows_no_traceback(
    ip: InteractiveShell, capsys: pytest.CaptureFixture[str]
) -> None:
    result = ip.run_cell("%imgcache list --sort name", store_history=False)
    assert isinstance(result.error_in_exec, UsageError)
    captured = capsys.readouterr()
    assert "Traceback" not in captured.out + captured.err
    assert "SystemExit" not in captured.out + captured.err


def test_every_subcommand_on_an_empty_store(shell: InteractiveShell, tmp_path: Path) -> None:
    ResultStore(tmp_path / "empty")
    shell.run_line_magic("config", f"ImgCacheMagics.cache_dir = {str(tmp_path / 'empty')!r}")
    listing = imgcache(shell, "list")
    assert listing.entries == []
    assert "The cache is empty." in str(listing)
    assert "The cache is empty." in html_of(shell, listing)
    stats = imgcache(shell, "stats")
    assert stats.stats.entries == 0
    assert "0%" in str(stats)
    html_of(shell, stats)
    assert "Nothing to clean" in str(imgcache(shell, "clean"))
    assert "Checked 0 results" in str(imgcache(shell, "verify"))
    assert imgcache(shell, f"export {tmp_path / 'e.json'}").count == 0
    assert json.loads((tmp_path / "e.json").read_text()) == {}
    with pytest.raises(UsageError):
        imgcache(shell, "inspect abc")
    with pytest.raises(UsageError):
        imgcache(shell, "rm abc")


@pytest.mark.parametrize(
    "line", ["list", "stats", "verify", "inspect abc", "export out.json", "clean", "rm abc"]
)
def test_a_command_on_a_folder_with_no_store_says_so_and_creates_nothing(
    shell: InteractiveShell, tmp_path: Path, line: str
) -> None:
    nowhere = tmp_path / "nowhere"
    shell.run_line_magic("config", f"ImgCacheMagics.cache_dir = {str(nowhere)!r}")
    with pytest.raises(UsageError, match=f"No nbimgprep cache at {nowhere}"):
        imgcache(shell, line)
    assert not nowhere.exists()


def test_import_creates_the_store(shell: InteractiveShell, tmp_path: Path) -> None:
    (tmp_path / "legacy.json").write_text("{}")
    shell.run_line_magic("config", f"ImgCacheMagics.cache_dir = {str(tmp_path / 'new')!r}")
    assert imgcache(shell, f"import {tmp_path / 'legacy.json'}").report.imported == 0
    assert imgcache(shell, "list").entries == []


def test_a_cache_dir_that_is_empty_or_a_file_is_a_usage_error(
    shell: InteractiveShell, tmp_path: Path
) -> None:
    shell.run_line_magic("config", "ImgCacheMagics.cache_dir = ''")
    with pytest.raises(UsageError, match="empty string"):
        imgcache(shell, "list")
    (tmp_path / "file").write_text("x")
    shell.run_line_magic("config", f"ImgCacheMagics.cache_dir = {str(tmp_path / 'file')!r}")
    with pytest.raises(UsageError, match="is a file"):
        imgcache(shell, "stats")
    with pytest.raises(UsageError, match="is a file"):
        imgcache(shell, f"run upscale {tmp_path / 'a.png'} --backend local")


def test_export_to_a_folder_and_import_of_junk_are_usage_errors(
    ip: InteractiveShell, tmp_path: Path
) -> None:
    with pytest.raises(UsageError, match="is a folder"):
        imgcache(ip, f"export {tmp_path}")
    (tmp_path / "junk.json").write_text("{not json")
    with pytest.raises(UsageError, match="cannot read a legacy cache file"):
        imgcache(ip, f"import {tmp_path / 'junk.json'}")


# -- a store of 10,000 entries ----------------------------------------------------------------


@pytest.fixture(scope="session")
def big_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """10,000 entries through ``ResultStore.put``: tiny images, three operations.

    Eight threads share one store (as kernels do): each put fsyncs twice, and the waits overlap.
    """
    root = tmp_path_factory.mktemp("big") / "cache"
    store = ResultStore(root)
    ops = ("upscale", "remove_background", "face_detail")
    now = time.time()
    started = time.perf_counter()
    with ThreadPoolExecutor(8) as pool:
        keys = list(
            pool.map(
                lambda seed: put_entry(store, seed, operation=ops[seed % 3], created=now - seed),
                range(10_000),
            )
        )
    assert len(set(keys)) == len(store) == 10_000
    print(f"\nfilled 10,000 entries through put in {time.perf_counter() - started:.1f} s")
    return root


def test_list_with_limit_on_ten_thousand_entries(shell: InteractiveShell, big_store: Path) -> None:
    shell.run_line_magic("config", f"ImgCacheMagics.cache_dir = {str(big_store)!r}")
    imgcache(shell, "list --limit 1")  # open the store once

    started = time.perf_counter()
    listing = imgcache(shell, "list --limit 20")
    html = html_of(shell, listing)
    limited = time.perf_counter() - started
    assert body_rows(html) == 20
    assert "20 of 10000 entries" in html
    assert len(str(listing).splitlines()) == 2 + 20 + 1

    started = time.perf_counter()
    everything = imgcache(shell, "list")
    html = html_of(shell, everything)
    full = time.perf_counter() - started
    assert len(everything.entries) == 10_000
    assert body_rows(html) == 500  # the display is capped; the object holds all
    assert "all 10000 are in the returned object" in html
    assert len(str(everything).splitlines()) == 2 + 10_000 + 1

    by_op = imgcache(shell, "list --op face_detail --limit 5 --sort hits")
    assert "5 of 3333 entries" in str(by_op)
    print(f"\nlist --limit 20 on 10,000 entries: {limited * 1000:.1f} ms (with HTML)")
    print(f"list of all 10,000 entries: {full * 1000:.0f} ms (with HTML)")


def test_large_clean_is_refused_without_yes(shell: InteractiveShell, big_store: Path) -> None:
    shell.run_line_magic("config", f"ImgCacheMagics.cache_dir = {str(big_store)!r}")
    refused = imgcache(shell, "clean --max-age-days 0")
    assert refused.refused
    assert len(refused.removed) == 10_000
    assert len(ResultStore(big_store)) == 10_000
    stats = imgcache(shell, "stats")
    assert stats.stats.entries == 10_000
