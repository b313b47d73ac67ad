"""A real S3 API server on 127.0.0.1 for the shared-tier tests: moto's S3, served over HTTP.

moto's server mode speaks the S3 wire protocol (s3fs's own tests use it), so the shared tier is
tested through s3fs, aiobotocore and HTTP exactly as against AWS or MinIO. This wraps moto's WSGI
app with a thin recorder, so tests can count the requests a lookup costs, and three faults a
real server has: a slow answer (``delay``), a refusal (``deny``: 403 AccessDenied) and death
(``stop()``, which also cuts open keep-alive connections, as a crashed server would).
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import pytest
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import BaseWSGIServer, make_server

CREDENTIALS = {"key": "team-access-key", "secret": "team-secret-sentinel-3f9a"}
REGION = "us-east-1"
BUCKET = "team"

_DENIED = (
    b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>AccessDenied</Code>'
    b"<Message>Access Denied</Message></Error>"
)


class S3Server:
    """moto's S3 on a free port of 127.0.0.1, with a request log and faults."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str]] = []
        self.delay = 0.0
        self.deny = False
        self._app = DomainDispatcherApplication(create_backend_app)
        self._open: set[socket.socket] = set()
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> S3Server:
        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no line per request on stderr
        server = self

        class Handler(MotoRequestHandler):
            def setup(self) -> None:
                super().setup()
                server._open.add(self.connection)

            def finish(self) -> None:
                server._open.discard(self.connection)
                super().finish()

        self._server = make_server(
            "127.0.0.1", self.port, self._wsgi, threaded=True, request_handler=Handler
        )
        self.port = self._server.server_port
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Die: stop listening and cut every open connection."""
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        for conn in list(self._open):
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # -- what clients need -------------------------------------------------------------------

    def options(self) -> dict[str, Any]:
        """Storage options for Processor(shared_options=...) / SharedTier(options=...)."""
        return {
            "endpoint_url": self.endpoint,
            **CREDENTIALS,
            "client_kwargs": {"region_name": REGION},
        }

    def environ(self) -> dict[str, str]:
        """The environment a separate process needs to reach this server."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": CREDENTIALS["key"],
            "AWS_SECRET_ACCESS_KEY": CREDENTIALS["secret"],
            "AWS_DEFAULT_REGION": REGION,
        }

    def client(self) -> Any:
        """A plain boto3 client, for setting up and tampering behind the tier's back."""
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=CREDENTIALS["key"],
            aws_secret_access_key=CREDENTIALS["secret"],
            region_name=REGION,
        )

    def new_url(self) -> str:
        """A fresh ``s3://team/<random>`` prefix (the bucket is made on first use)."""
        client = self.client()
        if BUCKET not in {b["Name"] for b in client.list_buckets().get("Buckets", [])}:
            client.create_bucket(Bucket=BUCKET)
        return f"s3://{BUCKET}/{uuid.uuid4().hex[:12]}"

    def count(self, method: str | None = None, contains: str = "") -> int:
        return sum(1 for m, p in self.requests if (method is None or m == method) and contains in p)

    # -- the recording, fault-injecting WSGI app ---------------------------------------------

    def _wsgi(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        self.requests.append((environ["REQUEST_METHOD"], environ.get("PATH_INFO", "")))
        if self.delay:
            time.sleep(self.delay)
        if self.deny:
            start_response("403 Forbidden", [("Content-Type", "application/xml")])
            return [_DENIED]
        return self._app(environ, start_response)  # type: ignore[no-any-return]


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """One moto S3 server for the session, stopped at the end."""
    server = S3Server().start()
    yield server
    server.stop()


@pytest.fixture
def fresh_s3_server() -> Iterator[S3Server]:
    """A server of this test's own, for tests that slow it, deny or stop it."""
    server = S3Server().start()
    yield server
    server.stop()
