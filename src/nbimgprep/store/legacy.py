"""The original app's cache file: export to it and import from it.

``.cache/image-processing-cache.json`` was shaped
``{image_hash: {"bgRemoved": path, "upscaled": path, "faceDetailed": path, "timestamp": ms}}``.
Both directions are written on the store's public ``entries``, ``get`` and ``put``: this
module knows the format, never the store's files or index.

What the format can say, and so what a record means: it names an image and, per operation,
one result file, and nothing about the endpoint, its arguments or the parameters. The
original app always called the operation's default fal.ai endpoint with its defaults, so a
record says exactly that. Export therefore writes only the entries that answer that default
call (and counts the ones it leaves out); import gives every entry it makes that default
call's key, and nothing else, so an import never creates an entry that answers a call it
was not made for.

The file being imported may come from anywhere: every value is checked, every path is
resolved under ``root`` (``..`` and symlinks included) and must stay inside it, every result
file is decoded in full, and each bad item is skipped and counted with its reason.
"""

from __future__ import annotations

import json
import math
import os
import re
import stat
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import StoreError
from ..images import MAX_PIXELS, content_type_of, decode_image
from ..operations import OPERATIONS, Endpoint, Operation, cache_key
from .entry import EXTENSIONS, Entry, ResultMeta

if TYPE_CHECKING:
    from .result_store import ResultStore

__all__ = [
    "ExportOutcome",
    "ImportOutcome",
    "Skipped",
    "export_legacy_json",
    "import_legacy_json",
]

# -- why an entry is left out of an export ---------------------------------------------------

NOT_DEFAULT = (
    "made by another endpoint or with non-default parameters (the original format cannot say which)"
)
NO_FIELD = "an operation the original format has no field for"

# -- why an item of an import is skipped -----------------------------------------------------

NOT_AN_OBJECT = "the image's record is not a JSON object"
BAD_HASH = "the image hash is not 64 hex digits"
BAD_TIMESTAMP = "the timestamp is not a number of milliseconds between 1970 and now"
BAD_PATH = "the path is not a string naming a file"
OUTSIDE_ROOT = "the path leads outside --root"
MISSING = "result file missing"
NOT_A_FILE = "not a regular file"
UNREADABLE = "result file cannot be read"
TOO_LARGE = "result file larger than any image nbimgprep accepts"
NOT_AN_IMAGE = "not a complete image (empty, truncated, damaged or over the size limit)"
WRONG_FORMAT = "not a PNG, JPEG or WebP image"
WRONG_SHAPE = "its size or channels cannot be what the operation makes"

#: A result file is at most this big: 100 MP at 4 bytes a pixel, plus room for a format's
#: overhead. Anything larger is refused before it is read.
MAX_IMPORT_BYTES = 5 * MAX_PIXELS

#: The slots whose results are always cut-outs with an alpha channel (background removal
#: returns a PNG with alpha): a file without one cannot be such a result.
ALPHA_SLOTS = frozenset({"bgRemoved"})

_HEX64 = re.compile(r"[0-9a-fA-F]{64}")
_DAY_MS = 86_400_000


@dataclass(frozen=True)
class ExportOutcome:
    """What an export wrote, and what it left out because the format cannot state it."""

    path: Path
    #: The folder the file's paths are relative to: pass it as ``root=`` (``--root``) to
    #: import the file into another store.
    root: Path
    exported: int
    #: How many entries were left out, by reason.
    left_out: Mapping[str, int]


@dataclass(frozen=True)
class Skipped:
    """One item an import skipped: the path or image hash as the file gave it, and why."""

    item: str
    reason: str


@dataclass(frozen=True)
class ImportOutcome:
    """What an import brought in, what was there already, and what it skipped and why."""

    imported: int = 0
    already_present: int = 0
    skipped: tuple[Skipped, ...] = ()

    @property
    def reasons(self) -> dict[str, int]:
        """How many items were skipped for each reason, the most common first."""
        return dict(Counter(s.reason for s in self.skipped).most_common())

    @property
    def skipped_missing(self) -> list[str]:
        """The paths whose result file was not there."""
        return [s.item for s in self.skipped if s.reason == MISSING]


def default_key(image_hash: str, op: Operation) -> str:
    """The key of the call a legacy record stands for: the default fal.ai endpoint, with no
    extra arguments, and the operation's default parameters."""
    return cache_key(image_hash, op.name, Endpoint(op.fal_endpoint), op.canonical_params())


def _answers_the_default_call(entry: Entry, op: Operation) -> bool:
    return (
        entry.endpoint == op.fal_endpoint
        and not entry.endpoint_arguments
        and entry.params == op.canonical_params()
        and entry.key == default_key(entry.image_hash, op)
    )


# -- export ------------------------------------------------------------------------------------


def export_legacy_json(store: ResultStore, path: str | os.PathLike[str]) -> ExportOutcome:
    """Write ``{image_hash: {"bgRemoved": path, ..., "timestamp": ms}}`` with every entry the
    format can state truthfully: those made by the operation's default fal.ai endpoint with
    its default arguments and parameters (one per image and operation, as the key is the
    same). Paths are relative to the store's root (``results/ab/ab12….png``)."""
    legacy: dict[str, dict[str, Any]] = {}
    left_out: Counter[str] = Counter()
    exported = 0
    for entry in store.entries(sort="age"):
        op = OPERATIONS.get(entry.operation)
        if op is None:
            left_out[NO_FIELD] += 1
            continue
        if not _answers_the_default_call(entry, op):
            left_out[NOT_DEFAULT] += 1
            continue
        record = legacy.setdefault(entry.image_hash, {})
        record[op.legacy_key] = _relative(entry.path, store.root)
        record["timestamp"] = max(record.get("timestamp", 0), int(entry.created * 1000))
        exported += 1
    target = Path(path)
    _write(target, json.dumps(legacy, indent=2, sort_keys=True))
    return ExportOutcome(target, store.root, exported, dict(left_out.most_common()))


def _relative(file: Path, root: Path) -> str:
    try:
        return file.relative_to(root).as_posix()
    except ValueError:  # not under the root: say where it is
        return str(file)


def _write(target: Path, text: str) -> None:
    if target.is_dir():
        raise StoreError(f"{target} is a folder; give the path of the JSON file to write.")
    tmp = target.with_name(target.name + ".tmp")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(text)
        os.replace(tmp, target)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise StoreError(
            f"{target}: cannot write the export there ({exc.strerror or exc}); "
            "give a path in a folder you can write to."
        ) from None


# -- import ------------------------------------------------------------------------------------


def import_legacy_json(
    store: ResultStore, path: str | os.PathLike[str], root: str | os.PathLike[str] | None = None
) -> ImportOutcome:
    """Bring a cache from the original app into ``store``.

    Every path is looked up under ``root`` (default: the JSON file's folder): web paths such
    as ``/uploads/processed_images/x.png`` and relative paths below it, an absolute path as
    itself if it lies inside it. A path that leaves ``root`` once ``..`` and symlinks are
    resolved is refused. Result files are read and copied (never moved or deleted), decoded
    in full, and given the operation's default fal.ai endpoint and parameters. Each bad item
    is skipped and counted with its reason; a file that is not a JSON object is a
    :class:`StoreError`."""
    source = Path(path)
    document = _read_document(source)
    base = _resolve_root(Path(root) if root is not None else source.parent)
    importer = _Importer(store, base, now_ms=store.clock() * 1000)
    for image_hash, record in document.items():
        importer.add_record(image_hash, record)
    return ImportOutcome(importer.imported, importer.present, tuple(importer.skipped))


def _read_document(source: Path) -> dict[str, Any]:
    try:
        document = json.loads(source.read_bytes())
    except (OSError, ValueError, RecursionError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else exc
        raise StoreError(
            f"{source}: cannot read a legacy cache file ({reason}); give the original app's "
            "image-processing-cache.json."
        ) from None
    if not isinstance(document, dict):
        raise StoreError(
            f"{source}: expected a JSON object keyed by image hash (the original app's "
            f"image-processing-cache.json), found {_json_kind(document)}."
        )
    return document


def _json_kind(value: object) -> str:
    kinds = {list: "a list", str: "a string", bool: "true or false", type(None): "null"}
    return kinds.get(type(value), "a number")


def _resolve_root(root: Path) -> Path:
    try:
        resolved = Path(os.path.realpath(root.expanduser()))
    except (RuntimeError, OSError, ValueError):  # ~nobody, NUL bytes, names too long
        resolved = root
    if not resolved.is_dir():
        raise StoreError(
            f"--root {root}: no such folder; give the folder the file's paths are relative to."
        )
    return resolved


class _Importer:
    """One import's running counts, and the checks each record and result file go through."""

    def __init__(self, store: ResultStore, root: Path, now_ms: float) -> None:
        self.store = store
        self.root = root
        self.now_ms = now_ms
        self.imported = 0
        self.present = 0
        self.skipped: list[Skipped] = []

    def skip(self, item: object, reason: str) -> None:
        self.skipped.append(Skipped(_printable(item), reason))

    def add_record(self, image_hash: str, record: object) -> None:
        if not isinstance(record, dict):
            return self.skip(image_hash, NOT_AN_OBJECT)
        if not _HEX64.fullmatch(image_hash):
            return self.skip(image_hash, BAD_HASH)
        created_ms = record.get("timestamp", self.now_ms)
        if not self._plausible_ms(created_ms):
            return self.skip(image_hash, BAD_TIMESTAMP)
        for op in OPERATIONS.values():
            named = record.get(op.legacy_key)
            if named is None or named == "":
                continue  # the original app never made this result
            if not isinstance(named, str):
                self.skip(named, BAD_PATH)
            else:
                self.add_result(image_hash.lower(), op, named, float(created_ms) / 1000)

    def _plausible_ms(self, value: object) -> bool:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return False
        if isinstance(value, float) and not math.isfinite(value):
            return False
        return 0 <= value <= self.now_ms + _DAY_MS

    def add_result(self, image_hash: str, op: Operation, named: str, created: float) -> None:
        file = _locate(named, self.root)
        if isinstance(file, str):
            return self.skip(named, file)
        key = default_key(image_hash, op)
        if self.store.get(key) is not None:
            self.present += 1
            return
        data = _read_regular_file(file)
        if isinstance(data, str):
            return self.skip(named, data)
        checked = _check_result(data, op, label=named)
        if isinstance(checked, str):
            return self.skip(named, checked)
        width, height, content_type = checked
        meta = ResultMeta(
            image_hash=image_hash,
            operation=op.name,
            endpoint=Endpoint(op.fal_endpoint),
            params=op.canonical_params(),
            backend="fal",
            width=width,
            height=height,
            content_type=content_type,
            source=str(file),
            created=created,
        )
        self.store.put(key, data, meta)
        self.imported += 1


def _locate(named: str, root: Path) -> Path | str:
    """The file ``named`` stands for under ``root``, fully resolved, or why it is refused.

    Tried in turn: the path itself if it is absolute, then the path below ``root`` (a
    leading ``/`` read as the web root). Only a candidate that lies inside ``root`` after
    ``..`` and symlinks are resolved is ever looked at."""
    try:
        given = Path(named)
        candidates = [given] if given.is_absolute() else []
        candidates.append(root / named.lstrip("/"))
        resolved = [Path(os.path.realpath(c)) for c in candidates]
        inside = [p for p in resolved if p.is_relative_to(root)]
        found = next((p for p in inside if os.path.lexists(p)), None)
        if found is not None:
            return found
        # Nothing inside: say "outside" if that is where the path leads (a file there exists,
        # or every reading of it leaves the root), else that the file is missing.
        if not inside or any(os.path.lexists(p) for p in resolved):
            return OUTSIDE_ROOT
        return MISSING
    except (OSError, ValueError):  # NUL bytes, unencodable characters, names too long
        return BAD_PATH


def _read_regular_file(file: Path) -> bytes | str:
    """The bytes of ``file`` if it is a regular file of a plausible size, or why not. Opened
    without following a symlink or blocking on a FIFO, so the file read is the one checked."""
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    flags |= getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(file, flags)
    except FileNotFoundError:
        return MISSING
    except OSError:
        return UNREADABLE
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            return NOT_A_FILE
        if info.st_size > MAX_IMPORT_BYTES:
            return TOO_LARGE
        with os.fdopen(os.dup(fd), "rb") as handle:
            data = handle.read(MAX_IMPORT_BYTES + 1)
    except OSError:
        return UNREADABLE
    finally:
        os.close(fd)
    return TOO_LARGE if len(data) > MAX_IMPORT_BYTES else data


def _check_result(data: bytes, op: Operation, label: str) -> tuple[int, int, str] | str:
    """``(width, height, content_type)`` of a result file that decodes in full and could be
    what ``op`` makes with its default parameters, or why not.

    The input's size is unknown, so the size check is what the operation's scale allows: an
    ``upscaled`` file (2x by default) has an even width and height. A ``bgRemoved`` file has
    an alpha channel."""
    try:
        image = decode_image(data, label)
        content_type = content_type_of(data) or ""  # no bomb warning inside our cap
    except Exception:  # hostile bytes make Pillow raise a zoo of error types
        return NOT_AN_IMAGE
    if content_type not in EXTENSIONS:
        return WRONG_FORMAT
    x_factor, y_factor = op.output_size((1, 1), op.canonical_params())
    if image.width % x_factor or image.height % y_factor:
        return WRONG_SHAPE
    if op.legacy_key in ALPHA_SLOTS and "A" not in image.getbands():
        return WRONG_SHAPE
    return image.width, image.height, content_type


def _printable(item: object, limit: int = 120) -> str:
    """``item`` as one short printable line (a hostile file's text goes into reports)."""
    text = item if isinstance(item, str) else json.dumps(item, default=str)[:limit]
    shown = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text[:limit])
    return shown + ("…" if len(text) > limit else "")
