"""Every piece of HTML the widget shows, derived from its data in one place.

The text comes from :mod:`nbimgprep.widget.status` (and the image and result it
describes); this module only escapes it and wraps it in the classes ``style.css`` styles.
The stylesheet itself is a package data file, read once with ``importlib.resources``.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from functools import cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from ..results import cache_label
from ..thumbnails import CHECKERBOARD_CSS
from .layers import TIMES
from .status import HistoryStep, Status, step_title

if TYPE_CHECKING:
    from ..results import Result

__all__ = [
    "EMPTY_RESULT",
    "HISTORY_SHOWN",
    "header_html",
    "history_html",
    "input_label_html",
    "result_label_html",
    "status_html",
    "style_html",
]

#: The history list shows the latest steps only (``prep.history`` keeps them all).
HISTORY_SHOWN = 12
_ICONS = {"hit": "✓", "fresh": "●", "busy": "⏳", "error": "⚠", "ok": "✓"}
EMPTY_RESULT = (
    '<div class="nbip-empty"><div>Results appear here.<br>'
    "Press <b>Remove background</b>, <b>Upscale</b> or <b>Face detail</b>.</div></div>"
)


@cache
def style_html() -> str:
    """The widget's stylesheet (``style.css`` beside this module) plus the checkerboard."""
    css = resources.files(__package__).joinpath("style.css").read_text(encoding="utf-8")
    return f"<style>\n{css}\n.nbip-checker {{ {CHECKERBOARD_CSS}; }}\n</style>"


def status_html(status: Status) -> str:
    icon = _ICONS.get(status.kind, "")
    return (
        f'<div class="nbip-status nbip-status-{status.kind}"><span class="nbip-icon">{icon}'
        f"</span> {html.escape(status.text)}</div>"
    )


def history_html(steps: Sequence[HistoryStep]) -> str:
    items = "".join(
        f'<li class="nbip-step nbip-step-{s.kind}">{html.escape(s.describe())}</li>'
        for s in steps[-HISTORY_SHOWN:]
    )
    return (
        '<div class="nbip-history"><div class="nbip-history-title">History</div>'
        f"<ol>{items}</ol></div>"
    )


def short_name(name: str) -> str:
    """The file name, without folders, for the header (the full name is the tooltip)."""
    if name.startswith("image from"):
        return name
    head, sep, _ = name.partition(" cropped to ")
    base = Path(head).name or head
    return f"{base} (cropped)" if sep else base


def header_html(name: str, sha256: str, backend: str) -> str:
    return (
        '<div class="nbip-header"><span class="nbip-title">ImagePrep</span>'
        f'<span class="nbip-name" title="{html.escape(name)}">'
        f"{html.escape(short_name(name))}</span>"
        f'<span class="nbip-hash" title="SHA-256 of the current input">'
        f"#{sha256[:12]}</span>"
        f'<span class="nbip-backend">{html.escape(backend)} backend</span>'
        "</div>"
    )


def input_label_html(size: tuple[int, int]) -> str:
    return f'<div class="nbip-label"><b>Input</b> <span>{size[0]}{TIMES}{size[1]} px</span></div>'


def result_label_html(result: Result | None) -> str:
    if result is None:
        return '<div class="nbip-label"><b>Result</b></div>'
    kind = "hit" if result.cache_hit else "fresh"
    return (
        f'<div class="nbip-label"><b>Result</b> '
        f"<span>{result.width}{TIMES}{result.height} px</span>"
        f" <span>{html.escape(step_title(result.operation, result.params))}</span>"
        f'<span class="nbip-chip nbip-{kind}">{cache_label(result.cache_hit)}</span></div>'
    )
