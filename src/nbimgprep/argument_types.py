"""The ``type=`` of the command flags: what a size, a number of days, a limit or a count may
be written as, and what argparse says when it is not."""

from __future__ import annotations

import argparse
import re

__all__ = ["parse_count", "parse_days", "parse_limit", "parse_size"]

_SIZE_UNITS = {
    "": 1,
    "b": 1,
    "k": 1000,
    "kb": 1000,
    "m": 1000**2,
    "mb": 1000**2,
    "g": 1000**3,
    "gb": 1000**3,
    "t": 1000**4,
    "tb": 1000**4,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
    "tib": 1024**4,
}
#: SQLite's largest integer: a larger --limit cannot be asked of the index.
_LARGEST_LIMIT = 2**63 - 1
_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$")


def parse_size(text: str) -> int:
    """``"2GB"`` -> 2_000_000_000 bytes; KB/MB/GB/TB are powers of 1000, KiB/MiB/GiB of 1024."""
    match = _SIZE_RE.match(text)
    unit = match.group(2).lower() if match else ""
    if not match or unit not in _SIZE_UNITS:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a size; write a number of bytes or use a unit, e.g. 500MB, 2GB, 1GiB"
        )
    return int(float(match.group(1)) * _SIZE_UNITS[unit])


def parse_days(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of days") from None
    if value < 0 or value != value:
        raise argparse.ArgumentTypeError(f"{text!r}: the number of days must be 0 or more")
    return value


def parse_limit(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: the limit must be 1 or more")
    if value > _LARGEST_LIMIT:
        raise argparse.ArgumentTypeError(f"{text!r}: the limit must be at most {_LARGEST_LIMIT}")
    return value


def parse_count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r}: the number must be 0 or more")
    return value
