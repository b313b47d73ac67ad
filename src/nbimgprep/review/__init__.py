"""Reviewing a batch: :class:`Review` (the Python API and its widget).

==============  ============================================================================
``review``      :class:`Review`: items, selection, decisions (store tags), redo, export
``items``       :class:`ReviewItem`: one input, its outcome, decision and flags
``flags``       the cheap checks on a result (coverage, size, unchanged)
``exporting``   copying chosen results to a folder, every name checked first
``grid``        the widget: a paged grid of tiles, buttons and keys
``keys``        what each key does (``KEYS``), and where the arrows move the selection
``keyboard``    :class:`KeyScope`: the grid's keys, claimed from JupyterLab (``keyboard.js``)
==============  ============================================================================
"""

from __future__ import annotations

from .items import DECISIONS, FILTERS, ReviewItem
from .review import PAGE_SIZE, Review

__all__ = ["DECISIONS", "FILTERS", "PAGE_SIZE", "Review", "ReviewItem"]
