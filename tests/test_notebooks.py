"""Every notebook in notebooks/ runs top to bottom (nbclient), so none of them rots."""

from __future__ import annotations

import shutil
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"


@pytest.mark.parametrize("name", sorted(p.name for p in NOTEBOOKS.glob("*.ipynb")))
def test_notebook_runs(tmp_path: Path, name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    work = tmp_path / "notebooks"
    shutil.copytree(NOTEBOOKS, work, ignore=shutil.ignore_patterns(".cache", ".ipynb_checkpoints"))
    monkeypatch.delenv("FAL_KEY", raising=False)
    monkeypatch.delenv("NBIMGPREP_CACHE_DIR", raising=False)
    nb = nbformat.read(work / name, as_version=4)
    NotebookClient(
        nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(work)}}
    ).execute()
    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    text = "\n".join(
        str(o.get("text", "")) + str(o.get("data", {}).get("text/plain", "")) for o in outputs
    )
    if name == "quickstart.ipynb":
        assert "False True" in text  # fresh, then a cache hit
        assert (work / ".cache" / "nbimgprep" / "index.sqlite").exists()
    if name == "batch.ipynb":
        assert "second run: 12 of 12 hits" in text
    if name == "review.ipynb":
        assert "fresh ()" in text  # shot02, cropped and done again, no longer flagged
        assert "exported: ['shot00.png', 'shot01.png', 'shot02.png', 'shot03.png']" in text
    if name == "team.ipynb":
        assert "None shared local" in text  # Alice fresh; Bob a shared hit, then a local one
        assert "same bytes: True" in text
