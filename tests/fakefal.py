"""A fake fal.ai on 127.0.0.1, speaking the HTTP protocol fal_client 1.0.x speaks.

Why a fake server and not a mocked client: the backend is tested with the REAL
``fal_client.AsyncClient`` (its URL building, retry rules, status parsing, upload and token
handling), so everything below the socket is the code that runs against fal.ai.

How the real client is pointed here: **monkeypatched module constants**, not TLS. fal_client
builds its hosts from module globals that it reads at call time -- ``QUEUE_URL_FORMAT``
(``https://{FAL_QUEUE_RUN_HOST}/``, fixed at import), ``REST_URL`` (storage token, storage
upload) and ``CDN_URL`` (``/files/upload``) -- and follows the ``status_url``/``response_url``/
``cancel_url`` the server returns for everything after the submit. Patching those three names
in a fixture (:func:`fake_fal`) reaches every request; a test CA through ``SSL_CERT_FILE``
would add a dependency (trustme), certificate plumbing and per-test TLS handshakes, and buy
nothing the monkeypatch misses, because the URL formats are the only thing that hard-codes
https. One port serves the queue, REST and CDN routes; the paths do not overlap.

What it does, like fal.ai:

* ``POST /{owner}/{alias}[/{path}]`` queues a request ->
  ``{request_id, status_url, response_url, cancel_url, queue_position}``.
* ``GET /{owner}/{alias}/requests/{id}/status?logs=1`` -> ``IN_QUEUE`` (``queue_position``),
  ``IN_PROGRESS`` (``logs``), ``COMPLETED`` (``logs``, ``metrics``, maybe ``error``).
* ``GET /{owner}/{alias}/requests/{id}`` -> ``{"image": {url, content_type, file_name,
  file_size, width, height}}``; 422 with FastAPI-style ``detail`` for bad arguments.
* ``PUT /{owner}/{alias}/requests/{id}/cancel`` -> 202, or 400 once completed.
* ``POST /storage/auth/token?storage_type=fal-cdn-v3`` -> a CDN token (``expires_at`` with a
  timezone); ``POST /files/upload`` -> ``{access_url}``; ``GET /files/...`` serves files;
  ``POST /storage/upload/initiate`` + ``PUT /storage/put/...`` (the client's fallback upload).

The models do real image work with Pillow: upscale resizes by ``upscale_factor``, birefnet
returns RGBA with an alpha mask, codeformer returns the input size with ``upscaling=1``, so
results are real images of the right size.

Faults (``fake.fail(route, ...)``, each consumed once per matching call) and outcomes
(``fake.outcome``) cover latency and limited slots, 429 with Retry-After, 500, 503, dropped
connections, malformed JSON, COMPLETED with an error, an expired result URL, an oversized
result, a result that is not an image, and a request that never completes
(``fake.hold()``). Every call is counted in ``fake.calls`` (a Counter by route).
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import re
import threading
import time
import uuid
from collections import Counter, deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from PIL import Image, ImageDraw

__all__ = ["Fault", "FakeFal", "FakeRequest", "fake_fal", "point_fal_client_at"]

ROUTES = (
    "submit",
    "status",
    "stream",
    "result",
    "cancel",
    "token",
    "upload",
    "initiate",
    "put",
    "download",
)

#: What a request's result turns out to be (set ``fake.outcome`` before submitting).
OUTCOMES = (
    "ok",  # a real image
    "error",  # COMPLETED with an error; the result answers 500
    "expired",  # the result URL answers 404
    "oversized",  # the result file is ``oversized_bytes`` long
    "not_image",  # the result URL serves an HTML page
    "malformed_result",  # the result JSON has no image in it
)


@dataclass
class Fault:
    """One injected failure for the next call of a route.

    ``status`` + ``body`` + ``headers`` answer with that response; ``drop`` closes the
    connection without answering; ``malformed`` answers 200 with broken JSON; ``stall`` holds
    the call (then answers normally) until the event is set.
    """

    status: int = 500
    body: bytes = b'{"detail": "Internal Server Error"}'
    headers: dict[str, str] = field(default_factory=dict)
    drop: bool = False
    malformed: bool = False
    stall: threading.Event | None = None


@dataclass
class FakeRequest:
    """A queued request, as the fake's queue sees it."""

    id: str
    app: str  # "owner/alias"
    endpoint: str  # the full endpoint id, with its path
    arguments: dict[str, Any]
    outcome: str
    state: str = "IN_QUEUE"  # IN_QUEUE, IN_PROGRESS, COMPLETED, CANCELLED
    started: float | None = None
    logs: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None
    error_status: int = 500
    error_detail: Any = None
    result: dict[str, Any] | None = None
    cancel_seen: bool = False
    #: When it finished on the server (monotonic), and when a client was first told so
    #: (a COMPLETED status answer or stream event): their difference is the notice latency.
    done_at: float | None = None
    told_done_at: float | None = None
    #: Set when the model's work (done in a thread from the submit on) is finished.
    prepared: threading.Event = field(default_factory=threading.Event)
    prepared_at: float = 0.0

    @property
    def notice_latency(self) -> float:
        assert self.done_at is not None and self.told_done_at is not None, "not noticed yet"
        return self.told_done_at - self.done_at


def _png(img: Image.Image) -> bytes:
    out = io.BytesIO()
    img.save(out, format="PNG")
    return out.getvalue()


def _field_error(name: str, msg: str) -> dict[str, Any]:
    return {"loc": ["body", name], "msg": msg, "type": "value_error"}


def _check_arguments(endpoint: str, args: dict[str, Any]) -> list[dict[str, Any]]:
    """The endpoint schemas, as far as the operations use them (FastAPI-style errors)."""
    errors = []
    if not isinstance(args.get("image_url"), str):
        errors.append(_field_error("image_url", "field required"))
    fmt = args.get("output_format", "png")
    if fmt not in ("png", "jpeg", "webp"):
        errors.append(_field_error("output_format", f"unexpected value {fmt!r}"))
    if endpoint.startswith("fal-ai/seedvr"):
        factor = args.get("upscale_factor", 2)
        if not isinstance(factor, (int, float)) or not 1 <= factor <= 10:
            errors.append(_field_error("upscale_factor", "must be a number from 1 to 10"))
    if endpoint.startswith("fal-ai/aura-sr") and args.get("checkpoint", "v1") not in ("v1", "v2"):
        errors.append(_field_error("checkpoint", "unexpected value; permitted: 'v1', 'v2'"))
    if endpoint.startswith("fal-ai/codeformer"):
        upscaling = args.get("upscaling", 2)
        if not isinstance(upscaling, (int, float)) or not 1 <= upscaling <= 4:
            errors.append(_field_error("upscaling", "must be a number from 1 to 4"))
    return errors


#: The endpoints the fake serves (and any path below them).
MODELS = ("fal-ai/birefnet", "fal-ai/seedvr", "fal-ai/aura-sr", "fal-ai/codeformer")


def _model(endpoint: str, img: Image.Image, args: dict[str, Any]) -> Image.Image:
    """The real image work each endpoint stands for (cheap versions of it)."""
    if endpoint.startswith("fal-ai/birefnet"):
        rgba = img.convert("RGBA")
        mask = Image.new("L", rgba.size, 0)
        w, h = rgba.size
        ImageDraw.Draw(mask).ellipse((w // 6, h // 8, w - w // 6, h - h // 8), fill=255)
        rgba.putalpha(mask)
        return rgba
    if endpoint.startswith("fal-ai/seedvr"):
        factor = float(args.get("upscale_factor", 2))
        return img.resize((round(img.width * factor), round(img.height * factor)))
    if endpoint.startswith("fal-ai/aura-sr"):
        return img.resize((img.width * 4, img.height * 4))
    if endpoint.startswith("fal-ai/codeformer"):
        factor = float(args.get("upscaling", 2))
        out = img.convert("RGB").resize((round(img.width * factor), round(img.height * factor)))
        return out
    raise KeyError(endpoint)


class FakeFal:
    """The fake server and its knobs. Start with :meth:`start` or use :func:`fake_fal`."""

    def __init__(self, *, keys: tuple[str, ...] = ("fake-key-id:fake-key-secret",)) -> None:
        self.keys = set(keys)
        self.calls: Counter[str] = Counter()
        self.requests: dict[str, FakeRequest] = {}
        #: Authorization header (or None) of every call, by route.
        self.auth_seen: list[tuple[str, str | None]] = []
        self.submitted_arguments: list[dict[str, Any]] = []
        #: Processing time of a request once it has a slot, in seconds.
        self.latency = 0.0
        #: How many requests run at once; the rest wait IN_QUEUE. None: unlimited.
        self.slots: int | None = None
        self.outcome = "ok"
        self.oversized_bytes = 3_000_000
        self.completed_error = "CUDA error: out of memory"
        self.max_running_seen = 0
        self.downloads_aborted = 0
        #: Whether ``/status/stream`` is served (False: 404, like a host without it).
        self.streaming = True
        self._gate = threading.Event()
        self._gate.set()
        self._released = 0.0  # when release() last opened the gate
        self._faults: dict[str, deque[Fault]] = {route: deque() for route in ROUTES}
        self._files: dict[str, tuple[bytes, str]] = {}
        self._lock = threading.RLock()
        self._order: list[str] = []
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.cancel_event = threading.Event()

    # -- lifecycle ----------------------------------------------------------------------

    def start(self) -> FakeFal:
        fake = self

        class Handler(_Handler):
            server_fake = fake

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._gate.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    @property
    def url(self) -> str:
        assert self._server is not None, "start() the fake first"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    # -- knobs --------------------------------------------------------------------------

    def fail(self, route: str, fault: Fault | None = None, *, times: int = 1, **kw: Any) -> None:
        """Make the next ``times`` calls of ``route`` fail with ``fault`` (or ``Fault(**kw)``)."""
        assert route in ROUTES, route
        with self._lock:
            for _ in range(times):
                self._faults[route].append(fault or Fault(**kw))

    def hold(self) -> None:
        """Running requests do not complete until :meth:`release` (never, if not called)."""
        self._gate.clear()

    def release(self) -> None:
        self._released = time.monotonic()
        self._gate.set()

    def forget(self, request_id: str) -> None:
        """Drop a request, as fal does some time after it finished: its calls answer 404."""
        with self._lock:
            del self.requests[request_id]
            self._order.remove(request_id)

    def states(self) -> list[str]:
        with self._lock:
            return [self.requests[i].state for i in self._order]

    def file(self, path: str) -> bytes:
        return self._files[path][0]

    # -- the queue ----------------------------------------------------------------------

    def _advance(self) -> None:
        """Move requests along: give free slots to the oldest queued, complete finished ones."""
        now = time.monotonic()
        with self._lock:
            active = [
                self.requests[i]
                for i in self._order
                if self.requests[i].state in ("IN_QUEUE", "IN_PROGRESS")
            ]
            for req in active:
                if req.state == "IN_PROGRESS":
                    assert req.started is not None
                    if self._finished(req, now):
                        self._complete(req)
            running = [r for r in active if r.state == "IN_PROGRESS"]
            for req in active:
                if req.state != "IN_QUEUE":
                    continue
                if self.slots is not None and len(running) >= self.slots:
                    break
                req.state = "IN_PROGRESS"
                req.started = now
                req.logs.append(self._log(f"Running {req.endpoint}"))
                running.append(req)
                if self._finished(req, now):
                    self._complete(req)
                    running.remove(req)
            self.max_running_seen = max(self.max_running_seen, len(running))

    def _queue_position(self, req: FakeRequest) -> int:
        queued = [
            i for i in self._order if self.requests[i].state == "IN_QUEUE"
        ]  # 0-indexed, like fal
        return queued.index(req.id)

    @staticmethod
    def _log(message: str) -> dict[str, Any]:
        return {
            "message": message,
            "level": "INFO",
            "source": "user",
            "timestamp": datetime.now(timezone.utc).isoformat(),
        }

    def _finished(self, req: FakeRequest, now: float) -> bool:
        assert req.started is not None
        return now - req.started >= self.latency and self._gate.is_set() and req.prepared.is_set()

    def _complete(self, req: FakeRequest) -> None:
        assert req.started is not None
        req.state = "COMPLETED"
        req.done_at = max(req.started + self.latency, self._released, req.prepared_at)
        req.logs.append(self._log("Done"))

    def _prepare(self, req: FakeRequest) -> None:
        """The model's work, started at submit in a thread, so that completing at the end of
        ``latency`` is a state change only (the notice latency then measures the client)."""
        try:
            self._work(req)
        finally:
            req.prepared_at = time.monotonic()
            req.prepared.set()

    def _work(self, req: FakeRequest) -> None:
        problems = _check_arguments(req.endpoint, req.arguments)
        if problems:
            req.error = "Unprocessable Entity"
            req.error_status = 422
            req.error_detail = problems
            return
        if req.outcome == "error":
            req.error = self.completed_error
            req.error_status = 500
            req.error_detail = self.completed_error
            return
        try:
            source = Image.open(io.BytesIO(self._fetch_input(req.arguments["image_url"])))
            source.load()
            out = _model(req.endpoint, source, req.arguments)
        except Exception as exc:  # a broken input: fal answers 422 as well
            req.error = "Unprocessable Entity"
            req.error_status = 422
            req.error_detail = [_field_error("image_url", f"could not read the image: {exc}")]
            return
        data, ctype = _png(out), "image/png"
        name = f"{req.id}.png"
        if req.outcome == "oversized":
            data = data + b"\0" * max(0, self.oversized_bytes - len(data))
        if req.outcome == "not_image":
            data, ctype, name = b"<html><body>Access denied</body></html>", "text/html", name
        path = f"/files/out/{name}"
        if req.outcome != "expired":
            self._files[path] = (data, ctype)
        image = {
            "url": self.url + path,
            "content_type": "image/png",
            "file_name": name,
            "file_size": len(data),
            "width": out.width,
            "height": out.height,
        }
        req.result = {"image": image} if req.outcome != "malformed_result" else {"images": 3}

    def _status_body(self, req: FakeRequest, with_logs: bool) -> dict[str, Any]:
        """The status JSON of ``req`` (call with the lock held); notes a COMPLETED told."""
        links = {
            "response_url": f"{self.url}/{req.app}/requests/{req.id}",
            "status_url": f"{self.url}/{req.app}/requests/{req.id}/status",
            "cancel_url": f"{self.url}/{req.app}/requests/{req.id}/cancel",
        }
        logs = list(req.logs) if with_logs else None
        if req.state == "IN_QUEUE":
            return {"status": "IN_QUEUE", "queue_position": self._queue_position(req), **links}
        if req.state == "IN_PROGRESS":
            return {"status": "IN_PROGRESS", "logs": logs, **links}
        body = {
            "status": "COMPLETED",
            "logs": logs,
            "metrics": {"inference_time": self.latency},
            **links,
        }
        if req.state == "CANCELLED":
            body["error"] = "Request was cancelled"
            body["error_type"] = "request_cancelled"
        elif req.error is not None:
            body["error"] = req.error
            body["error_type"] = "runner_error"
        if req.told_done_at is None:
            req.told_done_at = time.monotonic()
        return body

    def _next_change(self, req: FakeRequest) -> float:
        """Seconds until ``req`` may change by itself (its run ends), capped at a short tick."""
        if req.state == "IN_PROGRESS" and req.started is not None and self._gate.is_set():
            if not req.prepared.is_set():
                return 0.002
            return min(0.02, max(0.0, req.started + self.latency - time.monotonic()))
        return 0.02

    def _fetch_input(self, url: str) -> bytes:
        if url.startswith("data:"):
            return base64.b64decode(url.split(",", 1)[1])
        path = urlsplit(url).path
        return self._files[path][0]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in two writes: no 40 ms stalls
    server_fake: FakeFal

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def handle(self) -> None:
        with contextlib.suppress(ConnectionError):  # the client hung up (aborted download)
            super().handle()

    # -- plumbing -------------------------------------------------------------------------

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _send(
        self,
        status: int,
        body: bytes | dict[str, Any] | list[Any],
        ctype: str = "application/json",
        headers: dict[str, str] | None = None,
    ) -> None:
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(raw)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        try:
            self.wfile.write(raw)
        except (BrokenPipeError, ConnectionResetError):
            self.server_fake.downloads_aborted += 1
            self.close_connection = True

    def _count(self, route: str) -> bool:
        """Count the call; apply an injected fault. False: the fault answered already."""
        fake = self.server_fake
        with fake._lock:
            fake.calls[route] += 1
            fake.auth_seen.append((route, self.headers.get("Authorization")))
            fault = fake._faults[route].popleft() if fake._faults[route] else None
        if fault is None:
            return True
        if fault.stall is not None:
            fault.stall.wait(10)
            return True
        if fault.drop:
            self.close_connection = True
            self.connection.shutdown(2)  # socket.SHUT_RDWR: no answer at all
            return False
        if fault.malformed:
            self._send(200, b'{"request_id": "abc", "status": ')
            return False
        self._send(fault.status, fault.body, headers=fault.headers)
        return False

    def _authorized(self, scheme: str = "Key") -> bool:
        fake = self.server_fake
        header = self.headers.get("Authorization", "")
        given = header[len(scheme) + 1 :] if header.startswith(scheme + " ") else None
        valid = fake.keys if scheme == "Key" else {_CDN_TOKEN}
        if given in valid:
            return True
        self._send(401, {"detail": "No user found for Key ID and Secret"})
        return False

    # -- routes ---------------------------------------------------------------------------

    def do_POST(self) -> None:
        fake = self.server_fake
        path = urlsplit(self.path).path
        body = self._body()
        if path == "/storage/auth/token":
            if self._count("token") and self._authorized():
                expires = datetime.now(timezone.utc) + timedelta(hours=1)
                self._send(
                    200,
                    {
                        "token": _CDN_TOKEN,
                        "token_type": "Bearer",
                        "base_url": fake.url,
                        "expires_at": expires.isoformat(),
                    },
                )
            return
        if path == "/files/upload":
            if self._count("upload") and self._authorized("Bearer"):
                name = self.headers.get("X-Fal-File-Name") or "upload.bin"
                ctype = self.headers.get("Content-Type", "application/octet-stream")
                key = f"/files/in/{uuid.uuid4().hex}/{name}"
                fake._files[key] = (body, ctype)
                self._send(200, {"access_url": fake.url + key, "content_type": ctype})
            return
        if path == "/storage/upload/initiate":
            if self._count("initiate") and self._authorized():
                info = json.loads(body)
                key = f"/files/in/{uuid.uuid4().hex}/{info['file_name']}"
                self._send(
                    200, {"upload_url": fake.url + "/storage/put" + key, "file_url": fake.url + key}
                )
            return
        self._submit(path, body)

    def _submit(self, path: str, body: bytes) -> None:
        fake = self.server_fake
        if not (self._count("submit") and self._authorized()):
            return
        endpoint = path.strip("/")
        parts = endpoint.split("/")
        try:
            arguments = json.loads(body)
        except ValueError:
            self._send(422, {"detail": "the request body is not JSON"})
            return
        if not endpoint.startswith(MODELS):
            self._send(404, {"detail": f"Application '{endpoint}' not found"})
            return
        app = "/".join(parts[:2])
        rid = str(uuid.uuid4())
        base = f"{fake.url}/{app}/requests/{rid}"
        request = FakeRequest(rid, app, endpoint, arguments, fake.outcome)
        threading.Thread(target=fake._prepare, args=(request,), daemon=True).start()
        with fake._lock:
            fake.submitted_arguments.append(arguments)
            fake.requests[rid] = request
            fake._order.append(rid)
            fake._advance()
            req = fake.requests[rid]
            position = fake._queue_position(req) if req.state == "IN_QUEUE" else 0
        self._send(
            200,
            {
                "status": "IN_QUEUE",
                "request_id": rid,
                "response_url": base,
                "status_url": base + "/status",
                "cancel_url": base + "/cancel",
                "queue_position": position,
            },
            headers={"x-fal-request-id": rid},
        )

    def do_GET(self) -> None:
        fake = self.server_fake
        parts = urlsplit(self.path)
        if parts.path.startswith("/files/"):
            self._download(parts.path)
            return
        m = re.fullmatch(r"/([^/]+/[^/]+)/requests/([^/]+)(/status)?(/stream)?", parts.path)
        if m is None or (m.group(4) and not m.group(3)):
            self._send(404, {"detail": "Not Found"})
            return
        if m.group(4):
            if fake.streaming and self._count("stream") and self._authorized():
                self._stream(m.group(1), m.group(2))
            elif not fake.streaming:
                self._send(404, {"detail": "Not Found"})
            return
        route = "status" if m.group(3) else "result"
        if not (self._count(route) and self._authorized()):
            return
        with fake._lock:
            fake._advance()
            req = fake.requests.get(m.group(2))
            if req is None or req.app != m.group(1):
                self._send(404, {"detail": "Request not found"})
                return
            with_logs = parse_qs(parts.query).get("logs", ["0"])[0].lower() in ("1", "true")
            if route == "status":
                body = fake._status_body(req, with_logs)
                self._send(200, body, headers={"x-fal-request-id": req.id})
                return
            if req.state in ("IN_QUEUE", "IN_PROGRESS"):
                self._send(400, {"detail": "Request is still in progress"})
            elif req.state == "CANCELLED":
                self._send(400, {"detail": "Request was cancelled"})
            elif req.error is not None:
                self._send(req.error_status, {"detail": req.error_detail})
            else:
                assert req.result is not None
                self._send(200, req.result, headers={"x-fal-request-id": req.id})

    def _stream(self, app: str, request_id: str) -> None:
        """Server-sent status events until COMPLETED (new log lines only in each event)."""
        fake = self.server_fake
        with fake._lock:
            req = fake.requests.get(request_id)
            if req is None or req.app != app:
                self._send(404, {"detail": "Request not found"})
                return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")
        self.send_header("x-fal-request-id", request_id)
        self.end_headers()
        self.close_connection = True
        last: tuple[Any, ...] | None = None
        sent_logs = 0
        while True:
            with fake._lock:
                fake._advance()
                body = fake._status_body(req, with_logs=True)
                lines = body.get("logs") or []
                now_key = (body["status"], body.get("queue_position"), len(lines))
                wait = fake._next_change(req)
            if now_key != last:
                event = {**body}
                if "logs" in event:
                    event["logs"] = lines[sent_logs:]
                try:
                    self.wfile.write(b"data: " + json.dumps(event).encode() + b"\n\n")
                    self.wfile.flush()
                except (BrokenPipeError, ConnectionResetError):
                    return
                last, sent_logs = now_key, len(lines)
            if body["status"] == "COMPLETED":
                return
            time.sleep(wait)

    def _download(self, path: str) -> None:
        fake = self.server_fake
        if not self._count("download"):
            return
        entry = fake._files.get(path)
        if entry is None:
            self._send(404, b"<html><body>404 Not Found</body></html>", "text/html")
            return
        data, ctype = entry
        self._send(200, data, ctype)

    def do_PUT(self) -> None:
        fake = self.server_fake
        path = urlsplit(self.path).path
        body = self._body()
        if path.startswith("/storage/put/"):
            if self._count("put"):
                key = path[len("/storage/put") :]
                fake._files[key] = (body, self.headers.get("Content-Type", ""))
                self._send(200, b"")
            return
        m = re.fullmatch(r"/([^/]+/[^/]+)/requests/([^/]+)/cancel", path)
        if m is None:
            self._send(404, {"detail": "Not Found"})
            return
        if not (self._count("cancel") and self._authorized()):
            return
        with fake._lock:
            fake._advance()
            req = fake.requests.get(m.group(2))
            if req is None:
                self._send(404, {"detail": "Request not found"})
                return
            req.cancel_seen = True
            fake.cancel_event.set()
            if req.state in ("IN_QUEUE", "IN_PROGRESS"):
                req.state = "CANCELLED"
                self._send(202, {"status": "CANCELLATION_REQUESTED"})
            else:
                self._send(400, {"status": "ALREADY_COMPLETED"})


_CDN_TOKEN = "fake-cdn-token"


def point_fal_client_at(url: str, monkeypatch: pytest.MonkeyPatch | None = None) -> None:
    """Point the real fal_client's hosts at a fake on ``url`` (in this process; a test's
    child process calls it with no monkeypatch)."""
    import fal_client.client as fc

    for name, value in (("QUEUE_URL_FORMAT", url + "/"), ("REST_URL", url), ("CDN_URL", url)):
        if monkeypatch is not None:
            monkeypatch.setattr(fc, name, value)
        else:
            setattr(fc, name, value)


@pytest.fixture
def fake_fal(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeFal]:
    """A running fake, with the real fal_client's hosts pointed at it."""
    fake = FakeFal().start()
    point_fal_client_at(fake.url, monkeypatch)
    monkeypatch.delenv("FAL_KEY", raising=False)
    try:
        yield fake
    finally:
        fake.stop()
