"""The plan: what a batch would cost, found before paying and without calling any backend.

``plan`` keys every input (hashes come from the stat memo, so an unchanged file is not read)
and looks it up without counting a hit or a miss: in the local store, then, for what the local
store lacks, in the team's shared tier (one record request per key, :data:`SHARED_LOOKUPS` at
a time), since a shared hit costs nothing either. Only what is left would be a fresh (paid)
call; for those, the output megapixels (the unit fal.ai bills upscales by) come from each
file's header. A shared tier that is down never fails a plan: the plan says so, and counts
what it could not ask about as fresh.

The same local survey gives ``run_many``'s budget its would-be fresh items.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from PIL import Image

from .errors import NbimgprepError
from .images import ImageRef
from .operations import Endpoint, Operation, cache_key, get_operation
from .pixels import open_image
from .results import Source
from .sources import Sources, expand_sources, named

if TYPE_CHECKING:
    from .processor import Processor
    from .shared import SharedTier

__all__ = ["SHARED_LOOKUPS", "Plan", "Survey", "plan", "survey"]

#: Shared-tier record requests a plan keeps in flight at once.
SHARED_LOOKUPS = 16


@dataclass(frozen=True)
class Plan:
    """What a batch would do, found without calling any backend: how many items are cache
    hits, how many would be fresh (paid) calls, and the output megapixels of the fresh ones
    (the unit fal.ai bills upscales by). ``failed`` counts inputs that could not be read.

    With a shared tier (``shared_url``), ``shared`` counts the items found there and not in
    the local store (free too: the run copies them in). ``shared_down`` says the tier could
    not be asked (unreachable, denied or too slow): the items it might hold are counted fresh.
    """

    hits: int
    fresh: int
    fresh_megapixels: float
    failed: int = 0
    shared: int = 0
    shared_url: str | None = None
    shared_down: bool = False

    def __str__(self) -> str:
        shared = "" if self.shared_url is None else f", {self.shared} shared hits"
        line = (
            f"{self.hits} hits{shared}, {self.fresh} fresh calls "
            f"({self.fresh_megapixels:,.1f} MP of output)"
        )
        line += f", {self.failed} unreadable" if self.failed else ""
        return line + (f" ({self._down_note()})" if self.shared_down else "")

    def _down_note(self) -> str:
        return (
            f"the shared cache {self.shared_url} could not be reached: images missing from "
            "the local cache are counted as fresh calls"
        )

    def _repr_html_(self) -> str:
        rows = [("cache hits (free)", f"{self.hits:,}")]
        if self.shared_url is not None:
            rows.append(("shared cache hits (free)", f"{self.shared:,}"))
        rows += [
            ("fresh calls", f"{self.fresh:,}"),
            ("output megapixels of the fresh calls", f"{self.fresh_megapixels:,.1f}"),
        ]
        if self.failed:
            rows.append(("unreadable inputs", f"{self.failed:,}"))
        body = "".join(
            f'<tr><td style="text-align:left">{k}</td><td style="text-align:right">{v}</td></tr>'
            for k, v in rows
        )
        if self.shared_down:
            note = html.escape(self._down_note()[0].upper() + self._down_note()[1:])
            body += f'<tr><td colspan="2" style="text-align:left">{note}.</td></tr>'
        return f"<table>{body}</table>"


@dataclass(frozen=True)
class Survey:
    """One input, keyed and looked up in the local store without counting: a hit, a miss
    (with the output megapixels a fresh call would make), or unreadable (``error``)."""

    image: ImageRef | None
    key: str
    hit: bool
    megapixels: float
    error: NbimgprepError | None


def survey(
    proc: Processor, operation: str, inputs: Sequence[tuple[Source, str]], params: Any
) -> list[Survey]:
    """Each of ``inputs`` (source, label) keyed and looked up locally, in order. A bad
    parameter is the caller's error and raises; an unreadable input is its survey's error."""
    op, keyed = _keyed(proc, operation, inputs, params)
    return _sized(op, keyed, op.canonical_params(params), inputs)


def plan(proc: Processor, operation: str, sources: Sources, **params: Any) -> Plan:
    """See :meth:`nbimgprep.Processor.plan`."""
    inputs = expand_sources(sources)
    op, keyed = _keyed(proc, operation, inputs, params)
    tier = proc.shared.tier if proc.shared is not None else None
    misses = [s.key for s in keyed if s.error is None and not s.hit]
    with _SharedLookups(tier, misses) as shared:
        # Header reads happen here, while the shared tier's requests are in flight.
        surveys = _sized(op, keyed, op.canonical_params(params), inputs)
    fresh = [s for s in surveys if s.error is None and not s.hit and s.key not in shared.found]
    return Plan(
        hits=sum(s.hit for s in surveys),
        fresh=len(fresh),
        fresh_megapixels=sum(s.megapixels for s in fresh),
        failed=sum(s.error is not None for s in surveys),
        shared=sum(s.key in shared.found for s in surveys if s.error is None and not s.hit),
        shared_url=tier.url if tier is not None else None,
        shared_down=shared.down,
    )


# -- keying and local lookup ------------------------------------------------------------------


def _keyed(
    proc: Processor, operation: str, inputs: Sequence[tuple[Source, str]], params: Any
) -> tuple[Operation, list[Survey]]:
    """Every input hashed, keyed and looked up in the local store; no header read yet. The
    operation, parameters and endpoint are resolved once for the whole list."""
    op = get_operation(operation)
    canonical = op.canonical_params(params)  # a bad parameter is the caller's error: raise
    endpoint = proc.endpoint_for(op.name)
    return op, [_key_one(proc, op, endpoint, canonical, s, label) for s, label in inputs]


def _key_one(
    proc: Processor,
    op: Operation,
    endpoint: Endpoint,
    canonical: dict[str, Any],
    source: Source,
    label: str,
) -> Survey:
    try:
        image = proc.image(source)
        key = cache_key(image.sha256, op.name, endpoint, canonical)
        hit = proc.store.get(key) is not None
    except NbimgprepError as exc:
        return Survey(None, "", False, 0.0, named(exc, label))
    return Survey(image, key, hit, 0.0, None)


def _sized(
    op: Operation,
    keyed: list[Survey],
    canonical: dict[str, Any],
    inputs: Sequence[tuple[Source, str]],
) -> list[Survey]:
    """The misses with the output megapixels a fresh call would make (an input whose size
    cannot be read becomes unreadable)."""
    out = []
    for s, (_, label) in zip(keyed, inputs, strict=True):
        if s.error is not None or s.hit or s.image is None:
            out.append(s)
            continue
        try:
            width, height = op.output_size(_header_size(s.image), canonical)
        except NbimgprepError as exc:
            out.append(Survey(None, s.key, False, 0.0, named(exc, label)))
            continue
        out.append(Survey(s.image, s.key, False, width * height / 1e6, None))
    return out


def _header_size(image: ImageRef) -> tuple[int, int]:
    """(width, height) from the file's header alone where there is a file. EXIF orientation
    is left out: turning an image does not change its megapixels, all a plan needs."""
    if image.path is None:
        return image.size
    try:
        with open_image(image.path) as header:
            width, height = header.size
    except (OSError, ValueError, Image.DecompressionBombError):
        return image.size  # decoding names the problem
    return int(width), int(height)


# -- the shared tier --------------------------------------------------------------------------


class _SharedLookups:
    """The shared tier's record for each key, asked :data:`SHARED_LOOKUPS` at a time in
    worker threads while the ``with`` block runs; ``found`` holds the keys it has. ``down``
    is true if the tier was not usable (then whatever it could not answer counts as absent;
    the tier itself warns once per process)."""

    def __init__(self, tier: SharedTier | None, keys: list[str]) -> None:
        self._tier = tier
        self._keys = keys
        self._pool: ThreadPoolExecutor | None = None
        self._asked: list[Future[object]] = []
        self.found: set[str] = set()
        self.down = False

    def __enter__(self) -> _SharedLookups:
        tier = self._tier
        if tier is None or not self._keys:
            return self
        if not tier.reachable():
            self.down = True
            return self
        self._pool = ThreadPoolExecutor(SHARED_LOOKUPS, thread_name_prefix="nbimgprep-plan")
        self._asked = [self._pool.submit(tier.record, key) for key in self._keys]
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._pool is None:
            return
        if exc_info[0] is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            return
        with self._pool:
            self.found = {k for k, f in zip(self._keys, self._asked, strict=True) if f.result()}
        assert self._tier is not None
        self.down = not self._tier.reachable()
