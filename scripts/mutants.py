"""Break each engine promise on purpose and check that a test notices.

A test that still passes when the promise it names is broken was not testing the promise.
Each mutant below is one deliberate break: a piece of source text replaced by a broken
version. For every mutant this script copies ``src/`` and ``tests/`` to a temporary folder,
applies the break there (the working tree is never touched), runs the tests named for it,
and expects them to FAIL. It exits 1 if any mutant survives, or if a mutant's text is no
longer found in the source (the code moved on: update the mutant).

Usage: python scripts/mutants.py [--list] [NAME ...]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Mutant:
    """One deliberate break: in ``file``, ``find`` becomes ``replace``; ``tests`` must fail."""

    name: str
    file: str
    find: str
    replace: str
    tests: tuple[str, ...]


MUTANTS: tuple[Mutant, ...] = (
    Mutant(
        name="single-flight-in-process",
        file="src/nbimgprep/flights.py",
        find="            leader = flight is None\n            if flight is None:\n",
        replace="            leader = True\n            if True:\n",
        tests=(
            "tests/test_processor.py::test_twenty_concurrent_identical_calls_make_one_backend_call",
        ),
    ),
    Mutant(
        name="single-flight-across-processes",
        file="src/nbimgprep/key_lock.py",
        find="        if not _can_create(self._path, self._mode):\n            return\n",
        replace="        if True:\n            return\n",
        tests=("tests/test_store_processes.py::test_processes_racing_on_one_key_pay_once",),
    ),
    Mutant(
        name="file-check-on-hit",
        file="src/nbimgprep/store/files.py",
        find='        if damage(entry) is not None:\n            return "content", None\n',
        replace='        if False:\n            return "content", None\n',
        tests=(
            "tests/test_store_trust.py::"
            "test_a_result_damaged_in_place_is_never_served_and_is_made_again",
        ),
    ),
    Mutant(
        name="atomic-put-order",
        file="src/nbimgprep/store/result_store.py",
        find=(
            "            stamp = self._files.write_result(entry, data)\n"
            "            self._files.write_sidecar(entry)\n"
        ),
        replace=(
            "            self._files.write_sidecar(entry)\n"
            "            stamp = self._files.write_result(entry, data)\n"
        ),
        tests=(
            "tests/test_store.py::test_a_replacing_put_that_fails_half_way_leaves_the_old_entry",
        ),
    ),
    Mutant(
        name="nothing-deleted-outside-the-store",
        file="src/nbimgprep/store/files.py",
        find="        if not resolved.is_relative_to(self.root.resolve()):\n",
        replace="        if False:\n",
        tests=("tests/test_store.py::test_nothing_outside_the_root_is_ever_deleted",),
    ),
    Mutant(
        name="orphan-sweep-grace",
        file="src/nbimgprep/store/orphans.py",
        find="    cutoff = time.time() - grace\n",
        replace="    cutoff = time.time()\n",
        tests=(
            "tests/test_store_orphans.py::"
            "test_clean_removes_orphans_past_the_grace_and_says_how_many_and_how_big",
        ),
    ),
    Mutant(
        name="orphan-sweep-results-only",
        file="src/nbimgprep/store/orphans.py",
        find="            if layout.is_result_file(path):\n",
        replace="            if True:\n",
        tests=(
            "tests/test_store_orphans.py::"
            "test_only_files_named_like_results_in_their_place_are_ever_swept",
        ),
    ),
    Mutant(
        name="orphan-sweep-never-through-a-symlink",
        file="src/nbimgprep/store/orphans.py",
        find="        if size is not None and path.resolve().is_relative_to(root):\n",
        replace="        if size is not None:\n",
        tests=("tests/test_store.py::test_nothing_outside_the_root_is_ever_deleted",),
    ),
)


def run_tests(tree: Path, tests: tuple[str, ...]) -> tuple[int, str]:
    """Run ``tests`` against the copy in ``tree``; return pytest's exit code and its tail."""
    env = dict(os.environ, PYTHONPATH=str(tree / "src"), PYTHONDONTWRITEBYTECODE="1")
    command = [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", *tests]
    done = subprocess.run(
        command, cwd=tree, env=env, capture_output=True, text=True, timeout=900, check=False
    )
    tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-3:])
    return done.returncode, tail


def copy_tree(into: Path) -> Path:
    """A throwaway copy of what the tests need: src/, tests/, pyproject.toml, notebooks/."""
    tree = into / "tree"
    tree.mkdir()
    for name in ("src", "tests", "notebooks"):
        shutil.copytree(ROOT / name, tree / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy2(ROOT / "pyproject.toml", tree / "pyproject.toml")
    # The tests find the shared photos at ../shared/testdata beside the repository.
    (into / "shared").symlink_to(ROOT.parent / "shared")
    return tree


def check(mutant: Mutant) -> tuple[bool, str]:
    """True when a test caught the break; the text says what happened."""
    with tempfile.TemporaryDirectory(prefix="nbimgprep-mutant-") as tmp:
        tree = copy_tree(Path(tmp))
        code, tail = run_tests(tree, mutant.tests)
        if code != 0:
            return False, f"the tests fail even WITHOUT the break (exit {code}):\n{tail}"
        target = tree / mutant.file
        source = target.read_text()
        if source.count(mutant.find) != 1:
            found = source.count(mutant.find)
            return False, f"its text is found {found} times in {mutant.file}, not once"
        target.write_text(source.replace(mutant.find, mutant.replace))
        code, tail = run_tests(tree, mutant.tests)
        if code == 0:
            return False, f"SURVIVED: the tests still pass with the break:\n{tail}"
        return True, f"caught ({tail.splitlines()[-1] if tail else f'exit {code}'})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="only these mutants (default: all)")
    parser.add_argument("--list", action="store_true", help="list the mutants and their tests")
    args = parser.parse_args(argv)
    chosen = [m for m in MUTANTS if not args.names or m.name in args.names]
    if args.list:
        for m in chosen:
            print(f"{m.name}: {m.file} -> {' '.join(m.tests)}")
        return 0
    survivors = 0
    for mutant in chosen:
        started = time.monotonic()
        caught, text = check(mutant)
        survivors += not caught
        mark = "ok  " if caught else "FAIL"
        print(f"{mark} {mutant.name} [{time.monotonic() - started:.0f} s]: {text}", flush=True)
    print(f"{len(chosen) - survivors} of {len(chosen)} breaks caught")
    return 1 if survivors else 0


if __name__ == "__main__":
    sys.exit(main())
