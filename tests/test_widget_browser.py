"""ImagePrep in a real JupyterLab, driven in Debian's Chromium by Playwright.

What a person does: open a notebook with the widget, drag a crop, apply it, press
"Upscale" (a fresh call), press it again (a cache hit), reload the page and still see the
image, then press "Compare" and drag the divider across the result. Screenshots land in
test-artifacts/ for a human to look at.

The server runs on 127.0.0.1 with a fixed token, a temporary root and its own Jupyter
settings folders; it and the browser are always shut down. Every wait is bounded by a
Playwright timeout or a deadline; there are no sleeps.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import playwright.sync_api as playwright_sync
import pytest

from labharness import Lab, browser_page, expect, run_notebook, running_lab, write_notebook
from labharness import shot as save_shot

pytestmark = pytest.mark.browser


@pytest.fixture
def lab(tmp_path: Path, testdata: Path) -> Iterator[Lab]:
    photo = testdata / "astronaut.png"
    assert photo.is_file(), f"missing test photo {photo}"
    root = tmp_path / "root"
    root.mkdir()
    source = (
        "from nbimgprep import ImagePrep, Processor\n"
        f'proc = Processor(backend="local", cache_dir={str(tmp_path / "cache")!r})\n'
        f"prep = ImagePrep({str(photo)!r}, proc)\n"
        "prep"
    )
    write_notebook(root / "widget.ipynb", source, cell_id="imageprep")
    with running_lab(root, tmp_path) as running:
        yield running


@pytest.fixture
def page(lab: Lab) -> Iterator[object]:
    with browser_page() as opened:
        yield opened


def shot(target: object, name: str) -> Path:
    return save_shot(target, f"widget-{name}")


CANVAS_HAS_PIXELS = """(el) => {
    const ctx = el.getContext('2d');
    const d = ctx.getImageData(0, 0, el.width, el.height).data;
    let seen = 0;
    for (let i = 3; i < d.length; i += 4 * 97) { if (d[i] > 0) seen++; }
    return seen > 100;
}"""


# The compare view: the picture is drawn, and the divider (a white line) is at ``split``.
DIVIDER_AT = """([el, split]) => {
    const ctx = el.getContext('2d');
    const x = Math.round(el.width * split);
    const y = Math.floor(el.height / 5);
    const px = ctx.getImageData(x - 1, y, 2, 1).data;
    const white = px[0] > 250 && px[1] > 250 && px[2] > 250 && px[3] === 255;
    const d = ctx.getImageData(0, 0, el.width, el.height).data;
    let seen = 0;
    for (let i = 3; i < d.length; i += 4 * 97) { if (d[i] > 0) seen++; }
    return white && seen > 100;
}"""


def test_crop_upscale_fresh_then_cache_hit_and_reload(lab: Lab, page: object) -> None:
    pg: playwright_sync.Page = page  # type: ignore[assignment]
    pg.goto(f"{lab.url}/lab/tree/widget.ipynb?token={lab.token}")
    run_notebook(pg)

    root = pg.locator(".nbip-root")
    expect(root).to_be_visible()
    canvas = root.locator("canvas").first
    expect(canvas).to_be_visible()
    pg.wait_for_function(CANVAS_HAS_PIXELS, arg=canvas.element_handle())
    root.scroll_into_view_if_needed()
    shot(root, "1-loaded")

    box = canvas.bounding_box()
    assert box is not None
    x0, y0 = box["x"] + box["width"] * 0.25, box["y"] + box["height"] * 0.15
    x1, y1 = box["x"] + box["width"] * 0.75, box["y"] + box["height"] * 0.65
    pg.mouse.move(x0, y0)
    pg.mouse.down()
    pg.mouse.move(x1, y1, steps=8)
    pg.mouse.up()
    apply_crop = root.get_by_role("button", name="Apply crop")
    expect(apply_crop).to_be_enabled()
    expect(root.locator(".nbip-field input").nth(2)).not_to_have_value("0")
    shot(root, "2-crop-drawn")

    # Keys on the canvas are the widget's, and the notebook is left alone: ArrowDown nudges
    # the box by 1 px, Shift+ArrowRight by 10.
    fields = root.locator(".nbip-field input")
    left_field, top_field = fields.nth(0), fields.nth(1)
    top, left = int(top_field.input_value()), int(left_field.input_value())
    canvas.press("ArrowDown")
    expect(top_field).to_have_value(str(top + 1))
    canvas.press("Shift+ArrowRight")
    expect(left_field).to_have_value(str(left + 10))
    expect(pg.locator(".jp-Notebook .jp-Cell")).to_have_count(1)

    apply_crop.click()
    status = root.locator(".nbip-status")
    expect(status).to_contain_text("Cropped to")

    upscale = root.get_by_role("button", name="Upscale")  # the icon glyph is part of the name
    upscale.click()
    expect(status).to_contain_text("fresh")
    expect(status).to_contain_text("local")
    expect(root.locator("img.nbip-after")).to_be_visible()
    shot(root, "3-fresh")

    expect(upscale).to_be_enabled()
    upscale.click()
    expect(status).to_contain_text("cache hit")
    expect(status).to_contain_text("ms")
    expect(root.locator(".nbip-history li")).to_have_count(3)
    shot(root, "4-cache-hit")
    shot(pg, "5-page")

    pg.evaluate("() => window.jupyterapp.commands.execute('docmanager:save')")
    pg.reload()
    root = pg.locator(".nbip-root")
    expect(root).to_be_visible()
    canvas = root.locator("canvas").first
    expect(canvas).to_be_visible()
    pg.wait_for_function(CANVAS_HAS_PIXELS, arg=canvas.element_handle())
    expect(root.locator(".nbip-status")).to_contain_text("cache hit")
    root.scroll_into_view_if_needed()
    shot(root, "6-after-reload")

    # Compare: the input beneath the result, split by a divider dragged to a quarter.
    root.get_by_role("button", name="Compare").click()
    compare = root.locator("canvas.nbip-compare")  # its layers are drawn into one canvas
    expect(compare).to_be_visible()
    expect(root.locator("img.nbip-after")).to_be_hidden()
    pg.wait_for_function(DIVIDER_AT, arg=[compare.element_handle(), 0.5])
    area = compare.bounding_box()
    assert area is not None
    y = area["y"] + area["height"] * 0.5
    pg.mouse.move(area["x"] + area["width"] * 0.5, y)
    pg.mouse.down()
    pg.mouse.move(area["x"] + area["width"] * 0.25, y, steps=6)
    pg.mouse.up()
    pg.wait_for_function(DIVIDER_AT, arg=[compare.element_handle(), 0.25])
    root.scroll_into_view_if_needed()
    shot(root, "7-compare")
