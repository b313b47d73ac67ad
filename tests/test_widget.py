"""ImagePrep without a browser: what a person does, through the widget's real message paths.

Mouse and key events enter the way the browser sends them (a custom comm message to the
canvas model, see ipycanvas' ``CanvasView.onMouseMove``), buttons are pressed with their
public ``click()``, and the draw commands the canvas sends are recorded from its comm and
decoded. The tests assert state and commands, never pixels.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ipycanvas.canvas as ipycanvas_canvas
import pytest
from PIL import Image

from conftest import CountingBackend
from nbimgprep import BackendError, NbimgprepError, OperationError, ProcessingCancelled, Processor
from nbimgprep.crop_geometry import to_image
from nbimgprep.widget import ImagePrep

COMMAND_NAMES = {index: name for name, index in ipycanvas_canvas.COMMANDS.items()}


# -- recording what the canvas sends -----------------------------------------------------


@dataclass
class RecordingComm:
    """Stands in for the kernel comm of ipycanvas' canvas manager and keeps what is sent."""

    comm_id: str = "recording-canvas-manager"
    kernel: str = "a kernel"
    sent: list[tuple[Any, list[bytes]]] = field(default_factory=list)

    def send(self, data: Any = None, buffers: list[Any] | None = None, **_: Any) -> None:
        self.sent.append((data, [bytes(b) for b in buffers or []]))

    def on_msg(self, callback: Any) -> None:
        pass

    def close(self, *args: Any, **kwargs: Any) -> None:
        pass


@dataclass(frozen=True)
class Drawn:
    """One decoded draw command: which canvas layer (model id), command name, arguments."""

    layer: str
    name: str
    args: list[Any]


class DrawLog:
    """The draw commands sent since the last ``clear()``, decoded like the front end does."""

    def __init__(self, comm: RecordingComm) -> None:
        self.comm = comm
        self.mark = 0

    def clear(self) -> None:
        """Forget what was sent so far (the current layer is still followed)."""
        self.mark = len(self.comm.sent)

    @property
    def messages(self) -> int:
        return len(self.comm.sent) - self.mark

    @property
    def bytes_sent(self) -> int:
        return sum(len(b) for _, buffers in self.comm.sent[self.mark :] for b in buffers)

    def commands(self) -> list[Drawn]:
        out: list[Drawn] = []
        layer = "?"
        for i, (_data, buffers) in enumerate(self.comm.sent):
            if i == self.mark:
                out.clear()
            batch = json.loads(buffers[0])
            if not isinstance(batch[0], list):
                batch = [batch]
            for command in batch:
                name = COMMAND_NAMES[command[0]]
                args = command[1] if len(command) > 1 else []
                if name == "switchCanvas":
                    layer = args[0].removeprefix("IPY_MODEL_")
                    continue
                out.append(Drawn(layer, name, args))
        return out

    def names(self) -> list[str]:
        return [c.name for c in self.commands()]


@pytest.fixture
def drawn() -> Iterator[DrawLog]:
    manager = ipycanvas_canvas._CANVAS_MANAGER
    original = manager.comm
    comm = RecordingComm()
    manager.comm = comm
    manager._current_canvas = None  # every recorded batch then names its layer
    try:
        yield DrawLog(comm)
    finally:
        manager.comm = original
        manager._current_canvas = None


# -- the browser's side of the conversation -----------------------------------------------


def browser_sends(prep: ImagePrep, event: str, **content: Any) -> None:
    """Deliver a canvas event the way the comm does: a 'custom' message to the model."""
    msg = {"content": {"data": {"method": "custom", "content": {"event": event, **content}}}}
    prep.canvas._handle_msg({**msg, "buffers": []})


def drag(prep: ImagePrep, start: tuple[float, float], *points: tuple[float, float]) -> None:
    browser_sends(prep, "mouse_down", x=start[0], y=start[1])
    for x, y in points:
        browser_sends(prep, "mouse_move", x=x, y=y)
    browser_sends(prep, "mouse_up", x=points[-1][0], y=points[-1][1])


def key(prep: ImagePrep, name: str, shift: bool = False) -> None:
    browser_sends(prep, "key_down", key=name, shift_key=shift, ctrl_key=False, meta_key=False)


# -- backends ------------------------------------------------------------------------------


class GatedBackend(CountingBackend):
    """Holds every call at a gate the test opens, after reporting queue position 3."""

    name = "gated"

    def __init__(self) -> None:
        super().__init__()
        self.position = 3
        self.gate: asyncio.Event = asyncio.Event()


@pytest.fixture
def astronaut(testdata: Path) -> Path:
    path = testdata / "astronaut.png"
    assert path.is_file(), f"missing test photo {path}"
    return path


@pytest.fixture
def local(cache_dir: Path) -> Processor:
    return Processor(backend="local", cache_dir=cache_dir)


@pytest.fixture
def gated(cache_dir: Path) -> tuple[Processor, GatedBackend]:
    backend = GatedBackend()
    return Processor(backend=backend, cache_dir=cache_dir), backend


def enabled(prep: ImagePrep) -> dict[Any, bool]:
    return {b: not b.disabled for b in prep.buttons.each()}


# -- showing the image -----------------------------------------------------------------------


def test_a_large_photo_is_sent_once_as_a_small_preview_drawn_by_reference(
    testdata: Path, local: Processor, drawn: DrawLog
) -> None:
    prep = ImagePrep(testdata / "coffee_24mp.jpg", local, max_preview=1024)

    assert prep.image.size == (6000, 4000)  # the script sees full resolution
    assert (prep.canvas.width, prep.canvas.height) == (1024, 683)  # the browser a preview
    preview = prep.layers.preview.widget
    assert preview.format == "jpeg" and len(preview.value) < 250_000
    commands = drawn.commands()
    assert "putImageData" not in [c.name for c in commands]
    draw = [c for c in commands if c.name == "drawImage"]
    assert len(draw) == 1
    assert draw[0].layer == prep.canvas[0].model_id
    assert draw[0].args == [f"IPY_MODEL_{preview.model_id}", 0, 0, 1024, 683]
    assert drawn.bytes_sent < 2_000  # commands only: the pixels live in the Image widget


def test_a_new_browser_view_gets_the_image_redrawn(
    astronaut: Path, local: Processor, drawn: DrawLog
) -> None:
    prep = ImagePrep(astronaut, local, crop=(10, 20, 100, 50))
    drawn.clear()

    browser_sends(prep, "client_ready")  # what a page reload's new canvas model says

    names = drawn.names()
    assert "drawImage" in names and "strokeRect" in names


def test_an_image_with_transparency_is_previewed_as_png(testdata: Path, local: Processor) -> None:
    prep = ImagePrep(testdata / "coffee_palette_transparent.png", local)
    assert prep.layers.preview.widget.format == "png"


# -- cropping with the mouse and keys ---------------------------------------------------------


def test_dragging_draws_a_crop_box_in_original_image_pixels(
    testdata: Path, local: Processor, drawn: DrawLog
) -> None:
    prep = ImagePrep(testdata / "coffee_24mp.jpg", local)
    scale = prep.layers.preview.fit.scale

    drag(prep, (100, 100), (200, 180), (300, 250))

    x0, y0 = to_image((100, 100), scale)
    x1, y1 = to_image((300, 250), scale)
    x, y, w, h = prep.crop or (0, 0, 0, 0)
    assert abs(x - x0) <= 1 and abs(y - y0) <= 1
    assert abs(x + w - x1) <= 1 and abs(y + h - y1) <= 1
    assert [prep.controls.fields[n].value for n in "xywh"] == [x, y, w, h]
    assert not prep.buttons.apply_crop.disabled


def test_each_mouse_move_redraws_only_the_crop_layer_in_one_message(
    astronaut: Path, local: Processor, drawn: DrawLog
) -> None:
    prep = ImagePrep(astronaut, local)
    browser_sends(prep, "mouse_down", x=50, y=50)
    browser_sends(prep, "mouse_move", x=120, y=100)
    drawn.clear()

    browser_sends(prep, "mouse_move", x=200, y=160)

    assert drawn.messages == 1
    commands = drawn.commands()
    assert {c.layer for c in commands} == {prep.canvas[1].model_id}
    assert "drawImage" not in [c.name for c in commands]
    assert prep.crop == (50, 50, 150, 110)


def test_dragging_inside_moves_the_box_and_a_corner_resizes_it(
    astronaut: Path, local: Processor
) -> None:
    prep = ImagePrep(astronaut, local, crop=(100, 100, 200, 100))  # 512x512: scale 1

    drag(prep, (200, 150), (230, 170))
    assert prep.crop == (130, 120, 200, 100)

    drag(prep, (330, 220), (400, 300))  # the bottom-right corner
    assert prep.crop == (130, 120, 270, 180)

    drag(prep, (265, 120), (265, 60))  # the top edge
    assert prep.crop == (130, 60, 270, 240)


def test_leaving_the_canvas_ends_the_drag(astronaut: Path, local: Processor) -> None:
    prep = ImagePrep(astronaut, local)
    browser_sends(prep, "mouse_down", x=10, y=10)
    browser_sends(prep, "mouse_move", x=100, y=100)
    browser_sends(prep, "mouse_out", x=100, y=100)
    browser_sends(prep, "mouse_move", x=300, y=300)  # back in, button already released

    assert prep.crop == (10, 10, 90, 90)


def test_a_click_outside_the_box_clears_it(astronaut: Path, local: Processor) -> None:
    prep = ImagePrep(astronaut, local, crop=(100, 100, 50, 50))
    drag(prep, (400, 400), (401, 401))
    assert prep.crop is None


def test_arrow_keys_nudge_escape_clears_enter_applies(astronaut: Path, local: Processor) -> None:
    prep = ImagePrep(astronaut, local, crop=(100, 100, 200, 100))
    original_hash = prep.image_ref.sha256

    key(prep, "ArrowRight")
    key(prep, "ArrowDown", shift=True)
    assert prep.crop == (101, 110, 200, 100)

    key(prep, "Escape")
    assert prep.crop is None

    prep.crop = (101, 110, 200, 100)
    key(prep, "Enter")
    assert prep.image.size == (200, 100)
    assert prep.crop is None
    assert prep.image_ref.sha256 != original_hash
    assert prep.image_ref.sha256[:12] in prep.controls.header.value  # the shown hash follows
    assert [s.operation for s in prep.history] == ["crop"]


def test_an_aspect_preset_locks_the_ratio_for_drawing_and_resizing(
    astronaut: Path, local: Processor
) -> None:
    prep = ImagePrep(astronaut, local, crop=(100, 100, 200, 100))

    prep.controls.aspect.value = "1:1"
    assert prep.controls.lock.value is True
    assert prep.crop == (150, 100, 100, 100)  # the largest square inside, centred

    drag(prep, (10, 300), (110, 340))
    _, _, w, h = prep.crop or (0, 0, 0, 0)
    assert w == h == 100

    prep.controls.aspect.value = "16:9"
    drag(prep, (0, 0), (320, 10))
    assert prep.crop == (0, 0, 320, 180)

    prep.controls.lock.value = False
    assert prep.controls.aspect.value == "Free"
    prep.crop = None
    drag(prep, (0, 0), (100, 10))
    assert prep.crop == (0, 0, 100, 10)


def test_the_box_can_be_typed_in_original_pixels(testdata: Path, local: Processor) -> None:
    prep = ImagePrep(testdata / "coffee_24mp.jpg", local)
    for name, value in zip("xywh", (1000, 500, 3000, 2000), strict=True):
        prep.controls.fields[name].value = value
    assert prep.crop == (1000, 500, 3000, 2000)

    prep.controls.fields["w"].value = 99999  # clamped to the image, never outside
    assert prep.crop == (1000, 500, 5000, 2000)


# -- buttons and status ------------------------------------------------------------------------


async def test_upscale_button_says_fresh_then_cache_hit(astronaut: Path, local: Processor) -> None:
    prep = ImagePrep(astronaut, local)

    prep.controls.scale.value = 2
    prep.buttons.upscale.click()
    await prep.wait()
    fresh = prep.status_text
    prep.buttons.upscale.click()
    await prep.wait()
    hit = prep.status_text

    assert "fresh" in fresh and " s " in fresh and "local" in fresh
    assert "cache hit" in hit and " ms " in hit
    assert prep.result is not None and prep.result.cache_hit
    assert prep.result.image.size == (1024, 1024)
    assert (
        "1024\u00d71024 px" in prep.controls.after_label.value
        and "512\u00d7512 px" in prep.controls.before_label.value
    )
    assert [s.cache_hit for s in prep.history] == [False, True]
    assert "cache hit" in prep.controls.history.value


async def test_operation_buttons_are_disabled_while_one_runs_and_cancel_stops_it(
    astronaut: Path, gated: tuple[Processor, GatedBackend]
) -> None:
    proc, backend = gated
    prep = ImagePrep(astronaut, proc)
    b = prep.buttons
    operations = (b.remove_background, b.upscale, b.face_detail)
    assert not enabled(prep)[b.cancel]

    prep.buttons.remove_background.click()
    await asyncio.wait_for(backend.started.wait(), 5)

    state = enabled(prep)
    assert not any(state[button] for button in (*operations, b.redo))
    assert state[b.cancel]
    assert "position 3" in prep.status_text  # the queue position from ProgressEvent

    prep.buttons.cancel.click()
    await asyncio.wait_for(prep.wait(), 5)

    assert backend.cancelled == 1
    assert "Cancelled" in prep.status_text
    assert proc.store.entries() == []  # nothing cached
    state = enabled(prep)
    assert all(state[button] for button in operations)
    assert not state[b.cancel]


async def test_cancel_from_a_script_raises_processing_cancelled(
    astronaut: Path, gated: tuple[Processor, GatedBackend]
) -> None:
    proc, backend = gated
    prep = ImagePrep(astronaut, proc)
    running = asyncio.ensure_future(prep.apply("face_detail"))
    await asyncio.wait_for(backend.started.wait(), 5)

    prep.cancel()

    with pytest.raises(ProcessingCancelled):
        await asyncio.wait_for(running, 5)
    assert not prep.busy


async def test_redo_runs_the_last_operation_again_fresh(
    astronaut: Path, gated: tuple[Processor, GatedBackend]
) -> None:
    proc, backend = gated
    backend.gate.set()
    prep = ImagePrep(astronaut, proc)
    assert prep.buttons.redo.disabled

    await prep.apply("upscale", scale=2)
    prep.buttons.redo.click()
    await prep.wait()

    assert backend.calls == 2
    assert prep.result is not None and not prep.result.cache_hit
    assert prep.result.params == {"scale": 2}
    assert "fresh" in prep.status_text


async def test_errors_show_what_to_do_and_the_widget_stays_usable(
    astronaut: Path, gated: tuple[Processor, GatedBackend]
) -> None:
    proc, backend = gated
    backend.gate.set()
    backend.fail_with = BackendError("The model is overloaded. Try again in a minute.")
    prep = ImagePrep(astronaut, proc)

    prep.buttons.face_detail.click()
    await prep.wait()

    assert "face detail failed" in prep.status_text
    assert "Try again in a minute" in prep.status_text
    assert "nbip-status-error" in prep.controls.status.value
    b = prep.buttons
    assert all(enabled(prep)[button] for button in (b.remove_background, b.upscale, b.face_detail))

    backend.fail_with = RuntimeError("boom")  # a bug, not a BackendError: still shown
    prep.buttons.upscale.click()
    await prep.wait()
    assert "RuntimeError: boom" in prep.status_text

    backend.fail_with = None
    prep.buttons.upscale.click()
    await prep.wait()
    assert "fresh" in prep.status_text


async def test_a_button_with_nothing_to_do_says_so(astronaut: Path, local: Processor) -> None:
    prep = ImagePrep(astronaut, local)
    prep.buttons.apply_crop.click()  # disabled in the browser; a script may still click
    assert "No crop box" in prep.status_text
    with pytest.raises(OperationError):
        await prep.apply("sharpen")


# -- chaining, history, scripting -----------------------------------------------------------------


async def test_crop_then_remove_background_then_upscale_chain_and_replay_from_cache(
    astronaut: Path, local: Processor, tmp_path: Path
) -> None:
    def chain(prep: ImagePrep) -> Any:
        async def run() -> None:
            prep.crop = (128, 64, 256, 256)
            prep.apply_crop()
            await prep.apply("remove_background")
            prep.buttons.use_result.click()
            await prep.apply("upscale", scale=2)

        return run()

    first = ImagePrep(astronaut, local)
    await chain(first)
    again = ImagePrep(astronaut, local)
    await chain(again)

    ops = [s.operation for s in again.history]
    assert ops == ["crop", "remove_background", "use_result", "upscale"]
    assert [s.cache_hit for s in first.history] == [None, False, None, False]
    assert [s.cache_hit for s in again.history] == [None, True, None, True]
    assert again.result is not None and again.result.image.size == (512, 512)
    assert again.result.image.mode == "RGBA"  # the cut-out survived the upscale
    assert [s.image_hash for s in again.history] == [s.image_hash for s in first.history]

    saved = again.save(tmp_path / "out.png")
    assert saved.read_bytes() == again.result.path.read_bytes()
    assert Image.open(again.save(tmp_path / "out.jpg")).mode == "RGB"

    again.buttons.reset.click()
    assert again.image.size == (512, 512) and again.result is None
    assert again.image_ref.sha256 == local.image(astronaut).sha256


def test_crop_property_clamps_into_the_image_and_none_clears(
    astronaut: Path, local: Processor, drawn: DrawLog
) -> None:
    prep = ImagePrep(astronaut, local)
    prep.crop = (400, 400, 500, 500)
    assert prep.crop == (400, 400, 112, 112)
    prep.crop = None
    assert prep.crop is None and prep.controls.fields["w"].value == 0
    assert prep.buttons.apply_crop.disabled


def test_repr_is_short_and_names_the_image(astronaut: Path, local: Processor) -> None:
    text = repr(ImagePrep(astronaut, local))
    assert text.startswith("<ImagePrep ") and "512x512" in text and len(text) < 200


def test_importing_nbimgprep_does_not_import_the_widget_libraries() -> None:
    code = (
        "import sys, nbimgprep; "
        "bad = [m for m in ('ipywidgets', 'ipycanvas', 'IPython') if m in sys.modules]; "
        "print(bad)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# -- observable state, errors, package data ----------------------------------------------------


async def test_crop_status_and_busy_are_observable_traits(
    astronaut: Path, gated: tuple[Processor, GatedBackend]
) -> None:
    proc, backend = gated
    prep = ImagePrep(astronaut, proc)
    seen: dict[str, list[Any]] = {"crop": [], "busy": [], "status_text": []}
    for name, values in seen.items():
        prep.observe(lambda change, values=values: values.append(change["new"]), names=name)

    drag(prep, (10, 10), (60, 40))
    prep.crop = None
    running = asyncio.ensure_future(prep.apply("upscale", scale=2))
    await asyncio.wait_for(backend.started.wait(), 5)
    assert prep.busy
    backend.gate.set()
    await running

    assert seen["crop"] == [(10, 10, 50, 30), None]
    assert seen["busy"] == [True, False]
    assert any("Running upscale 2x" in t for t in seen["status_text"])
    assert seen["status_text"][-1] == prep.status_text
    assert prep.status_kind == "fresh"


def test_a_bad_crop_is_a_clear_error_and_the_widget_stays_usable(
    astronaut: Path, local: Processor
) -> None:
    prep = ImagePrep(astronaut, local, crop=(10, 10, 100, 100))
    for bad in [(1, 2, 3), "10,10,5,5", (0, 0, 0, 5), ("a", 0, 5, 5)]:
        with pytest.raises(OperationError, match="crop"):
            prep.crop = bad  # type: ignore[assignment]
        assert prep.crop == (10, 10, 100, 100)
    prep.crop = None
    assert prep.crop is None
    drag(prep, (20, 20), (80, 90))
    assert prep.crop == (20, 20, 60, 70)
    assert prep.apply_crop().size == (60, 70)


def test_save_to_an_unknown_suffix_or_a_missing_folder_says_so(
    astronaut: Path, local: Processor, tmp_path: Path
) -> None:
    prep = ImagePrep(astronaut, local)
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(NbimgprepError, match=r"'\.xyz' names no image format"):
        prep.save(out / "a.xyz")
    with pytest.raises(NbimgprepError, match="no suffix"):
        prep.save(out / "a")
    with pytest.raises(NbimgprepError, match="does not exist; create it first"):
        prep.save(out / "missing" / "a.png")
    with pytest.raises(NbimgprepError, match="is a folder"):
        prep.save(out)
    assert list(out.iterdir()) == []  # nothing written
    assert Image.open(prep.save(out / "a.webp")).size == (512, 512)


def test_the_stylesheet_is_package_data_with_the_checkerboard(
    astronaut: Path, local: Processor
) -> None:
    from importlib import resources

    from nbimgprep.thumbnails import CHECKERBOARD_CSS

    css = resources.files("nbimgprep.widget").joinpath("style.css").read_text()
    prep = ImagePrep(astronaut, local)
    style = prep.controls.style.value
    assert ".nbip-root" in css and css in style
    assert CHECKERBOARD_CSS in style
    assert "nbip-checker" in prep.canvas._dom_classes


def test_operation_titles_are_written_once() -> None:
    from nbimgprep import OPERATIONS

    assert OPERATIONS["upscale"].describe({"scale": 4}) == "upscale 4x"
    assert OPERATIONS["upscale"].describe({}) == "upscale 2x"
    assert OPERATIONS["remove_background"].describe({}) == "remove background"
    assert OPERATIONS["face_detail"].describe() == "face detail"


# -- compare -----------------------------------------------------------------------------------


def canvas_sends(canvas: Any, event: str, **content: Any) -> None:
    msg = {"content": {"data": {"method": "custom", "content": {"event": event, **content}}}}
    canvas._handle_msg({**msg, "buffers": []})


async def test_compare_shows_the_input_under_the_result_at_the_results_scale(
    astronaut: Path, local: Processor, drawn: DrawLog
) -> None:
    prep = ImagePrep(astronaut, local)  # 512x512: the 2x result is previewed at 1024
    view = prep.controls.compare
    prep.compare = True
    assert view.toggle.disabled and view.canvas.layout.display == "none"  # nothing to compare

    drawn.clear()
    await prep.apply("upscale", scale=2)

    assert view.toggle.value is True and not view.toggle.disabled
    assert view.canvas.layout.display != "none"
    assert prep.controls.after_image.layout.display == "none"  # the view replaces it
    assert (view.canvas.width, view.canvas.height) == (1024, 1024)
    images = [c for c in drawn.commands() if c.name == "drawImage"]
    under = [c for c in images if c.layer == view.canvas[0].model_id]
    over = [c for c in images if c.layer == view.canvas[1].model_id]
    assert under and under[-1].args[1:] == [0, 0, 1024, 1024]  # the input, scaled up
    assert over[-1].args == [f"IPY_MODEL_{prep.controls.after_image.model_id}", 0, 0, 1024, 1024]

    drawn.clear()
    canvas_sends(view.canvas, "mouse_down", x=256, y=500)
    canvas_sends(view.canvas, "mouse_move", x=768, y=500)
    canvas_sends(view.canvas, "mouse_up", x=768, y=500)
    assert view.split == 0.75
    layers = {c.layer for c in drawn.commands()}
    assert view.canvas[0].model_id not in layers  # the input is not redrawn for a move
    clip = [c for c in drawn.commands() if c.name == "rect" and c.layer == view.canvas[1].model_id]
    assert clip[-1].args == [768.0, 0, 256.0, 1024]  # the result, right of the divider

    view.toggle.value = False  # the button and the trait are one
    assert prep.compare is False
    assert view.canvas.layout.display == "none"
    assert prep.controls.after_image.layout.display != "none"
