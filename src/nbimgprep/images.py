"""ImageRef: one input image, its identity (SHA-256) and its upright pixels.

Hashing is streamed and never decodes: a cache hit on an unchanged file costs one
``stat()`` and a memo lookup, however large the file. Decoding happens only when pixels are
needed (a miss, a crop, a preview), and that is where bad input is caught and named.
"""

from __future__ import annotations

import hashlib
import io
import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from functools import singledispatch
from pathlib import Path
from typing import IO, Any, Protocol

from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import ImageError

__all__ = ["MAX_PIXELS", "HashMemo", "ImageRef", "FileStamp", "decode_image", "sha256_stream"]

#: Largest image, input or result, that nbimgprep decodes: 100 megapixels.
MAX_PIXELS = 100_000_000
CHUNK = 1 << 20
CROP_IDENTITY = b"nbimgprep-crop-v1"
# Formats a model endpoint accepts as they are; anything else is sent as PNG.
PASSTHROUGH_FORMATS = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}
PASSTHROUGH_MODES = {"RGB", "RGBA", "L", "LA", "P"}

Box = tuple[int, int, int, int]


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
        st = path.stat()
        return cls(
            str(path.resolve()), st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns, st.st_dev
        )


class HashMemo(Protocol):
    """Remembers file hashes by stamp; the store implements it persistently."""

    def get_hash(self, stamp: FileStamp) -> str | None: ...

    def put_hash(self, stamp: FileStamp, sha256: str) -> None: ...


def sha256_stream(stream: IO[bytes]) -> str:
    """SHA-256 of a binary stream, read in 1 MiB chunks (constant memory)."""
    digest = hashlib.sha256()
    for chunk in iter(lambda: stream.read(CHUNK), b""):
        digest.update(chunk)
    return digest.hexdigest()


def decode_image(data: bytes | Path, label: str, max_pixels: int = MAX_PIXELS) -> Image.Image:
    """Decode, check and turn upright: the one place bad pixels are caught.

    Rejects empty, non-image, truncated and oversized inputs with an :class:`ImageError`
    naming ``label``. Returns an image in RGB, RGBA, L or LA, EXIF orientation applied.
    """
    if isinstance(data, bytes) and not data:
        raise ImageError(f"{label}: the file is empty (0 bytes).")
    source: Any = io.BytesIO(data) if isinstance(data, bytes) else data
    try:
        with warnings.catch_warnings():
            # We enforce our own cap (max_pixels) below; Pillow's warning starts at 89 MP,
            # under the 100 MP a 4x upscale may legitimately produce.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(source)
            w, h = img.size
            if w * h > max_pixels:
                raise ImageError(
                    f"{label}: {w}x{h} is {w * h / 1e6:.0f} megapixels, more than the "
                    f"{max_pixels / 1e6:.0f} MP nbimgprep accepts (a decompression bomb, or a "
                    "photo to downscale first)."
                )
            img.load()
    except ImageError:
        raise
    except Image.DecompressionBombError as exc:
        raise ImageError(
            f"{label}: refused, larger than the {max_pixels / 1e6:.0f} megapixels nbimgprep "
            f"accepts; Pillow flags it as a possible decompression bomb ({exc})"
        ) from None
    except UnidentifiedImageError:
        raise ImageError(
            f"{label}: not an image Pillow can read (is it really a JPEG/PNG/WebP?)."
        ) from None
    except FileNotFoundError:
        raise ImageError(f"{label}: no such file.") from None
    except OSError as exc:
        raise ImageError(f"{label}: the image data is damaged or truncated ({exc}).") from None
    return normalize_mode(ImageOps.exif_transpose(img))


def normalize_mode(img: Image.Image) -> Image.Image:
    """CMYK, 16-bit, palette and other modes become RGB/RGBA/L/LA (palette alpha kept)."""
    if img.mode in ("RGB", "RGBA", "L", "LA"):
        return img
    if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        return img.point(lambda v: v / 256).convert("L") if img.mode != "F" else img.convert("L")
    if img.mode == "P":
        return img.convert("RGBA" if "transparency" in img.info else "RGB")
    if img.mode in ("PA", "RGBa", "La"):
        return img.convert("RGBA")
    return img.convert("RGB")


def encode_png(img: Image.Image) -> bytes:
    """PNG bytes of ``img``, no metadata: deterministic for the same pixels."""
    out = io.BytesIO()
    img.save(out, format="PNG", compress_level=6)
    return out.getvalue()


class ImageRef:
    """An input image: where it came from, its SHA-256, and its upright pixels on demand.

    ``ImageRef("photo.jpg")``, ``ImageRef(raw_bytes)``, ``ImageRef(pil_image)`` or
    ``ImageRef(open("photo.jpg", "rb"))``. Hashing streams the bytes and never decodes;
    with a ``memo`` (the store's), an unchanged file is hashed once, ever.
    """

    def __init__(
        self,
        source: str | os.PathLike[str] | bytes | Image.Image | IO[bytes] | ImageRef,
        *,
        memo: HashMemo | None = None,
        name: str | None = None,
    ) -> None:
        if isinstance(source, ImageRef):
            self.__dict__.update(source.__dict__)
            return
        self._path: Path | None = None
        self._data: bytes | None = None
        self._sha256: str | None = None
        self._image: Image.Image | None = None
        self._memo = memo
        self._render: Callable[[], Image.Image] | None = None
        _load_source(source, self)
        self.name: str = name or self.__dict__.get("name") or self._default_name()

    # -- identity -----------------------------------------------------------------------

    @property
    def sha256(self) -> str:
        """Hex SHA-256 of the encoded bytes (for a crop: of its parent and box)."""
        if self._sha256 is None:
            self._sha256 = self._compute_hash()
        return self._sha256

    @property
    def path(self) -> Path | None:
        """The file this image was read from, if any."""
        return self._path

    def _compute_hash(self) -> str:
        if self._path is None:
            return hashlib.sha256(self.data).hexdigest()
        try:
            stamp = FileStamp.of(self._path)
        except FileNotFoundError:
            raise ImageError(f"{self.name}: no such file.") from None
        except OSError as exc:
            raise ImageError(f"{self.name}: cannot read the file ({exc.strerror}).") from None
        if stamp.size == 0:
            raise ImageError(f"{self.name}: the file is empty (0 bytes).")
        if self._memo is not None:
            known = self._memo.get_hash(stamp)
            if known is not None:
                return known
        with self._path.open("rb") as f:
            digest = sha256_stream(f)
        if self._memo is not None:
            self._memo.put_hash(stamp, digest)
        return digest

    def _default_name(self) -> str:
        if self._path is not None:
            return str(self._path)
        return "image from memory"

    # -- bytes and pixels ---------------------------------------------------------------

    @property
    def data(self) -> bytes:
        """The encoded bytes (read from the file on first use)."""
        if self._data is None:
            if self._path is not None:
                try:
                    self._data = self._path.read_bytes()
                except FileNotFoundError:
                    raise ImageError(f"{self.name}: no such file.") from None
            else:
                assert self._render is not None
                self._data = encode_png(self.open())
        return self._data

    def open(self) -> Image.Image:
        """The upright, decoded image (RGB, RGBA, L or LA); checked once, then kept."""
        if self._image is None:
            if self._render is not None:
                self._image = self._render()
            elif self._path is not None and self._data is None:
                self._image = decode_image(self._path, self.name)
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
            try:
                with Image.open(io.BytesIO(self.data)) as probe:
                    fmt, mode = probe.format, probe.mode
                    orientation = probe.getexif().get(0x0112, 1)
            except (OSError, UnidentifiedImageError):
                fmt, mode, orientation = None, None, 1
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
        x, y, w, h = (int(v) for v in box)
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
        child = ImageRef.__new__(ImageRef)
        child._path = None
        child._data = None
        child._image = None
        child._memo = None
        child._render = lambda: parent.open().crop((x, y, x + w, y + h))
        child._sha256 = hashlib.sha256(
            b"\0".join([CROP_IDENTITY, parent.sha256.encode(), f"{x},{y},{w},{h}".encode()])
        ).hexdigest()
        child.name = f"{self.name} cropped to {(x, y, w, h)}"
        return child

    def __repr__(self) -> str:
        short = self._sha256[:12] if self._sha256 else "not hashed yet"
        return f"<ImageRef {self.name!r} sha256={short}>"


@singledispatch
def _load_source(source: object, ref: ImageRef) -> None:
    raise ImageError(
        f"Cannot use a {type(source).__name__} as an image: pass a path, bytes, a PIL image "
        "or a binary file object."
    )


@_load_source.register(str)
@_load_source.register(os.PathLike)
def _(source: str | os.PathLike[str], ref: ImageRef) -> None:
    path = Path(source).expanduser()
    if path.is_dir():
        raise ImageError(f"{path}: is a folder, not an image file.")
    ref._path = path


@_load_source.register(bytes)
@_load_source.register(bytearray)
@_load_source.register(memoryview)
def _(source: bytes, ref: ImageRef) -> None:
    ref._data = bytes(source)
    if not ref._data:
        raise ImageError("image from memory: the bytes are empty.")


@_load_source.register(Image.Image)
def _(source: Image.Image, ref: ImageRef) -> None:
    ref._image = normalize_mode(source.copy())
    ref._data = encode_png(ref._image)


@_load_source.register(io.IOBase)
def _(source: IO[bytes], ref: ImageRef) -> None:
    data = source.read()
    if isinstance(data, str):
        raise ImageError("A text file object was given: open the image with open(path, 'rb').")
    ref._data = data
    if not data:
        label = getattr(source, "name", "file object")
        raise ImageError(f"{label}: the file is empty (0 bytes).")
    name = getattr(source, "name", None)
    if isinstance(name, str):
        ref.name = name
