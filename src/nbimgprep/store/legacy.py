"""The original app's cache file: export to it and import from it.

``.cache/image-processing-cache.json`` was shaped
``{image_hash: {"bgRemoved": path, "upscaled": path, "faceDetailed": path, "timestamp": ms}}``.
Both directions are written on the store's public ``entries``, ``get`` and ``put``: this
module knows the format, never the store's files or index.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import StoreError
from ..operations import OPERATIONS, Endpoint, cache_key
from ..pixels import open_image
from .entry import ResultMeta

if TYPE_CHECKING:
    from .result_store import ResultStore

__all__ = ["ImportOutcome", "export_legacy_json", "import_legacy_json"]


@dataclass(frozen=True)
class ImportOutcome:
    """What an import brought in, what was there already, and what it skipped."""

    imported: int = 0
    already_present: int = 0
    skipped_missing: list[str] = field(default_factory=list)
    invalid: list[str] = field(default_factory=list)


def export_legacy_json(store: ResultStore, path: str | os.PathLike[str]) -> int:
    """Write ``{image_hash: {"bgRemoved": path, ..., "timestamp": ms}}`` with the newest
    entry per image and operation, absolute paths. Returns how many results it lists."""
    legacy: dict[str, dict[str, Any]] = {}
    written = 0
    for entry in reversed(store.entries(sort="age")):  # oldest first: newest wins
        op = OPERATIONS.get(entry.operation)
        if op is None:
            continue
        record = legacy.setdefault(entry.image_hash, {})
        if op.legacy_key not in record:
            written += 1
        record[op.legacy_key] = str(entry.path)
        record["timestamp"] = max(record.get("timestamp", 0), int(entry.created * 1000))
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".tmp")
    tmp.write_text(json.dumps(legacy, indent=2, sort_keys=True))
    os.replace(tmp, target)
    return written


def import_legacy_json(
    store: ResultStore, path: str | os.PathLike[str], root: str | os.PathLike[str] | None = None
) -> ImportOutcome:
    """Bring a cache from the original app into ``store``.

    Result files are copied (never moved or deleted). Web paths such as
    ``/uploads/processed_images/x.png`` are looked up under ``root``; relative paths under
    ``root`` or the JSON file's folder. Imported entries get the operation's default fal.ai
    endpoint and parameters. Missing files are skipped and listed."""
    source = Path(path)
    try:
        legacy = json.loads(source.read_text())
    except (OSError, ValueError) as exc:
        raise StoreError(f"{source}: cannot read a legacy cache file ({exc}).") from None
    if not isinstance(legacy, dict):
        raise StoreError(f"{source}: expected a JSON object keyed by image hash.")
    base = Path(root) if root is not None else source.parent
    by_legacy_key = {op.legacy_key: op for op in OPERATIONS.values()}
    outcome = ImportOutcome()
    imported = present = 0
    for image_hash, record in legacy.items():
        if not isinstance(record, dict):
            outcome.invalid.append(str(image_hash))
            continue
        created = float(record.get("timestamp", store.clock() * 1000)) / 1000
        for legacy_key, op in by_legacy_key.items():
            web_path = record.get(legacy_key)
            if not web_path:
                continue
            file = _legacy_file(str(web_path), base, root is not None)
            if file is None:
                outcome.skipped_missing.append(str(web_path))
                continue
            endpoint = Endpoint(op.fal_endpoint)
            params = op.canonical_params()
            key = cache_key(image_hash, op.name, endpoint, params)
            if store.get(key) is not None:
                present += 1
                continue
            data = file.read_bytes()
            try:
                from PIL import Image

                with open_image(file) as img:  # no bomb warning inside our 100 MP cap
                    width, height = img.size
                    content_type = Image.MIME.get(img.format or "", "image/png")
            except OSError:
                outcome.invalid.append(str(web_path))
                continue
            meta = ResultMeta(
                image_hash=image_hash,
                operation=op.name,
                endpoint=endpoint,
                params=params,
                backend="fal",
                width=width,
                height=height,
                content_type=content_type,
                source=str(file),
                created=created,
            )
            store.put(key, data, meta)
            imported += 1
    return replace(outcome, imported=imported, already_present=present)


def _legacy_file(web_path: str, base: Path, rooted: bool) -> Path | None:
    candidates = []
    as_path = Path(web_path)
    if as_path.is_absolute() and not rooted:
        candidates.append(as_path)
    candidates.append(base / web_path.lstrip("/"))
    return next((c for c in candidates if c.is_file()), None)
