"""Review in a real JupyterLab, driven in Debian's Chromium by Playwright.

What a person does after a batch: show ``Review(batch)`` of 60 results, see a page of 48
tiles, click a tile's name to select it, press **r** and see its caption say so, move with
the arrows, PageDown to the other 12, and Enter to get an ImagePrep of the selected item
below the grid; the buttons do the same.
Screenshots land in test-artifacts/ for a human to look at.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import playwright.sync_api as playwright_sync
import pytest
from PIL import Image, ImageDraw
from playwright.sync_api import Locator

from labharness import (
    ARTIFACTS,
    Lab,
    browser_page,
    expect,
    run_notebook,
    running_lab,
    shot,
    write_notebook,
)

pytestmark = pytest.mark.browser

COUNT = 60
SELECTED = "rgb(9, 105, 218)"  # the selection frame's colour


def make_shots(folder: Path) -> None:
    """Sixty small, distinct pictures: a colour wheel of backgrounds, each with its number."""
    folder.mkdir()
    for i in range(COUNT):
        hue = int(255 * i / COUNT)
        picture = Image.new("HSV", (96, 72), (hue, 150, 230)).convert("RGB")
        draw = ImageDraw.Draw(picture)
        draw.ellipse((18, 10, 78, 62), fill=(255 - hue, 80, hue))
        draw.text((40, 30), f"{i:02}", fill="white")
        picture.save(folder / f"shot{i:02}.png")


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    shots = tmp_path / "shots"
    make_shots(shots)
    root = tmp_path / "root"
    root.mkdir()
    source = (
        "from nbimgprep import Processor, Review\n"
        f'proc = Processor(backend="local", cache_dir={str(tmp_path / "cache")!r})\n'
        f'batch = await proc.run_many("upscale", {str(shots)!r}, scale=2, progress=False)\n'
        "review = Review(batch)\n"
        "review"
    )
    write_notebook(root / "review.ipynb", source, cell_id="review")
    with running_lab(root, tmp_path) as running:
        yield running


def shot_rows(page: playwright_sync.Page, review: Locator, last: Locator, name: str) -> None:
    """A screenshot of the grid's top, down to tile ``last``: what fits in a README."""
    review.evaluate("(el) => el.scrollIntoView({block: 'start'})")
    top, end = review.bounding_box(), last.bounding_box()
    assert top is not None and end is not None
    height = end["y"] + end["height"] + 6 - top["y"]
    clip = {"x": top["x"], "y": top["y"], "width": top["width"], "height": height}
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), clip=clip)  # type: ignore[arg-type]


@pytest.fixture
def page(lab: Lab) -> Iterator[playwright_sync.Page]:
    with browser_page() as opened:
        yield opened


def test_page_select_reject_next_page_and_open(lab: Lab, page: playwright_sync.Page) -> None:
    page.goto(lab.notebook_url("review.ipynb"))
    run_notebook(page)

    review = page.locator(".nbimgprep-review")
    expect(review).to_be_visible()
    tiles = review.locator(".nbimgprep-review-tile")
    expect(tiles).to_have_count(48)
    expect(review).to_contain_text("page 1 of 2")
    expect(tiles.first.locator("img")).to_be_visible()
    shot_rows(page, review, tiles.nth(17), "review-1-page-one")

    tile = tiles.nth(5)
    caption = tile.locator(".widget-html")
    expect(caption).to_contain_text("fresh")
    expect(caption).not_to_contain_text("rejected")
    tile.get_by_role("button", name="shot05.png").click()
    expect(tile).to_have_css("border-top-color", SELECTED)  # the selection frame
    expect(tiles.first).not_to_have_css("border-top-color", SELECTED)

    # The keys are the grid's, not JupyterLab's ("r" would make the cell raw, "a" insert
    # one above): r rejects the selected tile, the arrows move the selection.
    page.keyboard.press("r")
    expect(caption).to_contain_text("rejected")
    for other in (0, 4, 6):
        expect(tiles.nth(other).locator(".widget-html")).not_to_contain_text("rejected")
    expect(review).to_contain_text("1 rejected")
    shot_rows(page, review, tiles.nth(17), "review-2-rejected")
    page.keyboard.press("ArrowRight")
    expect(tiles.nth(6)).to_have_css("border-top-color", SELECTED)
    page.keyboard.press("a")
    expect(tiles.nth(6).locator(".widget-html")).to_contain_text("accepted")
    expect(page.locator(".jp-Notebook .jp-Cell")).to_have_count(1)
    expect(page.locator(".jp-Notebook .jp-Cell").first).to_have_class(re.compile("jp-CodeCell"))

    # A click on a picture (not a button) gives the grid the focus too.
    tiles.nth(7).locator("img").click()
    page.keyboard.press("PageDown")
    expect(review).to_contain_text("page 2 of 2")
    expect(tiles).to_have_count(COUNT - 48)
    expect(tiles.first.get_by_role("button")).to_have_text("shot48.png")
    expect(tiles.nth(6)).to_have_css("border-top-color", SELECTED)  # shot54: its place kept
    shot(review, "review-3-page-two")

    page.keyboard.press("Enter")
    prep = review.locator(".nbip-root")
    expect(prep).to_be_visible()
    expect(prep.locator("canvas").first).to_be_visible()
    expect(prep).to_contain_text("shot54")
    prep.scroll_into_view_if_needed()
    shot(page, "review-4-opened")

    # The buttons do the same.
    review.get_by_role("button", name="◀ page").click()
    expect(review).to_contain_text("page 1 of 2")
    review.get_by_role("button", name="Reject", exact=True).click()
    expect(review).to_contain_text("2 rejected")
