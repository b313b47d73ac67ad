"""``nbimgprep`` in a terminal: real subprocesses, their output and their exit codes.

0 success (an empty list, or nothing old enough to clean, is success); 1 when inspect/rm match
nothing, verify finds damage, a run image fails or a large clean lacks --yes; 2 usage.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cachefill import DAY, LocalWorkUnderFalNames, fill_with_engine, put_entry
from nbimgprep.store import ResultStore


def nbimgprep(*args: str, cwd: Path | None = None, **env: str) -> subprocess.CompletedProcess[str]:
    """``python -m nbimgprep.cli ARGS`` with FAL_KEY unset, so nothing leaves the machine."""
    environ = {k: v for k, v in os.environ.items() if k not in ("FAL_KEY", "NBIMGPREP_CACHE_DIR")}
    environ.update(env)
    return subprocess.run(
        [sys.executable, "-m", "nbimgprep.cli", *args],
        capture_output=True,
        text=True,
        env=environ,
        cwd=cwd,
        timeout=120,
    )


# -- cache list, inspect, stats ---------------------------------------------------------------


def test_list_prints_a_text_table(cache: Path) -> None:
    done = nbimgprep("--cache-dir", str(cache), "cache", "list")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].split() == [
        "key", "image", "operation", "endpoint", "size", "dimensions", "age", "hits"
    ]  # fmt: skip
    assert len(lines) == 2 + 5 + 1
    assert "5 entries, sorted by age." in lines[-1]


def test_list_flags_and_cache_dir_after_the_subcommand(cache: Path) -> None:
    done = nbimgprep("cache", "list", "--op", "upscale", "--limit", "2", "--sort", "size",
                     "--cache-dir", str(cache))  # fmt: skip
    assert done.returncode == 0, done.stderr
    rows = done.stdout.splitlines()[2:-1]
    assert len(rows) == 2
    assert all("local/upscale" in r for r in rows)
    assert "2 of 3 entries" in done.stdout


def test_cache_dir_from_the_environment(cache: Path) -> None:
    done = nbimgprep("cache", "stats", NBIMGPREP_CACHE_DIR=str(cache))
    assert done.returncode == 0, done.stderr
    assert f"store: {cache}" in done.stdout


def test_empty_list_is_success(tmp_path: Path) -> None:
    ResultStore(tmp_path / ".cache" / "nbimgprep")  # the default location
    done = nbimgprep("cache", "list", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "The cache is empty."


def test_list_where_there_is_no_store_exits_1_and_creates_nothing(tmp_path: Path) -> None:
    done = nbimgprep("cache", "list", cwd=tmp_path)
    assert done.returncode == 1
    default = tmp_path / ".cache" / "nbimgprep"
    assert done.stderr.startswith(f"nbimgprep: No nbimgprep cache at {default}")
    assert done.stderr.count("\n") == 1
    assert not (tmp_path / ".cache").exists()


def test_a_tilde_path_naming_no_user_is_a_clear_error(tmp_path: Path) -> None:
    out = nbimgprep("--cache-dir", "~no-such-user-here/cache", "cache", "list", cwd=tmp_path)
    assert out.returncode == 1
    assert "names no user on this machine" in out.stderr
    assert "Traceback" not in out.stderr


def test_list_by_tag(cache: Path) -> None:
    first = ResultStore(cache).entries()[0]
    ResultStore(cache).tag(first.key, "accepted")
    out = nbimgprep("--cache-dir", str(cache), "cache", "list", "--tag", "accepted")
    assert out.returncode == 0, out.stderr
    assert first.key[:12] in out.stdout
    assert len([line for line in out.stdout.splitlines() if first.operation in line]) >= 1
    none = nbimgprep("--cache-dir", str(cache), "cache", "list", "--tag", "rejected")
    assert none.returncode == 0
    assert first.key[:12] not in none.stdout


def test_output_cut_short_by_a_pipe_is_no_traceback(cache: Path) -> None:
    environ = {k: v for k, v in os.environ.items() if k != "FAL_KEY"}
    cli = [sys.executable, "-m", "nbimgprep.cli", "--cache-dir", str(cache), "cache", "list"]
    with subprocess.Popen(
        cli, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=environ, bufsize=0
    ) as lister:
        assert lister.stdout is not None and lister.stderr is not None
        lister.stdout.close()  # like `| head` that has read enough
        errors = lister.stderr.read().decode()
    assert "Traceback" not in errors


def test_inspect_a_photo(cache: Path, photos: dict[str, Path]) -> None:
    done = nbimgprep("--cache-dir", str(cache), "cache", "inspect", str(photos["astronaut"]))
    assert done.returncode == 0, done.stderr
    assert "(3 results)" in done.stdout
    assert done.stdout.count("result_sha256") == 3


def test_inspect_or_rm_matching_nothing_exits_1(cache: Path) -> None:
    for command in ("inspect", "rm"):
        done = nbimgprep("--cache-dir", str(cache), "cache", command, "0000000000")
        assert done.returncode == 1
        assert "no cache key or image hash starts with" in done.stderr
        assert "Traceback" not in done.stderr
    assert len(ResultStore(cache)) == 5


def test_stats(cache: Path) -> None:
    done = nbimgprep("--cache-dir", str(cache), "cache", "stats")
    assert done.returncode == 0, done.stderr
    assert "entries" in done.stdout
    assert "hit rate" in done.stdout
    assert "remove_background" in done.stdout


# -- clean, rm, verify ------------------------------------------------------------------------


def test_clean_like_the_original_script(cache: Path) -> None:
    store = ResultStore(cache)
    old = put_entry(store, 1, created=time.time() - 10 * DAY)

    nothing = nbimgprep("--cache-dir", str(cache), "cache", "clean")
    assert nothing.returncode == 0, nothing.stderr
    assert "Nothing to clean" in nothing.stdout

    done = nbimgprep("--cache-dir", str(cache), "cache", "clean", "--max-age-days=7")
    assert done.returncode == 0, done.stderr
    assert old[:12] in done.stdout
    assert "Removed 1 entries" in done.stdout
    assert store.get(old) is None
    assert len(store) == 5


def test_large_clean_without_yes_removes_nothing_and_exits_1(cache: Path) -> None:
    store = ResultStore(cache)
    for seed in range(8):
        put_entry(store, seed)
    refused = nbimgprep("--cache-dir", str(cache), "cache", "clean", "--max-age-days=0")
    assert refused.returncode == 1
    assert "Add --yes" in refused.stdout
    assert len(store) == 13

    dry = nbimgprep("--cache-dir", str(cache), "cache", "clean", "--max-age-days=0", "--dry-run")
    assert dry.returncode == 0
    assert "would remove 13 entries" in dry.stdout
    assert len(store) == 13

    done = nbimgprep("--cache-dir", str(cache), "cache", "clean", "--max-age-days=0", "--yes")
    assert done.returncode == 0, done.stderr
    assert len(store) == 0


def test_rm_deletes_and_shows(cache: Path) -> None:
    entry = ResultStore(cache).entries(op="remove_background")[0]
    done = nbimgprep("--cache-dir", str(cache), "cache", "rm", entry.key[:12])
    assert done.returncode == 0, done.stderr
    assert "remove_background" in done.stdout
    assert ResultStore(cache).get(entry.key) is None


def test_verify_exit_code_says_whether_damage_was_found(cache: Path) -> None:
    ok = nbimgprep("--cache-dir", str(cache), "cache", "verify")
    assert ok.returncode == 0, ok.stderr
    assert "all intact" in ok.stdout

    entry = ResultStore(cache).entries(op="face_detail")[0]
    entry.path.write_bytes(b"\0" * entry.size)
    damaged = nbimgprep("--cache-dir", str(cache), "cache", "verify")
    assert damaged.returncode == 1
    assert "content differs" in damaged.stdout
    assert nbimgprep("--cache-dir", str(cache), "cache", "verify").returncode == 0  # dropped


# -- export, import ---------------------------------------------------------------------------


def test_export_then_import(cache: Path, tmp_path: Path, photos: dict[str, Path]) -> None:
    local_only = nbimgprep("--cache-dir", str(cache), "cache", "export", str(tmp_path / "l.json"))
    assert "Exported 0 results" in local_only.stdout and "5 left out" in local_only.stdout

    made = tmp_path / "fal-made"
    fill_with_engine(made, photos, backend=LocalWorkUnderFalNames())
    target = tmp_path / "legacy.json"
    done = nbimgprep("--cache-dir", str(made), "cache", "export", str(target), "--format", "legacy")
    assert done.returncode == 0, done.stderr
    assert "Exported 4 results" in done.stdout and f"--root {made}" in done.stdout

    assert len(json.loads(target.read_text())) == 3

    fresh = tmp_path / "fresh"
    imported = nbimgprep(
        "--cache-dir", str(fresh), "cache", "import", str(target), "--root", str(made)
    )
    assert imported.returncode == 0, imported.stderr
    assert "Imported 4 results" in imported.stdout
    assert len(ResultStore(fresh)) == 4


def test_import_with_root(tmp_path: Path, photos: dict[str, Path]) -> None:
    public = tmp_path / "app" / "public"
    (public / "uploads").mkdir(parents=True)
    shutil.copy(photos["rocket"], public / "uploads" / "r.jpg")
    legacy = tmp_path / "app" / "cache.json"
    legacy.write_text(json.dumps({"c" * 64: {"upscaled": "/uploads/r.jpg", "timestamp": 1}}))
    done = nbimgprep("--cache-dir", str(tmp_path / "store"), "cache", "import", str(legacy),
                     "--root", str(public))  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "Imported 1 results" in done.stdout


def test_import_of_a_missing_file_exits_1(tmp_path: Path) -> None:
    done = nbimgprep("--cache-dir", str(tmp_path / "s"), "cache", "import", str(tmp_path / "x"))
    assert done.returncode == 1
    assert "no such file" in done.stderr


# -- run --------------------------------------------------------------------------------------


def test_run_prints_fresh_then_hit_with_the_result_path(
    tmp_path: Path, photos: dict[str, Path]
) -> None:
    cache = tmp_path / "run-cache"
    args = ("--cache-dir", str(cache), "run", "upscale", str(photos["chelsea"]), "--scale", "2")
    first = nbimgprep(*args, "--backend", "local")
    assert first.returncode == 0, first.stderr
    line = first.stdout.splitlines()[0]
    assert line.startswith("fresh")
    result_path = Path(line.split(" -> ")[1])
    assert result_path.is_file()
    assert result_path.is_relative_to(cache)

    second = nbimgprep(*args)  # no FAL_KEY: the local backend, with a notice on stderr
    assert second.returncode == 0, second.stderr
    assert second.stdout.splitlines()[0] == f"hit     {photos['chelsea']} -> {result_path}"
    assert "FAL_KEY is not set" in second.stderr
    assert "1 images, 1 cache hits, 0 fresh, 0 failed" in second.stdout

    refreshed = nbimgprep(*args, "--backend", "local", "--refresh")
    assert refreshed.stdout.startswith("fresh")


def test_run_reports_each_failure_and_exits_1(tmp_path: Path, photos: dict[str, Path]) -> None:
    broken = tmp_path / "not-an-image.png"
    broken.write_text("hello")
    done = nbimgprep("--cache-dir", str(tmp_path / "c"), "run", "face_detail",
                     str(tmp_path / "missing.jpg"), str(broken), str(photos["rocket"]),
                     "--backend", "local")  # fmt: skip
    assert done.returncode == 1
    lines = sorted(done.stdout.splitlines()[:3])  # one line per image, as each finishes
    assert lines[0].startswith(f"failed  {tmp_path / 'missing.jpg'}: ")
    assert "no such file" in lines[0]
    assert lines[1].startswith(f"failed  {broken}: ")
    assert lines[2].startswith("fresh")
    assert "3 images, 0 cache hits, 1 fresh, 2 failed" in done.stdout
    assert "Traceback" not in done.stderr


# -- usage ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["cache"],
        ["frobnicate"],
        ["cache", "list", "--sort", "name"],
        ["cache", "list", "--limit", "0"],
        ["cache", "list", "--limit", "99999999999999999999"],
        ["cache", "inspect"],
        ["cache", "clean", "--max-size", "lots"],
        ["cache", "clean", "--max-age-days", "-3"],
        ["cache", "export", "x.json", "--format", "csv"],
        ["run", "sharpen", "a.jpg"],
        ["run", "upscale"],
        ["run", "upscale", "a.jpg", "--scale", "3"],
        ["run", "remove_background", "a.jpg", "--scale", "2"],
        ["run", "upscale", "a.jpg", "--backend", "cloud"],
    ],
)
def test_bad_arguments_exit_2_with_the_usage(args: list[str], tmp_path: Path) -> None:
    done = nbimgprep(*args, cwd=tmp_path)
    assert done.returncode == 2
    assert "usage: nbimgprep" in done.stderr
    assert "Traceback" not in done.stderr


def test_help_exits_0() -> None:
    done = nbimgprep("cache", "clean", "--help")
    assert done.returncode == 0
    assert "--max-age-days N" in done.stdout
    assert "--yes" in done.stdout


def test_the_console_script_is_installed(cache: Path) -> None:
    script = Path(sys.executable).with_name("nbimgprep")
    assert script.is_file(), "install the package (pip install -e .) for the nbimgprep script"
    done = subprocess.run(
        [str(script), "--cache-dir", str(cache), "cache", "list", "--limit", "1"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "1 of 5 entries" in done.stdout


# -- any argv: an exit code and a message, never a traceback ----------------------------------

#: Each cache subcommand: whether it takes a positional argument, and its flags.
_GRAMMAR: dict[str, tuple[bool, list[str]]] = {
    "list": (False, ["--op", "--limit", "--sort"]),
    "inspect": (True, []),
    "stats": (False, []),
    "clean": (False, ["--max-age-days", "--max-size", "--missing", "--dry-run", "--yes"]),
    "rm": (True, []),
    "verify": (False, []),
    "export": (True, ["--format"]),
    "import": (True, ["--root"]),
}
_ODD_FLAGS = ["--cache-dir", "-h", "--", "-", "--help=x", "--limit=", "--op=upscale", "--frob"]
_VALUES = [
    "", " ", "0", "-1", "nan", "inf", "1e400", "99999999999999999999", "2GB", "10XB",
    "upscale", "hits", "legacy", "abc", "é", "a\x00b", "..", "/", "~", "x" * 300,
]  # fmt: skip


@pytest.fixture(scope="module")
def places(tmp_path_factory: pytest.TempPathFactory, engine_store: Path) -> dict[str, str]:
    """Paths a user might type: a store, a file, a folder, nothing, JSON good and bad."""
    base = tmp_path_factory.mktemp("argv")
    shutil.copytree(engine_store, base / "store")
    (base / "folder").mkdir()
    (base / "file.txt").write_text("hello")
    (base / "legacy.json").write_text(json.dumps({"a" * 64: {"upscaled": "file.txt"}}))
    (base / "bad.json").write_text('{"' + "b" * 64 + '": {"timestamp": "soon", "upscaled": 1}}')
    (base / "list.json").write_text("[1, 2]")
    names = ["store", "folder", "file.txt", "legacy.json", "bad.json", "list.json", "missing"]
    return {name: str(base / name) for name in names}


@settings(
    max_examples=400,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_any_cache_command_line_ends_in_an_exit_code_and_a_message(
    places: dict[str, str], data: st.DataObject
) -> None:
    from nbimgprep.cli import main

    typed = st.sampled_from([*_VALUES, *sorted(places.values())])
    value = st.one_of(typed, typed, typed, st.text(max_size=6))
    sub = data.draw(st.sampled_from(sorted(_GRAMMAR)))
    positional, flags = _GRAMMAR[sub]
    argv = ["cache", sub]
    if positional and data.draw(st.integers(0, 9)) > 0:
        argv.append(data.draw(value))
    for _ in range(data.draw(st.integers(0, 3))):
        flag = data.draw(st.sampled_from(flags + _ODD_FLAGS))
        argv += [flag, data.draw(value)] if data.draw(st.booleans()) else [flag]
    if data.draw(st.integers(0, 4)) == 0:
        argv = ["--cache-dir", data.draw(value), *argv]
    if "--cache-dir" not in argv:
        argv += ["--cache-dir", places["store"]]  # never the working directory's store

    out, err = io.StringIO(), io.StringIO()
    here = os.getcwd()
    os.chdir(Path(places["store"]).parent)  # relative paths land in the test's folder
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(argv)
    finally:
        os.chdir(here)
    assert code in (0, 1, 2), argv
    said = out.getvalue() + err.getvalue()
    assert said.strip(), argv
    assert "Traceback" not in said, argv
    if code == 2:
        assert "usage: nbimgprep" in err.getvalue(), argv
    elif code == 1 and not err.getvalue():
        assert out.getvalue().strip(), argv  # a refused clean or damage found: on stdout
