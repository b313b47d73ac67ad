"""Keys for a part of the page, in any notebook front end.

ipywidgets gives a box no key events, and JupyterLab takes bare letters, Enter and the
arrows for its own commands ("a" inserts a cell above). :class:`KeyScope` is a hidden
widget whose few lines of JavaScript (``keyboard.js`` beside this module, run by anywidget)
claim the listed keys while the focus is inside the widget it watches, and send each to
Python. Keys with a modifier pass through, so Shift+Enter still runs the cell.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import anywidget
import ipywidgets as widgets
import traitlets

__all__ = ["KeyScope"]


class KeyScope(anywidget.AnyWidget):  # type: ignore[misc]
    """Sends the ``keys`` pressed while the focus is inside ``watched`` to ``on_key(key,
    columns)``, ``columns`` being how many the watched grid shows in a row (1 if it is
    not a grid). Show it anywhere on the page, e.g. beside ``watched``: it draws nothing."""

    _esm = Path(__file__).with_name("keyboard.js")
    scope = traitlets.Unicode().tag(sync=True)
    claimed = traitlets.List(traitlets.Unicode()).tag(sync=True)

    def __init__(
        self,
        watched: widgets.DOMWidget,
        keys: Iterable[str],
        on_key: Callable[[str, int], object],
    ) -> None:
        scope = f"nbimgprep-keys-{uuid.uuid4().hex[:12]}"
        super().__init__(scope=scope, claimed=list(keys))
        watched.add_class(scope)
        self._on_key = on_key
        self.on_msg(self._received)

    def _received(self, _: object, content: Any, buffers: object) -> None:
        if not isinstance(content, dict) or not isinstance(content.get("key"), str):
            return  # not ours: nothing else is sent on this channel
        columns = content.get("columns")
        self._on_key(content["key"], columns if isinstance(columns, int) and columns > 0 else 1)
