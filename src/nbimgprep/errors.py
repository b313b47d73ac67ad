"""Every error nbimgprep raises, rooted at :class:`NbimgprepError`.

The tree::

    NbimgprepError
    ├── ImageError            the input is not an image we can process (names the input)
    ├── OperationError        unknown operation or bad parameter
    ├── StoreError            the cache store cannot be read or written
    │   └── StoreNotFound     a read-only command pointed at a folder that holds no store
    ├── NotInCache            a key, hash prefix or path matches no cache entry
    ├── AmbiguousPrefix       a prefix matches several keys or images
    ├── ProcessingCancelled   the call was cancelled (widget Cancel, task cancel)
    ├── BudgetExceeded        a batch item past ``max_fresh``: not run, nothing paid
    ├── SaveError             an image cannot be saved there (suffix, folder)
    ├── SharedTierError       the shared (S3-compatible) tier is misconfigured
    └── BackendError          the backend failed to produce a result
        ├── FalKeyMissing     FAL_KEY is not set
        ├── FalKeyRejected    fal.ai answered 401/403
        ├── FalTimeout        the request did not finish within the timeout
        ├── RateLimited       the API kept answering 429 (too many requests) past its retries
        └── InvalidResult     the backend answered, but not with a usable image

Messages say what is wrong and what to do next. None of them ever contains FAL_KEY.
"""

from __future__ import annotations

__all__ = [
    "AmbiguousPrefix",
    "BackendError",
    "BudgetExceeded",
    "FalKeyMissing",
    "FalKeyRejected",
    "FalTimeout",
    "ImageError",
    "InvalidResult",
    "NbimgprepError",
    "NotInCache",
    "OperationError",
    "ProcessingCancelled",
    "RateLimited",
    "SaveError",
    "SharedTierError",
    "StoreError",
    "StoreNotFound",
    "TagError",
]


class NbimgprepError(Exception):
    """Base class of every error raised by nbimgprep."""


class ImageError(NbimgprepError, ValueError):
    """An input that cannot be processed: not an image, truncated, empty, too large."""


class OperationError(NbimgprepError, ValueError):
    """An unknown operation name or an invalid parameter value."""


class StoreError(NbimgprepError, OSError):
    """The result store could not be read or written."""


class NotInCache(NbimgprepError, LookupError):
    """A key, image-hash prefix or image path that matches nothing in the cache."""


class AmbiguousPrefix(NbimgprepError, LookupError):
    """A prefix that matches several keys or images: a longer prefix is needed."""

    def __init__(self, prefix: str, matches: list[str]) -> None:
        self.prefix = prefix
        self.matches = matches
        shown = ", ".join(m[:16] for m in matches[:5])
        more = f" and {len(matches) - 5} more" if len(matches) > 5 else ""
        super().__init__(
            f"{prefix!r} matches {len(matches)} entries ({shown}{more}); type more characters."
        )


class ProcessingCancelled(NbimgprepError):
    """The operation was cancelled before it finished; nothing was cached."""


class BackendError(NbimgprepError):
    """The backend could not produce a result; nothing was cached."""


class FalKeyMissing(BackendError):
    """FAL_KEY is not set, so the fal.ai backend cannot be used."""

    def __init__(self, message: str | None = None) -> None:
        super().__init__(
            message
            or "FAL_KEY is not set. Get a key at https://fal.ai/dashboard/keys, then "
            "set it before starting the kernel (export FAL_KEY=...) or in a cell: "
            'os.environ["FAL_KEY"] = "...". '
            'To work offline instead, use Processor(backend="local").'
        )


class FalKeyRejected(BackendError):
    """fal.ai refused the key (401/403)."""


class FalTimeout(BackendError, TimeoutError):
    """The fal.ai request did not complete within the configured timeout."""


class InvalidResult(BackendError):
    """The backend returned something that is not a usable image."""


class RateLimited(BackendError):
    """The API kept answering 429 past the client's own retries.

    ``retry_after`` is the server's Retry-After in seconds, when it sent one. A batch treats
    this as "slow down", not as a failed item: it lowers its concurrency and tries again.
    """

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class BudgetExceeded(NbimgprepError):
    """A batch item that would have been a fresh (paid) call past ``max_fresh``.

    Nothing was sent for it; run the batch again with a larger ``max_fresh`` to process it.
    """


class SaveError(NbimgprepError, ValueError):
    """An image could not be saved where asked: an unknown format suffix, a missing folder,
    a folder that cannot be written. Nothing was written."""


class SharedTierError(NbimgprepError, ValueError):
    """The shared tier's settings are unusable: a URL that is not ``s3://bucket/prefix``,
    credentials in the URL, or s3fs not installed.

    An unreachable, denied or slow shared tier is not an error: the call goes on from the local
    store or the backend, with one warning.
    """


class StoreNotFound(StoreError):
    """A command that only reads (``list``, ``stats``, ``verify``, ...) was pointed at a folder
    that holds no store: nothing was created there. Check the cache directory setting."""


class TagError(NbimgprepError, ValueError):
    """A tag given to ``ResultStore.tag``/``untag`` is not a short, non-empty string."""


class ExportConflict(NbimgprepError, FileExistsError):
    """A review's export would overwrite a file (or give two results one name). Nothing was
    written: pass ``overwrite=True``, or export to another folder."""
