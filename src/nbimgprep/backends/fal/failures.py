"""What went wrong on fal.ai, in words a user can act on.

Every fal_client or httpx failure of a call passes through :func:`step`, which turns it into
one of our :class:`~nbimgprep.errors.BackendError` subclasses. Two rules hold here:

* **The key never leaves in an error.** The translated error is raised outside the ``except``
  block, so it carries no ``__context__``: httpx exceptions hold the request, and the request
  holds the Authorization header. Any text that still contains the key is masked.
* **A 429 past fal_client's retries is RateLimited**, with the server's Retry-After (seconds)
  when it sent one, so a batch can slow down instead of failing the item.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar

import httpx

from ...errors import BackendError, FalKeyRejected, InvalidResult, NbimgprepError, RateLimited

__all__ = ["Call", "short", "step", "translate"]

logger = logging.getLogger("nbimgprep.backends.fal")

T = TypeVar("T")


@dataclass
class Call:
    """One call in flight: what errors name, and what the outer frame must undo on failure."""

    endpoint: str
    key: str = field(repr=False)
    request_id: str | None = None
    status_calls: int = 0  # status GETs we made (a stream counts once)
    live: bool = False  # submitted and not yet completed: cancel it on failure
    cancelled: bool = False  # we asked the server to cancel it

    def where(self) -> str:
        rid = f" request {self.request_id}" if self.request_id else ""
        return f"fal.ai {self.endpoint}{rid}"


async def step(stage: str, awaitable: Awaitable[T], call: Call) -> T:
    """Await one fal_client (or our own httpx) call; translate its failures into our errors."""
    import fal_client

    failure: BackendError
    try:
        return await awaitable
    except NbimgprepError:
        raise
    except (fal_client.FalClientError, httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
        failure = translate(exc, stage, call)
    raise failure


def short(text: Any, limit: int = 300) -> str:
    """``text`` on one line, at most ``limit`` characters."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def retry_after(headers: Mapping[str, str]) -> float | None:
    """The Retry-After header in seconds (a number or an HTTP date), or None."""
    value = next((v for k, v in headers.items() if k.lower() == "retry-after"), None)
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        from datetime import datetime, timezone

        when = parsedate_to_datetime(value)
        return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())
    except (TypeError, ValueError):
        return None


def _http_status(exc: BaseException) -> tuple[int | None, Any, Mapping[str, str]]:
    """The status code, the ``detail`` and the headers of a fal_client or httpx HTTP error."""
    import fal_client

    if isinstance(exc, fal_client.FalClientHTTPError):
        return exc.status_code, exc.message, exc.response_headers
    if isinstance(exc, httpx.HTTPStatusError):
        try:
            body = exc.response.json()
        except ValueError:
            body = exc.response.text
        detail = body.get("detail", body) if isinstance(body, dict) else body
        return exc.response.status_code, detail, exc.response.headers
    return None, None, {}


def _fields(detail: Any) -> str:
    """'upscale_factor: must be ...; checkpoint: ...' from a FastAPI-style 422 detail."""
    if isinstance(detail, list):
        parts = []
        for item in detail:
            if isinstance(item, Mapping):
                loc = [str(p) for p in item.get("loc", ()) if p != "body"]
                parts.append(f"{'.'.join(loc) or '?'}: {item.get('msg', '')}")
            else:
                parts.append(str(item))
        if parts:
            return "; ".join(parts)
    return short(detail)


def translate(exc: BaseException, stage: str, call: Call) -> BackendError:
    """One of our errors for a fal_client/httpx failure; the key is never in the text."""
    where = call.where()
    status, detail, headers = _http_status(exc)
    error: BackendError
    if status in (401, 403):
        error = FalKeyRejected(
            f"FAL_KEY rejected by fal.ai (HTTP {status}) while {stage}. Check the key at "
            "https://fal.ai/dashboard/keys (and the account's balance), set FAL_KEY to a valid "
            "key, and run again."
        )
    elif status == 422:
        error = BackendError(
            f"{where} refused the arguments (HTTP 422) while {stage}: {_fields(detail)}. "
            "Check the endpoint and its arguments given in Processor(endpoints=...)."
        )
    elif status == 404 and stage == "submitting":
        error = BackendError(
            f"fal.ai has no endpoint {call.endpoint!r} (HTTP 404): {short(detail)}. Check the "
            "endpoint id given in Processor(endpoints=...)."
        )
    elif status == 429:
        wait = retry_after(headers)
        hint = f" (it asked to wait {wait:g} s)" if wait is not None else ""
        error = RateLimited(
            f"fal.ai kept rate-limiting {where} (HTTP 429) while {stage}, after fal_client's "
            f"retries{hint}. Wait a minute and run again, or run fewer calls at once.",
            retry_after=wait,
        )
    elif status is not None and status >= 500:
        error = BackendError(
            f"fal.ai failed (HTTP {status}) while {stage} for {where}: {short(detail)}. "
            "This is on fal's side; try again later."
        )
    elif status is not None:
        error = BackendError(
            f"fal.ai answered HTTP {status} while {stage} for {where}: {short(detail)}."
        )
    elif isinstance(exc, httpx.TimeoutException):
        error = BackendError(
            f"fal.ai did not answer in time while {stage} for {where} "
            f"({type(exc).__name__}). Check the network and try again."
        )
    elif isinstance(exc, httpx.HTTPError):
        error = BackendError(
            f"Could not reach fal.ai while {stage} for {where} ({type(exc).__name__}: "
            f"{short(exc)}). Check the network and try again."
        )
    else:
        error = InvalidResult(
            f"fal.ai sent a malformed response while {stage} for {where} "
            f"({type(exc).__name__}: {short(exc)}). Nothing was cached; try again."
        )
    if call.key and call.key in str(error):
        masked = str(error).replace(call.key, "***")
        if isinstance(error, RateLimited):
            error = RateLimited(masked, retry_after=error.retry_after)
        else:
            error = type(error)(masked)
    return error
