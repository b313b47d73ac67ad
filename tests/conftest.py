"""Shared fixtures: the real test photos, a fresh store per test, and a counting backend."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from nbimgprep.backends import BackendOutput, ProgressReporter
from nbimgprep.images import ImageRef, encode_png
from nbimgprep.operations import Endpoint, Operation

TESTDATA = Path(__file__).resolve().parent.parent.parent / "shared" / "testdata"


@pytest.fixture(scope="session")
def testdata() -> Path:
    """../shared/testdata: a missing folder fails the test run, it is never skipped."""
    assert TESTDATA.is_dir(), f"test photos not found at {TESTDATA} (../shared/testdata)"
    return TESTDATA


@pytest.fixture
def cache_dir(tmp_path: Path) -> Path:
    return tmp_path / "cache"


class CountingBackend:
    """A backend that really resizes (so results are real images) and counts its calls.

    ``gate`` lets a test hold every call until it says so, to pile up concurrent callers or
    to cancel one mid-call; ``started`` is set when a call begins; ``cancelled`` counts calls
    cancelled while waiting at the gate.
    """

    name = "local"

    def __init__(self, delay: float = 0.0) -> None:
        self.calls = 0
        self.cancelled = 0
        self.delay = delay
        self.position = 1
        self.started = asyncio.Event()
        self.gate: asyncio.Event | None = None
        self.fail_with: BaseException | None = None

    def endpoint_for(self, operation: Operation) -> Endpoint:
        return Endpoint(f"test/{operation.name}")

    async def run(
        self,
        operation: Operation,
        image: ImageRef,
        params: Mapping[str, Any],
        endpoint: Endpoint,
        report: ProgressReporter,
    ) -> BackendOutput:
        self.calls += 1
        report("queued", position=self.position)
        self.started.set()
        if self.gate is not None:
            try:
                await self.gate.wait()
            except asyncio.CancelledError:
                self.cancelled += 1
                raise
        if self.delay:
            await asyncio.sleep(self.delay)
        report("running", logs=["working"])
        if self.fail_with is not None:
            raise self.fail_with
        img = image.open()
        scale = int(params.get("scale", 1))
        out = img.resize((img.width * scale, img.height * scale))
        return BackendOutput(encode_png(out), "image/png")

    async def aclose(self) -> None:
        pass


@pytest.fixture
def counting_backend() -> CountingBackend:
    return CountingBackend()


@pytest.fixture(scope="session")
def photos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Small photos made for the cache-command tests (see cachefill.py)."""
    from cachefill import small_photos

    return small_photos(tmp_path_factory.mktemp("photos"))


@pytest.fixture(scope="session")
def engine_store(tmp_path_factory: pytest.TempPathFactory, photos: dict[str, Path]) -> Path:
    """A store the real engine filled: 3 images, 5 results, made once per session."""
    from cachefill import fill_with_engine

    root = tmp_path_factory.mktemp("engine") / "cache"
    fill_with_engine(root, photos)
    return root


@pytest.fixture
def cache(tmp_path: Path, engine_store: Path) -> Path:
    """This test's own copy of the engine-filled store."""
    import shutil

    root = tmp_path / "cache"
    shutil.copytree(engine_store, root)
    return root
