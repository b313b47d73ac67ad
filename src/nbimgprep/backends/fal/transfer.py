"""Moving bytes to and from fal.ai: the input going up, the result coming down.

* **Up.** An input up to ``data_uri_limit`` bytes travels inside the request as a data URI
  (no extra round trip); a larger one is uploaded to fal storage through fal_client's public
  ``upload`` (CDN token, fallback to fal storage), under a neutral name so no local file name
  leaves the machine.
* **Down.** fal keeps result files "at least 7 days", so the result is downloaded at once and
  the engine caches bytes. The download is ours, on our own httpx client that carries **no key**
  (the CDN is not fal's API): streamed, capped at ``max_bytes`` (by Content-Length and while
  reading), content-type checked, retried up to :data:`DOWNLOAD_ATTEMPTS` times on dropped
  connections, 408/425/429/5xx (honouring Retry-After up to 5 s); never on 404/410, an
  expired URL.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
from typing import TYPE_CHECKING

import httpx

from ...errors import BackendError, InvalidResult
from .failures import Call, logger, retry_after, short, step

if TYPE_CHECKING:
    from fal_client import AsyncClient

    from ...images import ImageRef

__all__ = ["DOWNLOAD_ATTEMPTS", "download", "input_url"]

DOWNLOAD_ATTEMPTS = 3
DOWNLOAD_BACKOFF = 0.2
_RETRY_DOWNLOAD = frozenset({408, 425, 429, 500, 502, 503, 504})
_GONE = frozenset({404, 410})
_BINARY_TYPES = frozenset({"application/octet-stream", "binary/octet-stream"})


async def input_url(client: AsyncClient, image: ImageRef, data_uri_limit: int, call: Call) -> str:
    """A data URI for a small image; a fal storage URL (uploaded now) for a large one."""
    data, content_type = image.upload_bytes()
    if len(data) <= data_uri_limit:
        return f"data:{content_type};base64,{base64.b64encode(data).decode()}"
    ext = content_type.rsplit("/", 1)[-1]
    upload = client.upload(data, content_type, file_name=f"input.{ext}")
    url = await step("uploading the image", upload, call)
    logger.debug("%s: uploaded %d bytes", call.where(), len(data))
    return url


async def download(
    http: httpx.AsyncClient, url: str, max_bytes: int, call: Call
) -> tuple[bytes, str | None]:
    """The result bytes: streamed, capped, retried on transient failures, never on 404."""
    if url.startswith("data:"):
        return _decode_data_uri(url, call)
    problem = ""
    for attempt in range(1, DOWNLOAD_ATTEMPTS + 1):
        wait = DOWNLOAD_BACKOFF * 2 ** (attempt - 1)
        try:
            async with http.stream("GET", url) as response:
                status = response.status_code
                if status in _GONE:
                    raise InvalidResult(
                        f"The result of {call.where()} is gone from {url} (HTTP {status}): "
                        "fal keeps result files for a limited time. Nothing was cached; "
                        "run the operation again."
                    )
                if status in _RETRY_DOWNLOAD:
                    problem = f"HTTP {status}"
                    wait = max(wait, min(retry_after(response.headers) or 0.0, 5.0))
                elif status >= 400:
                    raise InvalidResult(
                        f"Downloading the result of {call.where()} failed with HTTP "
                        f"{status} at {url}. Nothing was cached; run it again."
                    )
                else:
                    return await _read_capped(response, url, max_bytes, call)
        except httpx.TransportError as exc:
            problem = f"{type(exc).__name__}: {short(str(exc))}"
        logger.debug("%s: download attempt %d failed (%s)", call.where(), attempt, problem)
        if attempt < DOWNLOAD_ATTEMPTS:
            await asyncio.sleep(wait)
    raise BackendError(
        f"Could not download the result of {call.where()} from {url} after "
        f"{DOWNLOAD_ATTEMPTS} attempts ({problem}). Nothing was cached; try again."
    )


async def _read_capped(
    response: httpx.Response, url: str, cap: int, call: Call
) -> tuple[bytes, str | None]:
    too_big = InvalidResult(
        f"The result of {call.where()} at {url} is larger than {cap / 1e6:.0f} MB; "
        "refused (raise FalBackend(max_result_bytes=...) if that is expected)."
    )
    content_type = response.headers.get("content-type")
    _check_content_type(content_type, url, call)
    declared = response.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > cap:
        raise too_big
    buffer = bytearray()
    async for chunk in response.aiter_bytes():
        buffer += chunk
        if len(buffer) > cap:
            raise too_big
    return bytes(buffer), content_type


def _decode_data_uri(url: str, call: Call) -> tuple[bytes, str | None]:
    header, _, payload = url.partition(",")
    content_type = header[5:].split(";", 1)[0] or None
    try:
        return base64.b64decode(payload, validate=True), content_type
    except (binascii.Error, ValueError):
        raise InvalidResult(f"{call.where()} answered a data URI that is not base64.") from None


def _check_content_type(content_type: str | None, url: str, call: Call) -> None:
    if content_type is None:
        return
    mime = content_type.split(";", 1)[0].strip().lower()
    if not mime.startswith("image/") and mime not in _BINARY_TYPES:
        raise InvalidResult(
            f"The result of {call.where()} at {url} is {mime}, not an image. Nothing was cached."
        )
