"""``review.export``: copy chosen results to a folder, named after their inputs."""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from pathlib import Path, PurePath

from ..errors import ExportConflict
from .items import ReviewItem

__all__ = ["export_items"]


def export_items(
    items: Sequence[ReviewItem], folder: str | os.PathLike[str], *, overwrite: bool
) -> list[Path]:
    """Copy each item's result file to ``folder`` as the input's stem with the result's
    suffix; every name is checked before anything is written."""
    target = Path(folder).expanduser()
    plan: list[tuple[Path, Path]] = []
    taken: dict[Path, str] = {}
    for item in items:
        assert item.result is not None
        stem = PurePath(item.name).stem or f"item-{item.index}"
        dest = target / f"{stem}{item.result.path.suffix}"
        if dest in taken:
            raise ExportConflict(
                f"{item.label} and {taken[dest]} would both be exported as {dest.name}; "
                "rename one input, or export them to separate folders."
            )
        taken[dest] = item.label
        if dest.exists() and not overwrite:
            raise ExportConflict(
                f"{dest} already exists; nothing was exported. Pass overwrite=True to "
                "replace it, or export to another folder."
            )
        plan.append((item.result.path, dest))
    target.mkdir(parents=True, exist_ok=True)
    for src, dest in plan:
        shutil.copyfile(src, dest)
    return [dest for _, dest in plan]
