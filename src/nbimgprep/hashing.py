"""Hashing an input without decoding it: a file's stamp (what identifies it unchanged without
reading it), the memo protocol that remembers hashes by stamp, and streamed SHA-256."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Protocol

__all__ = ["CHUNK", "FileStamp", "HashMemo", "sha256_keeping", "sha256_stream"]

#: Streamed hashing reads this much at a time (constant memory, whatever the file's size).
CHUNK = 1 << 20


@dataclass(frozen=True)
class FileStamp:
    """What identifies an unchanged file without reading it.

    (path, size, mtime_ns, inode) as the original memo had, plus what a user cannot set
    back: the inode change time ``ctime_ns`` (``touch -m``, ``cp -p`` and ``rsync -t`` can
    restore an mtime, but any write moves the ctime, as git's index relies on) and the
    device, so a file on another disk with the same inode number is another file.
    """

    path: str
    size: int
    mtime_ns: int
    inode: int
    ctime_ns: int
    device: int

    @classmethod
    def of(cls, path: Path) -> FileStamp:
        st = path.stat()  # a missing file or a symlink loop raises here
        # os.path.realpath, not Path.resolve: the same string without a second stat().
        return cls(
            os.path.realpath(path), st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns, st.st_dev
        )


class HashMemo(Protocol):
    """Remembers file hashes by stamp; the store implements it persistently."""

    def get_hash(self, stamp: FileStamp) -> str | None: ...

    def put_hash(self, stamp: FileStamp, sha256: str) -> None: ...


def sha256_stream(stream: IO[bytes]) -> str:
    """SHA-256 of a binary stream, read in 1 MiB chunks (constant memory)."""
    digest = hashlib.sha256()
    _feed(digest, stream)
    return digest.hexdigest()


def _feed(digest: hashlib._Hash, stream: IO[bytes]) -> None:
    for chunk in iter(lambda: stream.read(CHUNK), b""):
        digest.update(chunk)


def sha256_keeping(stream: IO[bytes], size: int, keep_up_to: int) -> tuple[str, bytes | None]:
    """SHA-256 of a file ``stat()`` found ``size`` bytes long, and its bytes if it holds at
    most ``keep_up_to`` (read in one go; else streamed, and nothing kept)."""
    if size > keep_up_to:
        return sha256_stream(stream), None
    data = stream.read(size + 1)
    digest = hashlib.sha256(data)
    if len(data) <= size:
        return digest.hexdigest(), data or None
    _feed(digest, stream)  # it grew since the stat: hash the rest, keep nothing
    return digest.hexdigest(), None
