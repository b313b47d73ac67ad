"""What the shared tier holds: one small JSON record per cache key, pointing to a blob.

A record says what the result answers (the same fields as a local :class:`~nbimgprep.store.Entry`,
so a shared hit becomes a local entry without guessing) and which blob holds its bytes, by the
blob's own SHA-256. Machine-local facts stay out: the input's path, hit counts, fal request ids
and result URLs. Nothing secret is ever written. A record read back is checked field by field;
one that does not parse, or names another key, is no record at all (a miss).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..store import Entry

__all__ = ["FORMAT", "RECORD_MAX_BYTES", "SharedRecord", "is_digest"]

FORMAT = "nbimgprep-shared/1"
RECORD_MAX_BYTES = 64 * 1024
_HEX64 = re.compile(r"[0-9a-f]{64}")


def is_digest(text: object) -> bool:
    """True for a lowercase hex SHA-256: the only shape a key or blob name may have (so a
    hostile record can never point a path outside the tier)."""
    return isinstance(text, str) and _HEX64.fullmatch(text) is not None


@dataclass(frozen=True)
class SharedRecord:
    """The shared tier's entry for one cache key."""

    key: str
    blob: str
    size: int
    image_hash: str
    operation: str
    endpoint: str
    endpoint_arguments: dict[str, Any] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    backend: str = ""
    width: int = 0
    height: int = 0
    content_type: str | None = None
    created: float = 0.0
    backend_seconds: float = 0.0

    def to_entry(self, path: Path, created: float | None = None) -> Entry:
        """This record as a local :class:`Entry` whose result bytes are at ``path``."""
        return Entry(
            key=self.key,
            image_hash=self.image_hash,
            operation=self.operation,
            endpoint=self.endpoint,
            endpoint_arguments=dict(self.endpoint_arguments),
            params=dict(self.params),
            backend=self.backend,
            path=path,
            result_sha256=self.blob,
            size=self.size,
            width=self.width,
            height=self.height,
            content_type=self.content_type,
            created=self.created if created is None else created,
            backend_seconds=self.backend_seconds,
        )

    @classmethod
    def from_entry(cls, entry: Any) -> SharedRecord:
        """The record for a local store entry (anything with the Entry's fields)."""
        return cls(
            key=entry.key,
            blob=entry.result_sha256,
            size=entry.size,
            image_hash=entry.image_hash,
            operation=entry.operation,
            endpoint=entry.endpoint,
            endpoint_arguments=dict(entry.endpoint_arguments),
            params=dict(entry.params),
            backend=entry.backend,
            width=entry.width,
            height=entry.height,
            content_type=entry.content_type,
            created=entry.created,
            backend_seconds=entry.backend_seconds,
        )

    def to_json(self) -> bytes:
        return json.dumps({"format": FORMAT, **asdict(self)}, sort_keys=True).encode()

    @classmethod
    def from_json(cls, raw: bytes, key: str) -> SharedRecord:
        """Parse and check a record read back for ``key``; ``ValueError`` says what is wrong."""
        if len(raw) > RECORD_MAX_BYTES:
            raise ValueError(f"record is {len(raw)} bytes, more than {RECORD_MAX_BYTES}")
        data = json.loads(raw)
        if not isinstance(data, Mapping) or data.get("format") != FORMAT:
            raise ValueError(f"not a {FORMAT} record")
        if data.get("key") != key:
            raise ValueError("record names another key")
        if not is_digest(data.get("blob")) or not is_digest(data.get("image_hash")):
            raise ValueError("blob or image_hash is not a SHA-256")
        for name in ("size", "width", "height"):
            if type(data.get(name)) is not int or data[name] < 0:
                raise ValueError(f"{name} is not a count")
        for name in ("created", "backend_seconds"):
            if not isinstance(data.get(name), int | float) or not math.isfinite(data[name]):
                raise ValueError(f"{name} is not a number")
        for name in ("operation", "endpoint", "backend"):
            if not isinstance(data.get(name), str):
                raise ValueError(f"{name} is not text")
        for name in ("endpoint_arguments", "params"):
            if not isinstance(data.get(name), Mapping):
                raise ValueError(f"{name} is not an object")
        if data.get("content_type") is not None and not isinstance(data["content_type"], str):
            raise ValueError("content_type is not text")
        fields = {name: data[name] for name in cls.__dataclass_fields__}
        return cls(**fields)
