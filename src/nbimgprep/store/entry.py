"""Entry: one cached result, and the one place its fields are turned into index columns and
sidecar JSON.

The column list, the row-to-:class:`Entry` mapping and the sidecar's shape are all derived
from the dataclass fields (``dataclasses.fields`` and their type hints), so a field added to
:class:`Entry` reaches the index, the sidecars and the rebuild without a second list to keep
in step. Field metadata says where a field differs: ``column`` renames it in the index
(``path`` is stored as the file's name, ``result_name``), ``sidecar=False`` keeps it out of the
sidecar (usage counters live in the index only).
"""

from __future__ import annotations

import json
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

from ..errors import TagError
from ..operations import Endpoint

__all__ = ["COLUMNS", "Column", "Entry", "ResultMeta", "SCHEMA_VERSION"]

#: The sidecar format's version, written into every sidecar.
SCHEMA_VERSION = 1

#: A result file's suffix, by content type (anything else is stored as ``.png``).
EXTENSIONS = {"image/png": ".png", "image/jpeg": ".jpg", "image/webp": ".webp"}

_INDEX_ONLY = {"sidecar": False}


@dataclass(frozen=True)
class Entry:
    """One cached result: what was asked, what came back, and how it has been used."""

    key: str
    image_hash: str
    operation: str
    endpoint: str
    endpoint_arguments: dict[str, Any]
    params: dict[str, Any]
    backend: str
    path: Path = field(metadata={"column": "result_name"})
    result_sha256: str
    size: int
    width: int
    height: int
    content_type: str | None
    created: float
    last_hit: float | None = field(default=None, metadata=_INDEX_ONLY)
    hits: int = field(default=0, metadata=_INDEX_ONLY)
    backend_seconds: float = 0.0
    request_id: str | None = None
    remote_url: str | None = None
    source: str | None = None
    #: Short labels (a review's decisions, say); they never change what a lookup returns.
    tags: tuple[str, ...] = ()

    @property
    def last_used(self) -> float:
        """When this entry was last written or served."""
        return max(self.created, self.last_hit or 0.0)

    def sidecar(self) -> dict[str, Any]:
        """The JSON the sidecar file holds (hits and last hit live in the index only)."""
        return to_sidecar(self)


@dataclass(frozen=True)
class ResultMeta:
    """What a ``put`` records beside the result's bytes: the request and how it was made."""

    image_hash: str
    operation: str
    endpoint: Endpoint
    params: Mapping[str, Any]
    backend: str
    width: int
    height: int
    content_type: str | None = None
    backend_seconds: float = 0.0
    request_id: str | None = None
    remote_url: str | None = None
    source: str | None = None
    #: When the result was made (seconds since the epoch); None: now.
    created: float | None = None


Kind = Literal["plain", "json", "path"]


@dataclass(frozen=True)
class Column:
    """How one :class:`Entry` field is kept in the index and in the sidecar."""

    attribute: str
    name: str
    sql_type: str
    not_null: bool
    default: Any
    kind: Kind
    in_sidecar: bool
    #: A JSON list kept as a tuple in the Entry.
    sequence: bool = False

    def ddl(self, primary_key: bool) -> str:
        text = f"{self.name} {self.sql_type}"
        if primary_key:
            return text + " PRIMARY KEY"
        if self.not_null:
            text += " NOT NULL"
        if self.default is not None:
            text += f" DEFAULT {self.default!r}"
        return text


def _columns() -> tuple[Column, ...]:
    hints = typing.get_type_hints(Entry)
    out = []
    for f in fields(Entry):
        hint = hints[f.name]
        args = typing.get_args(hint)
        optional = isinstance(hint, types.UnionType) and type(None) in args
        base = next(a for a in args if a is not type(None)) if optional else hint
        origin = typing.get_origin(base) or base
        kind: Kind = "json" if origin in (dict, tuple) else "path" if base is Path else "plain"
        sql = {int: "INTEGER", float: "REAL"}.get(base, "TEXT")
        default = None if f.default is MISSING else f.default
        if kind == "json" and default is not None:
            default = json.dumps(default)
        out.append(
            Column(
                attribute=f.name,
                name=f.metadata.get("column", f.name),
                sql_type=sql,
                not_null=not optional,
                default=default,
                kind=kind,
                in_sidecar=f.metadata.get("sidecar", True),
                sequence=origin is tuple,
            )
        )
    return tuple(out)


#: The index's ``entries`` columns, in field order; the first is the primary key.
COLUMNS = _columns()


def table_ddl(table: str) -> str:
    """``CREATE TABLE`` for the entries index, derived from :data:`COLUMNS`."""
    body = ",\n    ".join(c.ddl(primary_key=i == 0) for i, c in enumerate(COLUMNS))
    return f"CREATE TABLE IF NOT EXISTS {table} (\n    {body}\n)"


def to_row(entry: Entry) -> list[Any]:
    """The values of ``entry`` in :data:`COLUMNS` order, as SQLite stores them."""
    out: list[Any] = []
    for c in COLUMNS:
        value = getattr(entry, c.attribute)
        if c.kind == "json":
            value = json.dumps(value, sort_keys=True)
        elif c.kind == "path":
            value = value.name
        out.append(value)
    return out


def from_row(row: Mapping[str, Any], result_path: Callable[[str], Path]) -> Entry:
    """The :class:`Entry` an index row describes (``result_path`` turns a name into a path)."""
    values = {c.attribute: row[c.name] for c in COLUMNS}
    for c in _JSON_COLUMNS:
        decoded = json.loads(values[c.attribute])
        values[c.attribute] = tuple(decoded) if c.sequence else decoded
    for c in _PATH_COLUMNS:
        values[c.attribute] = result_path(values[c.attribute])
    return Entry(**values)


_JSON_COLUMNS = tuple(c for c in COLUMNS if c.kind == "json")
_PATH_COLUMNS = tuple(c for c in COLUMNS if c.kind == "path")


def to_sidecar(entry: Entry) -> dict[str, Any]:
    """The sidecar's JSON: the fields kept there (``path`` as the file's name), and the
    format's version."""
    data: dict[str, Any] = {}
    for c in COLUMNS:
        if c.in_sidecar:
            value = getattr(entry, c.attribute)
            if c.kind == "path":
                value = value.name
            elif c.sequence:
                value = list(value)
            data[c.attribute] = value
    data["schema"] = SCHEMA_VERSION
    return data


def from_sidecar(data: Mapping[str, Any], result_path: Callable[[str], Path]) -> Entry:
    """The :class:`Entry` a sidecar describes. Raises KeyError/TypeError/ValueError when
    the JSON is not a sidecar."""
    values = {c.attribute: data[c.attribute] for c in COLUMNS if c.attribute in data}
    for c in COLUMNS:
        if c.kind == "path":
            values[c.attribute] = result_path(str(values[c.attribute]))
        elif c.sequence and c.attribute in values:
            values[c.attribute] = tuple(str(v) for v in values[c.attribute])
    return Entry(**values)


def check_tags(tags: tuple[str, ...]) -> tuple[str, ...]:
    """``tags``, if each is a short, non-empty string without surrounding spaces."""
    for tag in tags:
        if not isinstance(tag, str) or not tag.strip() or tag != tag.strip() or len(tag) > 64:
            raise TagError(
                f"Tag {tag!r}: a tag is a non-empty string of at most 64 characters, "
                "without leading or trailing spaces (e.g. 'accepted')."
            )
    return tags
