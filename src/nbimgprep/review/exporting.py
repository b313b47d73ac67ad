"""``review.export``: copy chosen results to a folder, named after their inputs."""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from pathlib import Path, PurePath

from ..errors import ExportConflict, NotInCache, SaveError
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
        if dest.is_dir() or (dest.exists() and not overwrite):
            kind = "a folder" if dest.is_dir() else "a file"
            raise ExportConflict(
                f"{dest} already exists ({kind}); nothing was exported. Pass overwrite=True "
                "to replace a file, or export to another folder."
            )
        if not item.result.path.is_file():
            raise NotInCache(
                f"The result of {item.label} is no longer in the cache ({item.result.path} is "
                "gone: cleaned, or removed by hand); nothing was exported. Run the batch "
                "again to make it, or leave that item out."
            )
        plan.append((item.result.path, dest))
    if target.exists() and not target.is_dir():
        raise SaveError(f"{target} is a file, not a folder; nothing was exported.")
    try:
        target.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SaveError(
            f"Cannot create the folder {target} ({exc.strerror}); nothing was exported. "
            "Choose a folder you can write to."
        ) from exc
    for done, (src, dest) in enumerate(plan):
        try:
            shutil.copyfile(src, dest)
        except OSError as exc:
            raise SaveError(
                f"Exporting to {dest} failed ({exc.strerror}) after {done} of {len(plan)} "
                "files; free some space or choose another folder, then export again "
                "(with overwrite=True)."
            ) from exc
    return [dest for _, dest in plan]
