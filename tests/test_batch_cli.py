"""``nbimgprep run`` over folders and globs: a plan first, a budget, one line per image on
stdout, the progress bar on stderr, and the exit codes of the README."""

from __future__ import annotations

from pathlib import Path

from test_batch import make_images
from test_cli import nbimgprep


def test_a_dry_run_prints_the_plan_and_calls_nothing(tmp_path: Path) -> None:
    folder = tmp_path / "shoot"
    make_images(folder, 4)  # 10..13 px wide, 8 high
    cache = ("--cache-dir", str(tmp_path / "cache"))
    nbimgprep(*cache, "run", "upscale", str(folder / "img000.png"), "--backend", "local")

    done = nbimgprep(*cache, "run", "upscale", str(folder), "--scale", "2", "--dry-run")

    assert done.returncode == 0, done.stderr
    megapixels = sum(w * 2 * 16 for w in (11, 12, 13)) / 1e6
    assert done.stdout.strip() == (
        f"upscale (dry run, nothing called): 1 hits, 3 fresh calls ({megapixels:,.1f} MP of "
        "output)."
    )


def test_a_folder_and_a_glob_run_with_a_budget_and_a_bar_on_stderr(tmp_path: Path) -> None:
    make_images(tmp_path / "a", 3)
    make_images(tmp_path / "b", 2, suffix=".jpg")
    cache = ("--cache-dir", str(tmp_path / "cache"))

    done = nbimgprep(*cache, "run", "face_detail", str(tmp_path / "a"), str(tmp_path / "b/*.jpg"),
                     "--backend", "local", "--concurrency", "2", "--max-fresh", "4")  # fmt: skip

    assert done.returncode == 1  # one image over the budget
    lines = done.stdout.splitlines()
    assert len(lines) == 6 and lines[-1].startswith("face_detail: 5 images")
    assert sum(line.startswith("fresh ") for line in lines) == 4
    (over,) = [line for line in lines if line.startswith("failed")]
    assert str(tmp_path / "b" / "img001.jpg") in over and "max_fresh=4" in over
    assert "5/5" in done.stderr and "fresh=4" in done.stderr  # the tqdm bar

    rerun = nbimgprep(*cache, "run", "face_detail", str(tmp_path / "a"), str(tmp_path / "b"),
                      "--backend", "local")  # fmt: skip
    assert rerun.returncode == 0, rerun.stderr
    assert sorted(line.split()[0] for line in rerun.stdout.splitlines()[:5]) == [
        "fresh",
        *["hit"] * 4,
    ]


def test_bad_numbers_and_an_empty_folder(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    for flag, value in (("--concurrency", "0"), ("--max-fresh", "-1"), ("--concurrency", "x")):
        bad = nbimgprep("run", "face_detail", str(tmp_path), flag, value)
        assert bad.returncode == 2 and "usage:" in bad.stderr
    empty = nbimgprep("--cache-dir", str(tmp_path / "c"), "run", "face_detail",
                      str(tmp_path / "empty"), "--backend", "local")  # fmt: skip
    assert empty.returncode == 1 and "holds no images" in empty.stderr
