"""The Review widget without a browser: tiles per page, buttons, and the bytes it sends.

Every widget's comm is a recorder (``comm.create_comm`` patched), so the payload counted is
what the browser would receive: the buffers (thumbnails) of every message.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import comm
import pytest
from PIL import Image

from conftest import CountingBackend
from nbimgprep import Processor, Review


@dataclass
class Recorder:
    """What every widget comm sent: (data, buffers) per message."""

    sent: list[tuple[Any, list[bytes]]] = field(default_factory=list)
    handlers: dict[str, Any] = field(default_factory=dict)

    def from_browser(self, widget: Any, content: Any) -> None:
        """Deliver a custom message to ``widget`` as its view in the browser sends it."""
        data = {"method": "custom", "content": content}
        self.handlers[widget.comm.comm_id]({"content": {"data": data}, "buffers": []})

    @property
    def buffer_bytes(self) -> int:
        return sum(len(b) for _, buffers in self.sent for b in buffers)


@dataclass
class RecordingComm:
    recorder: Recorder
    comm_id: str
    kernel: str = "a kernel"

    def send(self, data: Any = None, metadata: Any = None, buffers: Any = None) -> None:
        self.recorder.sent.append((data, [bytes(b) for b in buffers or []]))

    def open(self, *args: Any, **kwargs: Any) -> None:
        pass

    def on_msg(self, callback: Any) -> None:
        self.recorder.handlers[self.comm_id] = callback

    def close(self, *args: Any, **kwargs: Any) -> None:
        pass


@pytest.fixture
def recorder(monkeypatch: pytest.MonkeyPatch) -> Recorder:
    record = Recorder()
    counter = iter(range(10**9))

    def create_comm(*args: Any, **kwargs: Any) -> RecordingComm:
        if kwargs.get("buffers"):
            record.sent.append((kwargs.get("data"), [bytes(b) for b in kwargs["buffers"]]))
        return RecordingComm(record, kwargs.get("comm_id") or f"comm-{next(counter)}")

    monkeypatch.setattr(comm, "create_comm", create_comm)
    return record


@pytest.fixture
def sixty(tmp_path: Path) -> Review:
    """A review of 60 upscaled photos-like images (noise, so thumbnails are not trivially small)."""
    folder = tmp_path / "shots"
    folder.mkdir()
    for i in range(60):
        Image.effect_noise((160, 120), 40 + i).convert("RGB").save(folder / f"shot{i:02}.png")
    proc = Processor(CountingBackend(), cache_dir=tmp_path / "cache")
    return proc.run_many_sync("upscale", folder, progress=False).review()


def test_a_page_shows_48_tiles_and_sends_each_thumbnail_once(
    sixty: Review, recorder: Recorder
) -> None:
    grid = sixty.grid
    assert len(grid.grid.children) == 48 and len(grid.tiles) == 48
    first_page = recorder.buffer_bytes
    assert 48 * 1000 < first_page < 2_000_000  # every tile's picture, about 2 MB at most
    assert grid.bytes_sent <= first_page

    grid.buttons["next"].click()
    assert sixty.page == 1 and len(grid.grid.children) == 12
    second_page = recorder.buffer_bytes - first_page
    assert 0 < second_page < first_page

    grid.buttons["previous"].click()
    assert len(grid.grid.children) == 48
    assert recorder.buffer_bytes == first_page + second_page  # the browser has them


def test_click_selects_and_buttons_decide(sixty: Review, recorder: Recorder) -> None:
    grid = sixty.grid
    tile = grid.tiles[5]
    tile.button.click()
    assert sixty.selected == 5
    before = recorder.buffer_bytes
    grid.buttons["reject"].click()
    assert sixty.items[5].decision == "rejected"
    assert "rejected" in tile.caption.value
    grid.buttons["accept"].click()
    assert "accepted" in tile.caption.value and sixty.accepted == [sixty.items[5].result]
    assert recorder.buffer_bytes == before  # a decision re-sends no picture
    grid.buttons["clear"].click()
    assert sixty.items[5].decision is None

    grid.filter.value = "undecided"
    assert sixty.filter == "undecided" and len(grid.grid.children) == 48
    sixty.reject(0)
    grid.filter.value = "rejected"
    assert [t.item.index for t in grid.tiles.values() if t.box in grid.grid.children] == [0]
    assert "60 items: 0 hits, 60 fresh, 0 failed" in grid.summary.value


def test_open_shows_an_image_prep_below_the_grid(sixty: Review, recorder: Recorder) -> None:
    from nbimgprep import ImagePrep

    grid = sixty.grid
    grid.tiles[3].button.click()
    grid.buttons["open"].click()
    assert isinstance(sixty.prep, ImagePrep)
    assert grid.below.children == (sixty.prep,)


def test_keys_from_the_browser_do_what_the_buttons_do(sixty: Review, recorder: Recorder) -> None:
    grid = sixty.grid
    grid.tiles[5].button.click()

    def press(key: str) -> None:  # what keyboard.js sends, six tiles a row
        recorder.from_browser(grid.keys, {"key": key, "columns": 6})

    press("r")
    assert sixty.items[5].decision == "rejected" and "rejected" in grid.tiles[5].caption.value
    press("ArrowRight")
    press("a")
    assert sixty.selected == 6 and sixty.items[6].decision == "accepted"
    press("u")
    assert sixty.items[6].decision is None
    press("ArrowDown")
    assert sixty.selected == 12
    press("PageDown")
    assert sixty.page == 1 and sixty.selected == 59  # place 12 of a page of 12: the last
    assert len(grid.grid.children) == 12
    press("PageUp")
    assert sixty.page == 0 and sixty.selected == 11
    press("Enter")
    assert sixty.prep is not None and grid.below.children == (sixty.prep,)
    assert sixty.prep.image_ref.path == sixty.items[11].source

    recorder.from_browser(grid.keys, {"key": "q", "columns": 6})  # not a key of the grid
    assert "does nothing here" in grid.status.value
    recorder.from_browser(grid.keys, ["not", "a", "key"])  # ignored
    assert sixty.selected == 11


def test_take_result_before_any_result_says_what_to_do(sixty: Review, recorder: Recorder) -> None:
    grid = sixty.grid
    grid.buttons["take"].click()
    assert "No item is open" in grid.status.value
    grid.tiles[2].button.click()
    grid.buttons["open"].click()
    grid.buttons["take"].click()
    assert "no result yet" in grid.status.value and sixty.items[2].result is not None
