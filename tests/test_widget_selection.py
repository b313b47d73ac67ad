"""CropSelection without any widget: what the mouse and keys do to the crop box.

The canvas handlers of ImagePrep only forward browser events here, so these tests are the
crop behaviour itself, as plain method calls with canvas-pixel points.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nbimgprep import NbimgprepError
from nbimgprep.widget import CropSelection


def drag(sel: CropSelection, *points: tuple[float, float]) -> tuple[int, int, int, int] | None:
    sel.press(*points[0])
    for p in points[1:]:
        sel.drag(*p)
    return sel.release()


def test_a_drag_on_a_half_size_preview_draws_the_box_in_image_pixels() -> None:
    sel = CropSelection((1000, 800), scale=0.5)
    assert drag(sel, (10, 20), (60, 70), (110, 120)) == (20, 40, 200, 200)


def test_inside_moves_a_corner_resizes_and_a_click_outside_clears() -> None:
    sel = CropSelection((512, 512), scale=1.0)
    sel.place((100, 100, 200, 100))

    assert drag(sel, (200, 150), (230, 170)) == (130, 120, 200, 100)
    assert drag(sel, (330, 220), (400, 300)) == (130, 120, 270, 180)
    assert drag(sel, (500, 10), (501, 11)) is None  # under the click slop: a click


def test_leaving_ends_the_drag_where_it_is() -> None:
    sel = CropSelection((512, 512), scale=1.0)
    sel.press(10, 10)
    sel.drag(100, 100)
    assert sel.leave() is True
    assert not sel.drag(300, 300)
    assert sel.box == (10, 10, 90, 90)


def test_keys_nudge_clear_and_ask_to_apply() -> None:
    sel = CropSelection((512, 512), scale=1.0)
    sel.place((100, 100, 50, 50))
    assert sel.key("ArrowLeft", shift=True) is None
    assert sel.box == (90, 100, 50, 50)
    assert sel.key("Enter") == "apply"
    sel.key("Escape")
    assert sel.box is None
    assert sel.key("Enter") is None  # nothing to apply


def test_a_preset_locks_and_fits_and_unlocking_frees_it() -> None:
    sel = CropSelection((512, 512), scale=1.0)
    sel.place((100, 100, 200, 100))
    sel.choose_aspect("1:1")
    assert (sel.locked, sel.box) == (True, (150, 100, 100, 100))
    sel.lock(False)
    assert (sel.aspect, sel.locked) == ("Free", False)
    sel.place((0, 0, 40, 20))
    sel.lock(True)  # "Free" and locked: the box keeps its own ratio
    assert drag(sel, (100, 100), (300, 120)) == (100, 100, 200, 100)
    with pytest.raises(NbimgprepError, match="Unknown aspect"):
        sel.choose_aspect("2:1")


@pytest.mark.parametrize(
    "bad",
    [
        (1, 2, 3),
        "1,2,3,4",
        (1, 2, "3", 4),
        (0, 0, 0, 10),
        (0, 0, 10, -5),
        (True, 0, 5, 5),
        (0, 0, float("nan"), 5),
        42,
    ],
)
def test_a_bad_box_is_a_clear_error_and_the_box_is_kept(bad: object) -> None:
    sel = CropSelection((512, 512), scale=1.0)
    sel.place((10, 10, 20, 20))
    with pytest.raises(NbimgprepError, match="crop"):
        sel.place(bad)
    assert sel.box == (10, 10, 20, 20)


@given(
    size=st.tuples(st.integers(1, 4000), st.integers(1, 4000)),
    points=st.lists(st.tuples(st.floats(-500, 1500), st.floats(-500, 1500)), min_size=2),
    ratio=st.sampled_from(["Free", "1:1", "4:5", "16:9"]),
)
def test_whatever_the_mouse_does_the_box_stays_inside_the_image(
    size: tuple[int, int], points: list[tuple[float, float]], ratio: str
) -> None:
    sel = CropSelection(size, scale=1000 / max(size))
    sel.choose_aspect(ratio)
    for i in range(0, len(points) - 1, 2):
        box = drag(sel, points[i], points[i + 1])
        if box is not None:
            x, y, w, h = box
            assert x >= 0 and y >= 0 and w >= 1 and h >= 1
            assert x + w <= size[0] and y + h <= size[1]
