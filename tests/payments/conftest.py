"""Payment fixtures: the app served on 127.0.0.1 with its payment sandbox, and a notify sink.

The real SDKs (wechatpayv3, python-alipay-sdk) talk HTTP to the sandbox blueprint
of the live server, exactly as they would to the providers. The sandbox keeps its
keys and trades under a temporary instance folder for the whole run, so trades of
earlier runs never collide with this one's.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from flask import Flask
from werkzeug.serving import make_server

from webapp.payments import alipay, wechat
from webapp.payments.sandbox.notify import stop_deliveries

# Notify retries in tests: fast, and few.
FAST_RETRY_DELAYS = (0.2, 0.4, 0.8)


@pytest.fixture(scope="session")
def sandbox_instance(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("payment-sandbox-instance")


def _reset_clients(app: Flask) -> None:
    with app.app_context():
        wechat.reset_client()
        alipay.reset_client()


@pytest.fixture
def payments_live_server(app: Flask, committed_db: None, sandbox_instance: Path) -> Iterator[str]:
    """The app (with the payment sandbox) on a random local port; yields its base URL.

    BASE_URL points at it, so the SDK gateways, code_url, notify and return URLs do;
    the app's config is restored and the cached SDK clients are dropped afterwards."""
    assert app.config["PAYMENTS_MODE"] == "sandbox"
    saved_config = dict(app.config)
    saved_instance_path = app.instance_path
    app.instance_path = str(sandbox_instance)
    app.config["SANDBOX_NOTIFY_RETRY_DELAYS"] = FAST_RETRY_DELAYS
    server = make_server("127.0.0.1", 0, app, threaded=True)
    base_url = f"http://127.0.0.1:{server.server_port}"
    app.config["BASE_URL"] = base_url
    _reset_clients(app)
    thread = threading.Thread(target=server.serve_forever, name="payments-live", daemon=True)
    thread.start()
    try:
        yield base_url
    finally:
        stop_deliveries()
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()
        app.config.clear()
        app.config.update(saved_config)
        app.instance_path = saved_instance_path
        _reset_clients(app)


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: str


@dataclass
class NotifySink:
    """A merchant notify endpoint on 127.0.0.1 that answers from a script."""

    url: str
    answers: list[tuple[int, str]] = field(default_factory=list)  # consumed in order
    default: tuple[int, str] = (200, "")
    received: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answer(self) -> tuple[int, str]:
        with self.lock:
            return self.answers.pop(0) if self.answers else self.default

    def record(self, item: Received) -> None:
        with self.lock:
            self.received.append(item)

    def json_bodies(self) -> list[dict[str, object]]:
        return [json.loads(item.body) for item in self.received]


@pytest.fixture
def notify_sink() -> Iterator[NotifySink]:
    sink: NotifySink

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length).decode()
            sink.record(Received(self.path, dict(self.headers.items()), body))
            status, text = sink.answer()
            payload = text.encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    sink = NotifySink(url=f"http://127.0.0.1:{server.server_port}/notify")
    thread = threading.Thread(target=server.serve_forever, name="notify-sink", daemon=True)
    thread.start()
    try:
        yield sink
    finally:
        stop_deliveries()
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()
