"""The ``ImagePrep`` widget, in parts that each do one job.

======================  ==================================================================
``prep``                :class:`ImagePrep`: composes the parts, the public API, operations
``selection``           :class:`CropSelection`: the crop box state machine (no widgets)
``cropping``            canvas events and crop fields translated into CropSelection calls
``layers``              the canvas: preview layer and crop overlay layer, cursors
``compare``             the Compare view: the input beneath the result, a divider between
``inputs``              the input as a recipe for its pixels (file + crops), not the pixels
``controls``            buttons (by identity), fields, aspect presets, panels and layout
``status``              the status line and the history of steps, as data
``markup``              every piece of HTML, derived from that data; ``style.css`` loading
``running``             tasks started by buttons; the one-operation-at-a-time slot
``saving``              ``prep.save``: suffix and folder checked before writing
======================  ==================================================================
"""

from __future__ import annotations

from .prep import ImagePrep
from .selection import CropSelection
from .status import HistoryStep

__all__ = ["CropSelection", "HistoryStep", "ImagePrep"]
