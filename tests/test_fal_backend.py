"""FalBackend against the fake fal server (tests/fakefal.py), with the REAL fal_client.

Each fault is asserted twice: by the server's call counters (what went over the wire) and by
the error a user sees. The fake is reached by monkeypatching fal_client's host constants; see
the docstring of ``fakefal`` for why that and not TLS.
"""

from __future__ import annotations

import asyncio
import io
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from fakefal import FakeFal, Fault, fake_fal  # noqa: F401  (fake_fal is a fixture)
from nbimgprep.backends import BackendOutput, find_fal_key
from nbimgprep.backends.fal import FalBackend
from nbimgprep.errors import (
    BackendError,
    FalKeyMissing,
    FalKeyRejected,
    FalTimeout,
    InvalidResult,
    RateLimited,
)
from nbimgprep.images import ImageRef
from nbimgprep.operations import Endpoint, get_operation

TESTDATA = Path(__file__).parent.parent.parent / "shared" / "testdata"
KEY = "fake-key-id:fake-key-secret"


class Progress:
    """A ProgressReporter that remembers what it was told, with events to wait on."""

    def __init__(self) -> None:
        self.events: list[tuple[str, int | None, tuple[str, ...]]] = []
        self.queued = asyncio.Event()
        self.running = asyncio.Event()

    def __call__(self, kind: str, *, position: int | None = None, logs: Sequence[str] = ()) -> None:
        self.events.append((kind, position, tuple(logs)))
        (self.running if kind == "running" else self.queued).set()

    @property
    def logs(self) -> list[str]:
        return [line for _, _, logs in self.events for line in logs]


def photo(name: str) -> ImageRef:
    path = TESTDATA / name
    assert path.is_file(), f"missing test photo {path}"
    return ImageRef(path)


async def run(
    backend: FalBackend,
    operation: str,
    image: ImageRef,
    progress: Progress | None = None,
    **params: Any,
) -> BackendOutput:
    op = get_operation(operation)
    return await backend.run(
        op, image, op.canonical_params(params), backend.endpoint_for(op), progress or Progress()
    )


def opened(output: BackendOutput) -> Image.Image:
    return Image.open(io.BytesIO(output.data))


@pytest.fixture
def fal(fake_fal: FakeFal) -> FalBackend:  # noqa: F811
    return FalBackend(environ={"FAL_KEY": KEY}, timeout=10)


# -- the happy paths ---------------------------------------------------------------------------


async def test_remove_background_returns_a_png_with_alpha(
    fake_fal: FakeFal,  # noqa: F811
    fal: FalBackend,
) -> None:
    out = await run(fal, "remove_background", photo("chelsea.png"))

    img = opened(out)
    assert (img.format, img.mode, img.size) == ("PNG", "RGBA", (451, 300))
    assert out.content_type == "image/png"
    assert out.request_id in fake_fal.requests
    assert out.remote_url == fake_fal.url + f"/files/out/{out.request_id}.png"
    assert fake_fal.calls["submit"] == 1 and fake_fal.calls["download"] == 1
    assert fake_fal.calls["upload"] == 0, "a small image travels inline"
    sent = fake_fal.submitted_arguments[0]
    assert sent["output_format"] == "png"
    assert sent["image_url"].startswith("data:image/png;base64,")


async def test_upscale_sends_the_factor_and_gets_a_bigger_image(
    fake_fal: FakeFal,  # noqa: F811
    fal: FalBackend,
) -> None:
    out = await run(fal, "upscale", photo("rocket.jpg"), scale=4)

    assert opened(out).size == (640 * 4, 427 * 4)
    assert fake_fal.submitted_arguments[0]["upscale_factor"] == 4
    # a plain upright JPEG is sent as it is, not re-encoded
    assert fake_fal.submitted_arguments[0]["image_url"].startswith("data:image/jpeg;base64,")


async def test_face_detail_keeps_the_input_size(
    fake_fal: FakeFal,  # noqa: F811
    fal: FalBackend,
) -> None:
    out = await run(fal, "face_detail", photo("astronaut.png"))

    assert opened(out).size == (512, 512)
    assert fake_fal.submitted_arguments[0]["upscaling"] == 1


async def test_an_endpoint_override_sends_its_arguments(fake_fal: FakeFal) -> None:  # noqa: F811
    fal = FalBackend(
        environ={"FAL_KEY": KEY}, endpoints={"upscale": ("fal-ai/aura-sr", {"checkpoint": "v2"})}
    )
    assert fal.endpoint_for(get_operation("upscale")) == Endpoint(
        "fal-ai/aura-sr", {"checkpoint": "v2"}
    )
    assert fal.endpoint_for(get_operation("face_detail")) == Endpoint("fal-ai/codeformer")

    out = await run(fal, "upscale", photo("chelsea.png").crop((100, 50, 120, 90)))

    assert opened(out).size == (120 * 4, 90 * 4)  # aura-sr is a 4x model
    assert fake_fal.submitted_arguments[0]["checkpoint"] == "v2"


async def test_a_large_input_is_uploaded_to_fal_storage(fake_fal: FakeFal) -> None:  # noqa: F811
    fal = FalBackend(environ={"FAL_KEY": KEY}, data_uri_limit=100_000)

    out = await run(fal, "remove_background", photo("chelsea.png"))

    assert opened(out).size == (451, 300)
    assert fake_fal.calls["token"] == 1 and fake_fal.calls["upload"] == 1
    image_url = fake_fal.submitted_arguments[0]["image_url"]
    assert image_url.startswith(fake_fal.url + "/files/in/")
    assert image_url.endswith("/input.png")  # no local file name leaves the machine
    assert fake_fal.file(image_url[len(fake_fal.url) :]) == photo("chelsea.png").data


async def test_the_key_goes_to_fal_hosts_only(fake_fal: FakeFal) -> None:  # noqa: F811
    fal = FalBackend(environ={"FAL_KEY": KEY}, data_uri_limit=100_000)

    await run(fal, "remove_background", photo("chelsea.png"))

    by_route = {route: auth for route, auth in fake_fal.auth_seen}
    assert by_route["submit"] == f"Key {KEY}" and by_route["status"] == f"Key {KEY}"
    assert by_route["token"] == f"Key {KEY}"
    assert by_route["upload"] == "Bearer fake-cdn-token"
    assert by_route["download"] is None


# -- queue, progress, polling ------------------------------------------------------------------


async def test_a_queue_with_one_slot_reports_position_then_logs(
    fake_fal: FakeFal,  # noqa: F811
    fal: FalBackend,
) -> None:
    fake_fal.slots = 1
    fake_fal.hold()
    first, second = Progress(), Progress()
    a = asyncio.create_task(run(fal, "upscale", photo("chelsea.png"), first))
    await first.running.wait()
    b = asyncio.create_task(run(fal, "face_detail", photo("chelsea.png"), second))
    while ("queued", 0, ()) not in second.events:
        await asyncio.sleep(0.01)
    assert fake_fal.states() == ["IN_PROGRESS", "IN_QUEUE"]

    fake_fal.release()
    await asyncio.gather(a, b)

    assert fake_fal.max_running_seen == 1
    kinds = [kind for kind, _, _ in second.events]
    assert kinds.index("running") > kinds.index("queued")
    assert "Running fal-ai/codeformer" in second.logs and "Done" in second.logs
    assert first.logs.count("Running fal-ai/seedvr/upscale/image") == 1, "each line once"


async def test_a_finished_request_is_noticed_at_once_through_the_status_stream(
    fake_fal: FakeFal,  # noqa: F811
    fal: FalBackend,
) -> None:
    fake_fal.latency = 1.0

    out = await run(fal, "upscale", photo("chelsea.png"))

    request = fake_fal.requests[out.request_id]
    # measured by the server: from the end of the run to the client being told it is done
    assert request.notice_latency < 0.1 * fake_fal.latency
    assert fake_fal.calls["stream"] == 1, "one stream, no polling"
    assert fake_fal.calls["status"] == 1  # fal_client's get() checks once before the result


async def test_without_the_stream_polling_notices_within_a_tenth_of_the_run_time(
    fake_fal: FakeFal,  # noqa: F811
    fal: FalBackend,
) -> None:
    fake_fal.streaming = False
    fake_fal.latency = 2.0  # a pause is 5% of the time waited: 0.1 s here, 0.1 s of margin

    out = await run(fal, "upscale", photo("chelsea.png"))

    request = fake_fal.requests[out.request_id]
    assert request.notice_latency < 0.1 * fake_fal.latency
    assert fake_fal.calls["stream"] == 0
    assert fake_fal.calls["status"] <= 40, "pauses grow with the elapsed time"


async def test_a_dropped_status_stream_is_opened_again(
    fake_fal: FakeFal,  # noqa: F811
    fal: FalBackend,
) -> None:
    fake_fal.latency = 0.2
    fake_fal.fail("stream", drop=True)

    out = await run(fal, "upscale", photo("chelsea.png"))

    assert out.data
    assert fake_fal.calls["stream"] == 2 and fake_fal.calls["status"] == 1


async def test_a_stream_that_keeps_failing_falls_back_to_polling(
    fake_fal: FakeFal,  # noqa: F811
    fal: FalBackend,
) -> None:
    fake_fal.latency = 0.2
    fake_fal.fail("stream", malformed=True, times=3)

    out = await run(fal, "upscale", photo("chelsea.png"))

    assert out.data
    assert fake_fal.calls["stream"] == 3 and fake_fal.calls["status"] >= 2


# -- errors fal_client retries, and errors it does not ---------------------------------------


async def test_429_with_retry_after_is_retried_by_fal_client(
    fake_fal: FakeFal,  # noqa: F811
    fal: FalBackend,
) -> None:
    fake_fal.fail(
        "submit",
        status=429,
        body=b'{"detail": "Too many requests"}',
        headers={"Retry-After": "1"},
        times=2,
    )

    out = await run(fal, "remove_background", photo("chelsea.png"))

    assert out.data and fake_fal.calls["submit"] == 3
    assert len(fake_fal.requests) == 1


@pytest.fixture
def fast_fal_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """fal_client's own retries (10 attempts, about 30 s of backoff), without the waiting."""
    import fal_client.client

    monkeypatch.setattr(fal_client.client, "_get_retry_delay", lambda *args, **kw: 0.001)


@pytest.mark.usefixtures("fast_fal_retries")
async def test_a_429_that_outlasts_fal_clients_retries_is_rate_limited(
    fake_fal: FakeFal,  # noqa: F811
    fal: FalBackend,
) -> None:
    too_many = Fault(
        status=429, body=b'{"detail": "Too many requests"}', headers={"Retry-After": "7"}
    )
    fake_fal.fail("submit", too_many, times=10)

    with pytest.raises(RateLimited, match="rate-limiting") as caught:
        await run(fal, "remove_background", photo("chelsea.png"))

    assert caught.value.retry_after == 7.0 and "wait 7 s" in str(caught.value)
    assert fake_fal.calls["submit"] == 10, "fal_client's 10 attempts, no more"
    assert not fake_fal.requests


@pytest.mark.usefixtures("fast_fal_retries")
async def test_a_429_without_retry_after_is_rate_limited_too(
    fake_fal: FakeFal,  # noqa: F811
    fal: FalBackend,
) -> None:
    fake_fal.fail("submit", status=429, body=b'{"detail": "Too many requests"}', times=10)

    with pytest.raises(RateLimited) as caught:
        await run(fal, "remove_background", photo("chelsea.png"))

    assert caught.value.retry_after is None
    assert isinstance(caught.value, BackendError)


async def test_500_is_not_retried(fake_fal: FakeFal, fal: FalBackend) -> None:  # noqa: F811
    fake_fal.fail("submit", status=500, body=b'{"detail": "database exploded"}')

    with pytest.raises(BackendError, match=r"HTTP 500.*database exploded") as caught:
        await run(fal, "remove_background", photo("chelsea.png"))

    assert fake_fal.calls["submit"] == 1
    assert "try again later" in str(caught.value)


async def test_an_ingress_503_is_retried(fake_fal: FakeFal, fal: FalBackend) -> None:  # noqa: F811
    fake_fal.fail("submit", status=503, body=b"<html><center>nginx</center></html>")

    await run(fal, "remove_background", photo("chelsea.png"))

    assert fake_fal.calls["submit"] == 2


async def test_a_503_from_the_app_is_not_retried(
    fake_fal: FakeFal,  # noqa: F811
    fal: FalBackend,
) -> None:
    fake_fal.fail(
        "submit",
        status=503,
        body=b'{"detail": "Service Unavailable"}',
        headers={"x-fal-request-id": "abc"},
    )

    with pytest.raises(BackendError, match="HTTP 503"):
        await run(fal, "remove_background", photo("chelsea.png"))

    assert fake_fal.calls["submit"] == 1


async def test_a_dropped_connection_while_polling_is_retried(
    fake_fal: FakeFal,  # noqa: F811
    fal: FalBackend,
) -> None:
    fake_fal.streaming = False
    fake_fal.fail("status", drop=True)

    out = await run(fal, "remove_background", photo("chelsea.png"))

    assert out.data  # fal_client retried the dropped poll
    assert fake_fal.calls["status"] >= 3  # dropped, retried, ..., then get()'s own check


@pytest.mark.usefixtures("fast_fal_retries")
async def test_connections_dropped_past_fal_clients_retries_are_a_clear_error(
    fake_fal: FakeFal,  # noqa: F811
    fal: FalBackend,
) -> None:
    fake_fal.streaming = False
    fake_fal.hold()
    fake_fal.fail("status", drop=True, times=10)

    with pytest.raises(BackendError, match=r"Could not reach fal\.ai while polling the status"):
        await run(fal, "remove_background", photo("chelsea.png"))

    assert fake_fal.calls["status"] == 10, "fal_client's 10 attempts, no more"
    assert fake_fal.calls["cancel"] == 1 and fake_fal.states() == ["CANCELLED"]


async def test_malformed_json_on_submit_is_an_invalid_result(
    fake_fal: FakeFal,  # noqa: F811
    fal: FalBackend,
) -> None:
    fake_fal.fail("submit", malformed=True)

    with pytest.raises(InvalidResult, match="malformed response while submitting"):
        await run(fal, "remove_background", photo("chelsea.png"))

    assert fake_fal.calls["submit"] == 1


async def test_malformed_status_cancels_the_request(
    fake_fal: FakeFal,  # noqa: F811
    fal: FalBackend,
) -> None:
    fake_fal.streaming = False
    fake_fal.hold()
    fake_fal.fail("status", malformed=True)

    with pytest.raises(InvalidResult, match="polling the status"):
        await run(fal, "remove_background", photo("chelsea.png"))

    assert fake_fal.calls["cancel"] == 1
    assert fake_fal.states() == ["CANCELLED"]


async def test_completed_with_an_error(fake_fal: FakeFal, fal: FalBackend) -> None:  # noqa: F811
    fake_fal.outcome = "error"

    with pytest.raises(BackendError, match="CUDA error: out of memory"):
        await run(fal, "remove_background", photo("chelsea.png"))

    assert fake_fal.calls["result"] == 1 and fake_fal.calls["download"] == 0
    assert fake_fal.calls["cancel"] == 0


async def test_422_names_the_offending_fields(fake_fal: FakeFal) -> None:  # noqa: F811
    fal = FalBackend(
        environ={"FAL_KEY": KEY}, endpoints={"upscale": ("fal-ai/aura-sr", {"checkpoint": "v9"})}
    )

    with pytest.raises(BackendError, match=r"422.*checkpoint: unexpected value") as caught:
        await run(fal, "upscale", photo("chelsea.png"))

    assert "Processor(endpoints=...)" in str(caught.value)
    assert fake_fal.calls["submit"] == 1 and fake_fal.calls["download"] == 0


async def test_an_unknown_endpoint(fake_fal: FakeFal) -> None:  # noqa: F811
    fal = FalBackend(environ={"FAL_KEY": KEY}, endpoints={"upscale": "fal-ai/no-such-model"})

    with pytest.raises(BackendError, match="no endpoint 'fal-ai/no-such-model'"):
        await run(fal, "upscale", photo("chelsea.png"))

    assert fake_fal.calls["submit"] == 1


# -- the result download ---------------------------------------------------------------------


async def test_an_expired_result_url_is_not_retried(
    fake_fal: FakeFal,  # noqa: F811
    fal: FalBackend,
) -> None:
    fake_fal.outcome = "expired"

    with pytest.raises(InvalidResult, match=r"is gone .*HTTP 404"):
        await run(fal, "remove_background", photo("chelsea.png"))

    assert fake_fal.calls["download"] == 1


@pytest.mark.parametrize(
    "fault",
    [
        Fault(status=503, body=b"busy", headers={"Retry-After": "0"}),
        Fault(drop=True),
    ],
    ids=["503", "dropped"],
)
async def test_the_download_is_retried_on_transient_failures(
    fake_fal: FakeFal,  # noqa: F811
    fal: FalBackend,
    fault: Fault,
) -> None:
    fake_fal.fail("download", fault)

    out = await run(fal, "remove_background", photo("chelsea.png"))

    assert opened(out).size == (451, 300)
    assert fake_fal.calls["download"] == 2


async def test_the_download_gives_up_after_three_attempts(
    fake_fal: FakeFal,  # noqa: F811
    fal: FalBackend,
) -> None:
    fake_fal.fail("download", status=502, body=b"bad gateway", times=3)

    with pytest.raises(BackendError, match="after 3 attempts"):
        await run(fal, "remove_background", photo("chelsea.png"))

    assert fake_fal.calls["download"] == 3


async def test_an_oversized_result_is_refused(fake_fal: FakeFal) -> None:  # noqa: F811
    fal = FalBackend(environ={"FAL_KEY": KEY}, max_result_bytes=1_000_000)
    fake_fal.outcome = "oversized"
    fake_fal.oversized_bytes = 3_000_000

    with pytest.raises(InvalidResult, match="larger than 1 MB"):
        await run(fal, "remove_background", photo("chelsea.png"))

    assert fake_fal.calls["download"] == 1


async def test_a_result_that_is_not_an_image(
    fake_fal: FakeFal,  # noqa: F811
    fal: FalBackend,
) -> None:
    fake_fal.outcome = "not_image"

    with pytest.raises(InvalidResult, match="text/html, not an image"):
        await run(fal, "remove_background", photo("chelsea.png"))

    assert fake_fal.calls["download"] == 1


async def test_a_result_without_an_image(fake_fal: FakeFal, fal: FalBackend) -> None:  # noqa: F811
    fake_fal.outcome = "malformed_result"

    with pytest.raises(InvalidResult, match=r"without an image \(fields: images\)"):
        await run(fal, "remove_background", photo("chelsea.png"))

    assert fake_fal.calls["download"] == 0


# -- timeouts and cancellation ---------------------------------------------------------------


async def test_a_request_that_never_completes_times_out_and_is_cancelled(
    fake_fal: FakeFal,  # noqa: F811
) -> None:
    fal = FalBackend(environ={"FAL_KEY": KEY}, timeout=2)  # room for a loaded machine
    fake_fal.hold()

    with pytest.raises(FalTimeout, match=r"did not finish within 2 s") as caught:
        await run(fal, "remove_background", photo("chelsea.png"))

    (request_id,) = fake_fal.requests
    assert request_id in str(caught.value) and "cancelled on the server" in str(caught.value)
    assert fake_fal.calls["cancel"] == 1
    assert fake_fal.states() == ["CANCELLED"]
    assert isinstance(caught.value, TimeoutError)


async def test_a_status_stream_that_hangs_times_out_and_is_cancelled(
    fake_fal: FakeFal,  # noqa: F811
) -> None:
    fal = FalBackend(environ={"FAL_KEY": KEY}, timeout=2)
    hang = threading.Event()
    fake_fal.hold()
    fake_fal.fail("stream", Fault(stall=hang))  # the stream answers nothing at all

    with pytest.raises(FalTimeout, match="cancelled on the server"):
        await run(fal, "remove_background", photo("chelsea.png"))
    hang.set()

    assert fake_fal.calls["stream"] == 1 and fake_fal.calls["cancel"] == 1
    assert fake_fal.states() == ["CANCELLED"]


async def test_a_timeout_while_downloading_has_nothing_to_cancel(
    fake_fal: FakeFal,  # noqa: F811
) -> None:
    fal = FalBackend(environ={"FAL_KEY": KEY}, timeout=4)
    stalled = threading.Event()
    fake_fal.fail("download", Fault(stall=stalled))

    with pytest.raises(FalTimeout) as caught:  # a small image: the model's work is quick
        await run(fal, "remove_background", photo("chelsea.png").crop((0, 0, 64, 48)))
    stalled.set()

    assert "cancelled on the server" not in str(caught.value)
    assert fake_fal.calls["download"] == 1 and fake_fal.calls["cancel"] == 0
    assert fake_fal.states() == ["COMPLETED"]


async def test_cancelling_the_task_cancels_the_request_on_the_server(
    fake_fal: FakeFal,  # noqa: F811
    fal: FalBackend,
) -> None:
    fake_fal.hold()
    progress = Progress()
    task = asyncio.create_task(run(fal, "upscale", photo("chelsea.png"), progress))
    await progress.running.wait()

    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    assert fake_fal.calls["cancel"] == 1
    assert fake_fal.states() == ["CANCELLED"]


# -- the key -----------------------------------------------------------------------------------


async def test_no_key_is_a_clear_error_before_any_call(fake_fal: FakeFal) -> None:  # noqa: F811
    fal = FalBackend(environ={})

    with pytest.raises(FalKeyMissing, match="FAL_KEY is not set"):
        await run(fal, "upscale", photo("chelsea.png"))

    assert sum(fake_fal.calls.values()) == 0


async def test_a_rejected_key(fake_fal: FakeFal) -> None:  # noqa: F811
    fal = FalBackend("wrong-id:wrong-secret")

    with pytest.raises(FalKeyRejected, match=r"FAL_KEY rejected by fal.ai \(HTTP 401\)") as caught:
        await run(fal, "upscale", photo("chelsea.png"))

    assert "wrong-secret" not in str(caught.value)
    assert fake_fal.calls["submit"] == 1


async def test_a_rejected_key_while_uploading(fake_fal: FakeFal) -> None:  # noqa: F811
    fal = FalBackend("wrong-id:wrong-secret", data_uri_limit=1000)

    with pytest.raises(FalKeyRejected, match="while uploading the image"):
        await run(fal, "upscale", photo("chelsea.png"))

    # the CDN token is refused, then fal_client falls back to fal storage: refused too
    assert fake_fal.calls["token"] == 1 and fake_fal.calls["initiate"] == 1
    assert fake_fal.calls["submit"] == 0


def test_the_key_comes_from_the_argument_or_the_environment() -> None:
    assert repr(FalBackend(environ={})).endswith("FAL_KEY not set)")
    assert repr(FalBackend("k:s", environ={})).endswith("FAL_KEY set)")
    assert find_fal_key({"FAL_KEY": "a:b"}) == "a:b"
    assert find_fal_key({"FAL_KEY_ID": "a", "FAL_KEY_SECRET": "b"}) == "a:b"
    assert find_fal_key({"FAL_KEY": "", "FAL_KEY_ID": "a"}) is None
    assert find_fal_key({}) is None


def test_the_repr_never_shows_the_key() -> None:
    fal = FalBackend("id-123:secret-456", endpoints={"upscale": "fal-ai/aura-sr"})

    assert "secret-456" not in repr(fal) and "id-123" not in repr(fal)
    assert repr(fal) == (
        "FalBackend(endpoints={'upscale': 'fal-ai/aura-sr'}, timeout=300.0, FAL_KEY set)"
    )


# -- event loops -------------------------------------------------------------------------------


def test_one_backend_serves_several_event_loops(fake_fal: FakeFal) -> None:  # noqa: F811
    """The kernel's loop and run_sync's private loop share a backend; asyncio.run closes
    its loop each time, which breaks a client kept from the previous loop."""
    fal = FalBackend(environ={"FAL_KEY": KEY})
    image = photo("chelsea.png")

    async def once() -> tuple[int, int]:
        out = await run(fal, "face_detail", image)
        return opened(out).size

    assert asyncio.run(once()) == (451, 300)
    assert asyncio.run(once()) == (451, 300)
    sizes: list[tuple[int, int]] = []
    worker = threading.Thread(target=lambda: sizes.append(asyncio.run(once())))
    worker.start()
    worker.join()
    assert sizes == [(451, 300)]
    assert fake_fal.calls["submit"] == 3
    assert len(fal._clients) <= 1, "clients of closed loops are dropped"


async def test_aclose_then_use_again(fake_fal: FakeFal, fal: FalBackend) -> None:  # noqa: F811
    await run(fal, "face_detail", photo("chelsea.png"))
    await fal.aclose()
    await run(fal, "face_detail", photo("chelsea.png"))
    await fal.aclose()

    assert fake_fal.calls["submit"] == 2
