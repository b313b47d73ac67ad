"""ImageRef: one input image, its identity (SHA-256) and its upright pixels.

Hashing is streamed and never decodes: a cache hit on an unchanged file costs one
``stat()`` and a memo lookup, however large the file. Decoding happens only when pixels are
needed (a miss, a crop, a preview), and that is where bad input is caught and named.

The bytes processed are the bytes hashed: when a file's bytes are read to be decoded or
sent, they are hashed again and must match the hash the cache key was made from. A file
that changed in between is refused (nothing is processed or stored under the old hash).
A call that goes on to process the image on a miss hashes it with
:meth:`ImageRef.sha256_for_processing`, which keeps the bytes it read (for a file of at most
:data:`READ_ONCE_BYTES`): those very bytes are then decoded and sent, so a miss reads its
input once, and a ``stat()`` stands in for the second read and hash.
"""

from __future__ import annotations

import hashlib
import io
import math
import numbers
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import singledispatch
from pathlib import Path
from typing import IO, cast

from PIL import Image

from .errors import ImageError
from .hashing import FileStamp, HashMemo, sha256_keeping, sha256_stream
from .pixels import (
    MAX_PIXELS,
    check_size,
    content_type_of,
    decode_image,
    encode_png,
    normalize_mode,
    pillow_quiet,
    probe,
)

__all__ = [
    "MAX_PIXELS",
    "READ_ONCE_BYTES",
    "FileStamp",
    "HashMemo",
    "ImageRef",
    "content_type_of",
    "decode_image",
    "encode_png",
    "sha256_stream",
]

#: The largest file whose bytes are kept from hashing to processing (64 MiB): bigger ones are
#: hashed streaming (constant memory) and read again, and re-hashed, when they are processed.
READ_ONCE_BYTES = 64 << 20
CROP_IDENTITY = b"nbimgprep-crop-v1"
# Formats a model endpoint accepts as they are; anything else is sent as PNG.
PASSTHROUGH_FORMATS = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}
PASSTHROUGH_MODES = {"RGB", "RGBA", "L", "LA", "P"}
# What stat(), resolve() and open() raise for paths that cannot be read, besides OSError:
# ValueError (an embedded NUL byte), RuntimeError (a symlink loop on some Pythons).
PATH_ERRORS = (OSError, ValueError, RuntimeError)

Box = tuple[int, int, int, int]


@dataclass(frozen=True, eq=False)
class _Origin:
    """Everything an :class:`ImageRef` is made from: where its pixels come from (a file, encoded
    bytes, or a function that renders them) and what is already known about them."""

    name: str
    path: Path | None = None
    data: bytes | None = None
    image: Image.Image | None = None
    render: Callable[[], Image.Image] | None = None
    sha256: str | None = None
    memo: HashMemo | None = None


class ImageRef:
    """An input image: where it came from, its SHA-256, and its upright pixels on demand.

    ``ImageRef("photo.jpg")``, ``ImageRef(raw_bytes)``, ``ImageRef(pil_image)`` or
    ``ImageRef(open("photo.jpg", "rb"))``. Hashing streams the bytes and never decodes;
    with a ``memo`` (the store's), an unchanged file is hashed once, ever.
    """

    def __init__(
        self,
        source: str | os.PathLike[str] | bytes | Image.Image | IO[bytes] | ImageRef | _Origin,
        *,
        memo: HashMemo | None = None,
        name: str | None = None,
    ) -> None:
        # The one constructor: every loader, and crop, describes the image as an _Origin
        # (private: users pass one of the sources above).
        origin = _origin_of(source)
        self._path = origin.path
        self._data = origin.data
        self._image = origin.image
        self._render = origin.render
        self._sha256 = origin.sha256
        self._memo = memo if memo is not None else origin.memo
        # The bytes read when the file was hashed, and its stamp before that read: what
        # ``data`` serves while the file still has that stamp (never copied to another ref).
        self._hashed_bytes: tuple[bytes, FileStamp] | None = None
        self.name: str = name or origin.name

    # -- identity -----------------------------------------------------------------------

    @property
    def sha256(self) -> str:
        """Hex SHA-256 of the encoded bytes (for a crop: of its parent and box)."""
        if self._sha256 is None:
            if self._path is None:
                self._sha256 = hashlib.sha256(self.data).hexdigest()
            else:
                self._sha256 = self._hash_file(self._path)
        return self._sha256

    def sha256_for_processing(self, keep_up_to: int | None = None) -> str:
        """:attr:`sha256`, for a caller that decodes or sends the image next on a miss.

        When the file must be read to be hashed (the memo does not know it) and holds at
        most ``keep_up_to`` bytes (default :data:`READ_ONCE_BYTES`), the bytes read are
        kept, and :attr:`data` serves those very bytes while the file keeps the stamp it had
        before they were read (one ``stat()``); a file changed since is read again and
        compared, as always. A miss then reads its input once; a hit drops the bytes with
        the ref. Plain :attr:`sha256` keeps nothing (a batch hashes thousands of inputs).
        """
        if self._sha256 is None and self._path is not None:
            limit = READ_ONCE_BYTES if keep_up_to is None else keep_up_to
            self._sha256 = self._hash_file(self._path, limit)
        return self.sha256

    @property
    def path(self) -> Path | None:
        """The file this image was read from, if any."""
        return self._path

    def _hash_file(self, path: Path, keep_up_to: int = 0) -> str:
        """The memo's answer for an unchanged file (one stat, no read), else the hash of one
        read of it (whose bytes are kept if the file holds at most ``keep_up_to``)."""
        stamp = self._stamp(path)
        if stamp.size == 0:
            raise ImageError(f"{self.name}: the file is empty (0 bytes).")
        if self._memo is not None:
            known = self._memo.get_hash(stamp)
            if known is not None:
                return known
        try:
            with path.open("rb") as f:
                digest, data = sha256_keeping(f, stamp.size, keep_up_to)
        except PATH_ERRORS as exc:
            raise self._unreadable(exc) from None
        self._remember(path, stamp, digest)
        if data is not None:
            self._hashed_bytes = (data, stamp)
        return digest

    def _stamp(self, path: Path) -> FileStamp:
        try:
            return FileStamp.of(path)
        except PATH_ERRORS as exc:
            raise self._unreadable(exc) from None

    def _remember(self, path: Path, stamp: FileStamp, digest: str) -> None:
        """Memo ``digest`` for ``stamp`` only if the file did not change while it was read."""
        if self._memo is not None and self._stamp(path) == stamp:
            self._memo.put_hash(stamp, digest)

    def _unreadable(self, exc: BaseException) -> ImageError:
        if isinstance(exc, FileNotFoundError):
            return ImageError(f"{self.name}: no such file.")
        if isinstance(exc, IsADirectoryError):
            return ImageError(f"{self.name}: is a folder, not an image file.")
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        return ImageError(f"{self.name}: cannot read the file ({reason}).")

    def _default_name(self) -> str:
        if self._path is not None:
            return str(self._path)
        return "image from memory"

    # -- bytes and pixels ---------------------------------------------------------------

    @property
    def data(self) -> bytes:
        """The encoded bytes (read from the file once, on first use, and checked against
        :attr:`sha256`)."""
        if self._data is None:
            if self._path is not None:
                self._data = self._bytes_hashed(self._path) or self._read_file(self._path)
            else:
                self._data = encode_png(self.open())
        return self._data

    def _bytes_hashed(self, path: Path) -> bytes | None:
        """The bytes read when the file was hashed, if it has the stamp it had before that
        read (so it did not change while or since it was read); None otherwise."""
        kept, self._hashed_bytes = self._hashed_bytes, None
        if kept is None:
            return None
        data, stamp = kept
        return data if self._stamp(path) == stamp else None

    def _read_file(self, path: Path) -> bytes:
        """The file's bytes, whose hash must be the one already given out, if any."""
        stamp = self._stamp(path)
        try:
            data = path.read_bytes()
        except PATH_ERRORS as exc:
            raise self._unreadable(exc) from None
        if not data:
            raise ImageError(f"{self.name}: the file is empty (0 bytes).")
        digest = hashlib.sha256(data).hexdigest()
        # Remembered whether or not it matches: a file hashed too soon after it was written
        # for the memo to trust (a batch hashes its inputs first) has settled by now, so the
        # next look at it (the rerun) is a stat, not another read; one that changed is seen
        # as it is now.
        self._remember(path, stamp, digest)
        if self._sha256 is not None and digest != self._sha256:
            raise ImageError(
                f"{self.name}: the file changed after its SHA-256 was taken (the cache key "
                f"was made from {self._sha256[:12]}, the file now hashes to {digest[:12]}); "
                "nothing was processed or cached. Run again to process the file as it is now."
            )
        if self._sha256 is None:
            self._sha256 = digest
        return data

    def open(self) -> Image.Image:
        """The upright, decoded image (RGB, RGBA, L or LA); checked once, then kept."""
        if self._image is None:
            if self._render is not None:
                self._image = self._render()
            else:
                self._image = decode_image(self.data, self.name)
        return self._image

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) after EXIF orientation."""
        return self.open().size

    def upload_bytes(self) -> tuple[bytes, str]:
        """Bytes and content type to send to a model: the file itself where a model reads it
        as we see it, an upright PNG otherwise (EXIF-rotated, CMYK, 16-bit, other formats)."""
        if self._render is None:
            fmt, mode, orientation = probe(self.data)
            if fmt in PASSTHROUGH_FORMATS and mode in PASSTHROUGH_MODES and orientation == 1:
                self.open()  # validate before anything leaves the machine
                return self.data, PASSTHROUGH_FORMATS[fmt]
        return encode_png(self.open()), "image/png"

    # -- derived images -----------------------------------------------------------------

    def crop(self, box: Box) -> ImageRef:
        """A new image: the ``(x, y, w, h)`` region in upright, full-size pixels.

        Its identity is derived from this image's hash and the box, so cropping the same
        region again is a cache hit, and a crop never shares a hash with its parent.
        """
        x, y, w, h = self._whole_box(box)
        width, height = self.size
        if w <= 0 or h <= 0:
            raise ImageError(
                f"{self.name}: crop box {box} is empty (width and height must be > 0)."
            )
        if x < 0 or y < 0 or x + w > width or y + h > height:
            raise ImageError(
                f"{self.name}: crop box {box} is not inside the {width}x{height} image."
            )
        parent = self

        def render() -> Image.Image:
            with pillow_quiet():
                return parent.open().crop((x, y, x + w, y + h))

        identity = b"\0".join([CROP_IDENTITY, self.sha256.encode(), f"{x},{y},{w},{h}".encode()])
        return ImageRef(
            _Origin(
                name=f"{self.name} cropped to {(x, y, w, h)}",
                render=render,
                sha256=hashlib.sha256(identity).hexdigest(),
            )
        )

    def _whole_box(self, box: object) -> Box:
        """``box`` as four ints, or an ImageError saying what a crop box is."""
        wrong = ImageError(
            f"{self.name}: crop box {box!r} is not four whole numbers (x, y, width, height) "
            "in pixels of the upright image, e.g. ref.crop((0, 0, 100, 100))."
        )
        try:
            values = tuple(cast(Iterable[object], box))
        except TypeError:
            raise wrong from None
        if len(values) != 4:
            raise wrong
        whole: list[int] = []
        for value in values:
            if isinstance(value, bool) or not isinstance(value, numbers.Real):
                raise wrong
            if isinstance(value, numbers.Integral):
                whole.append(int(value))
                continue
            number = float(value)
            if not math.isfinite(number) or not number.is_integer():
                raise wrong
            whole.append(int(number))
        return whole[0], whole[1], whole[2], whole[3]

    def _as_origin(self) -> _Origin:
        return _Origin(
            name=self.name,
            path=self._path,
            data=self._data,
            image=self._image,
            render=self._render,
            sha256=self._sha256,
            memo=self._memo,
        )

    def __repr__(self) -> str:
        short = self._sha256[:12] if self._sha256 else "not hashed yet"
        return f"<ImageRef {self.name!r} sha256={short}>"


# -- loaders: one per kind of source, each describing the image as an _Origin ---------------


@singledispatch
def _origin_of(source: object) -> _Origin:
    raise ImageError(
        f"Cannot use a {type(source).__name__} as an image: pass a path, bytes, a PIL image "
        "or a binary file object."
    )


@_origin_of.register
def _(source: _Origin) -> _Origin:
    return source


@_origin_of.register
def _(source: ImageRef) -> _Origin:
    return source._as_origin()


@_origin_of.register(str)
@_origin_of.register(os.PathLike)
def _(source: str | os.PathLike[str]) -> _Origin:
    try:
        path = Path(source).expanduser()
        is_dir = path.is_dir()
    except PATH_ERRORS as exc:
        raise ImageError(f"{source!r}: not a usable path ({exc}).") from None
    except TypeError:  # an os.PathLike whose __fspath__ gives bytes
        raise ImageError(f"{source!r}: pass the path as a str or pathlib.Path.") from None
    if is_dir:
        raise ImageError(f"{path}: is a folder, not an image file.")
    return _Origin(name=str(path), path=path)


@_origin_of.register(bytes)
@_origin_of.register(bytearray)
@_origin_of.register(memoryview)
def _(source: bytes | bytearray | memoryview) -> _Origin:
    data = bytes(source)
    if not data:
        raise ImageError("image from memory: the bytes are empty.")
    return _Origin(name="image from memory", data=data)


@_origin_of.register
def _(source: Image.Image) -> _Origin:
    label = "PIL image"
    check_size(source.size, label)
    try:
        image = normalize_mode(source.copy(), label)
    except ImageError:
        raise
    except Exception as exc:  # a lazily opened image whose file is closed or damaged
        raise ImageError(f"{label}: its pixels cannot be read ({exc}).") from None
    return _Origin(name="image from memory", data=encode_png(image), image=image)


@_origin_of.register(io.IOBase)
def _(source: IO[bytes]) -> _Origin:
    label = getattr(source, "name", None)
    label = label if isinstance(label, str) else "file object"
    try:
        data = source.read()
    except (OSError, ValueError) as exc:  # closed, not readable, ...
        raise ImageError(f"{label}: cannot read the file object ({exc}).") from None
    if isinstance(data, str):
        raise ImageError("A text file object was given: open the image with open(path, 'rb').")
    if not data:
        raise ImageError(f"{label}: the file is empty (0 bytes).")
    name = label if label != "file object" else "image from memory"
    return _Origin(name=name, data=bytes(data))
