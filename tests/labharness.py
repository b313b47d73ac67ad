"""A real JupyterLab and a headless Debian Chromium, for the browser tests.

``running_lab(root, home)`` starts JupyterLab on 127.0.0.1 with a fixed token, ``root`` as
its root and its own Jupyter settings folders below ``home``, and always shuts it down;
``browser_page()`` opens Chromium through Playwright; ``write_notebook`` writes a one-cell
notebook; ``run_notebook`` runs it once the kernel is connected; ``shot`` saves a
screenshot to test-artifacts/ for a human to look at. Every wait is bounded by a
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
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import playwright.sync_api as playwright_sync

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


@dataclass
class Lab:
    url: str
    token: str
    root: Path
    log: Path

    def notebook_url(self, name: str) -> str:
        return f"{self.url}/lab/tree/{name}?token={self.token}"


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


def write_notebook(path: Path, source: str, cell_id: str = "cell") -> None:
    """A notebook of one code cell holding ``source``."""
    notebook = {
        "cells": [
            {
                "cell_type": "code",
                "execution_count": None,
                "id": cell_id,
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


@contextmanager
def running_lab(root: Path, home: Path) -> Iterator[Lab]:
    """JupyterLab serving ``root``; its settings and log live below ``home``."""
    port, token = free_port(), secrets.token_hex(16)
    log = home / "jupyterlab.log"
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
        env=isolated_env(home / "jupyter-home"),
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


@contextmanager
def browser_page() -> Iterator[playwright_sync.Page]:
    """A page in headless Chromium; the browser is always closed."""
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
    """Save a screenshot of a page or locator as test-artifacts/NAME.png."""
    path = ARTIFACTS / f"{name}.png"
    target.screenshot(path=str(path))  # type: ignore[attr-defined]
    return path


def run_notebook(page: object) -> None:
    """Run every cell of the open notebook once its kernel is connected."""
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
