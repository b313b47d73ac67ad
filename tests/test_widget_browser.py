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

import json
import os
import secrets
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import playwright.sync_api as playwright_sync
import pytest

expect = playwright_sync.expect

REPO = Path(__file__).resolve().parent.parent
ARTIFACTS = REPO / "test-artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SERVER_START_SECONDS = 90
UI_TIMEOUT_MS = 60_000

pytestmark = pytest.mark.browser


@dataclass
class Lab:
    url: str
    token: str
    root: Path
    log: Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def isolated_env(home: Path) -> dict[str, str]:
    """Jupyter and IPython settings in a temporary folder: no user config leaks in or out."""
    env = dict(os.environ)
    for var, sub in {
        "JUPYTER_CONFIG_DIR": "config",
        "JUPYTER_DATA_DIR": "data",
        "JUPYTER_RUNTIME_DIR": "runtime",
        "JUPYTERLAB_SETTINGS_DIR": "lab-settings",
        "JUPYTERLAB_WORKSPACES_DIR": "lab-workspaces",
        "IPYTHONDIR": "ipython",
    }.items():
        (home / sub).mkdir(parents=True, exist_ok=True)
        env[var] = str(home / sub)
    env.pop("FAL_KEY", None)  # the local backend, whatever the machine has
    # No news or update toasts over the widget in screenshots.
    settings = home / "lab-settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True, exist_ok=True)
    (settings / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False})
    )
    return env


def write_notebook(path: Path, photo: Path, cache_dir: Path) -> None:
    source = (
        "from nbimgprep import ImagePrep, Processor\n"
        f'proc = Processor(backend="local", cache_dir={str(cache_dir)!r})\n'
        f"prep = ImagePrep({str(photo)!r}, proc)\n"
        "prep"
    )
    notebook = {
        "cells": [
            {
                "cell_type": "code",
                "execution_count": None,
                "id": "imageprep",
                "metadata": {},
                "outputs": [],
                "source": source,
            }
        ],
        "metadata": {
            "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"}
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    path.write_text(json.dumps(notebook, indent=1))


@pytest.fixture
def lab(tmp_path: Path, testdata: Path) -> Iterator[Lab]:
    photo = testdata / "astronaut.png"
    assert photo.is_file(), f"missing test photo {photo}"
    root = tmp_path / "root"
    root.mkdir()
    write_notebook(root / "widget.ipynb", photo, tmp_path / "cache")
    port, token = free_port(), secrets.token_hex(16)
    log = tmp_path / "jupyterlab.log"
    args = [
        sys.executable,
        "-m",
        "jupyterlab",
        "--no-browser",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={root}",
        "--LabApp.expose_app_in_browser=True",
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        args.append("--allow-root")
    server = subprocess.Popen(
        args,
        cwd=root,
        env=isolated_env(tmp_path / "jupyter-home"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    ready = threading.Event()

    def follow_log() -> None:
        assert server.stderr is not None
        with log.open("w") as out:
            for line in server.stderr:
                out.write(line)
                out.flush()
                if f"127.0.0.1:{port}/lab" in line:
                    ready.set()
        ready.set()  # the server ended: stop waiting

    reader = threading.Thread(target=follow_log, daemon=True)
    reader.start()
    try:
        started = ready.wait(SERVER_START_SECONDS)
        assert started and server.poll() is None, (
            f"JupyterLab did not start within {SERVER_START_SECONDS} s:\n{log.read_text()}"
        )
        yield Lab(f"http://127.0.0.1:{port}", token, root, log)
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=10)
        reader.join(timeout=10)


@pytest.fixture
def page(lab: Lab) -> Iterator[object]:
    ARTIFACTS.mkdir(exist_ok=True)
    with playwright_sync.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            context = browser.new_context(viewport={"width": 1360, "height": 1000})
            page = context.new_page()
            page.set_default_timeout(UI_TIMEOUT_MS)
            expect.set_options(timeout=UI_TIMEOUT_MS)
            yield page
        finally:
            browser.close()


def shot(target: object, name: str) -> Path:
    path = ARTIFACTS / f"widget-{name}.png"
    target.screenshot(path=str(path))  # type: ignore[attr-defined]
    return path


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


def run_notebook(page: object) -> None:
    page.wait_for_function(  # type: ignore[attr-defined]
        "() => window.jupyterapp && window.jupyterapp.shell.currentWidget"
        " && window.jupyterapp.shell.currentWidget.sessionContext"
        " && window.jupyterapp.shell.currentWidget.sessionContext.session"
        " && window.jupyterapp.shell.currentWidget.sessionContext.session.kernel"
        " && window.jupyterapp.shell.currentWidget.sessionContext.session.kernel.connectionStatus"
        " === 'connected'"
    )
    page.evaluate(  # type: ignore[attr-defined]
        "() => window.jupyterapp.commands.execute('notebook:run-all-cells')"
    )


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
