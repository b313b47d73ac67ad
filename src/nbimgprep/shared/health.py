"""Whether a shared tier is usable now, and the one warning when it is not.

A team's bucket going away (network down, credentials expired, a slow link) must cost a user one
line on stderr, not one per call and not one per :class:`~nbimgprep.Processor`: a notebook may
make many. So the state lives per process, keyed by the tier's URL: the one piece of module-level
state in the package, which exists because the promise ("one warning per process") is itself about
the process. After a failure the tier is skipped for ``retry_after`` seconds (no request, no wait),
then tried again. A forked child starts with a clean slate (it is a new process).
"""

from __future__ import annotations

import os
import threading
import warnings
from dataclasses import dataclass

__all__ = ["OUTAGES", "Outages", "warn"]


@dataclass
class _Outage:
    until: float
    warned: bool


class Outages:
    """Per-process record of shared tiers that failed lately, and which were warned about."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pid = os.getpid()
        self._by_url: dict[str, _Outage] = {}

    def _state(self) -> dict[str, _Outage]:
        if self._pid != os.getpid():
            self._pid, self._by_url = os.getpid(), {}
        return self._by_url

    def down(self, url: str, now: float) -> bool:
        """True while ``url`` is in its quiet period after a failure."""
        with self._lock:
            outage = self._state().get(url)
            return outage is not None and now < outage.until

    def failed(self, url: str, reason: str, now: float, retry_after: float) -> None:
        """Note a failure; warn once per process and URL, however many tiers or calls fail."""
        with self._lock:
            state = self._state()
            outage = state.get(url)
            first = outage is None or not outage.warned
            state[url] = _Outage(until=now + retry_after, warned=True)
        if first:
            warn(
                f"The shared cache {url} is not usable ({reason}); working from the local cache "
                f"only, and trying it again every {retry_after:.0f} s. New results are kept "
                "locally; `%imgcache push` (or `nbimgprep cache push`) uploads them later."
            )

    def forget(self, url: str) -> None:
        """Drop what is known about ``url`` (for tests and for a user who fixed the problem)."""
        with self._lock:
            self._state().pop(url, None)


def warn(message: str) -> None:
    """One line on stderr: a ``RuntimeWarning`` from module ``nbimgprep.shared``, with no
    source line under it (filter it with ``warnings.filterwarnings(..., module=...)``)."""
    warnings.warn_explicit(message, RuntimeWarning, "nbimgprep.shared", 0, "nbimgprep.shared")


OUTAGES = Outages()
