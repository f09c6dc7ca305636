"""Browser fixtures: the app served on 127.0.0.1 and Debian's Chromium driven by Playwright.

The live server commits for real (the root `isolated_db` fixture steps aside for
tests that use `live_server`), so browser tests use unique emails, and the
fixture deletes the accounts and organizations created while it ran, so tests
that come later in the run find the database as the migrations left it.
Chromium is required: if it cannot start, the test fails.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from flask import Flask
from playwright.sync_api import Browser, BrowserContext, ConsoleMessage, sync_playwright
from werkzeug.serving import make_server

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS_DIR = Path(__file__).resolve().parents[2] / "test-artifacts"


@pytest.fixture
def live_server(app: Flask, committed_db: None) -> Iterator[str]:
    """The app on a random local port, in a background thread; yields its base URL."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    base_url = f"http://127.0.0.1:{server.server_port}"
    previous_base_url = app.config["BASE_URL"]
    app.config["BASE_URL"] = base_url  # links in mails point at this server
    thread = threading.Thread(target=server.serve_forever, name="live-server", daemon=True)
    thread.start()
    try:
        yield base_url
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()
        app.config["BASE_URL"] = previous_base_url


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield browser
        finally:
            browser.close()


def is_csp_violation(message: ConsoleMessage) -> bool:
    return "Content Security Policy" in message.text


@pytest.fixture
def new_context(browser: Browser) -> Iterator[Callable[[], BrowserContext]]:
    """Make fresh browser contexts (separate cookies: separate people); closed afterwards.

    The test fails if any page broke the Content-Security-Policy (Chromium reports it
    on the console): our pages, /docs and the sandbox's pages carry no inline script."""
    contexts: list[BrowserContext] = []
    violations: list[str] = []

    def record_violation(message: ConsoleMessage) -> None:
        if is_csp_violation(message):
            violations.append(f"{message.page.url if message.page else '?'}: {message.text}")

    def make() -> BrowserContext:
        context = browser.new_context(locale="zh-CN", viewport={"width": 1280, "height": 900})
        context.set_default_timeout(15_000)
        context.on("console", record_violation)
        contexts.append(context)
        return context

    yield make
    for context in contexts:
        context.close()
    assert violations == [], violations


@pytest.fixture
def artifacts_dir() -> Path:
    ARTIFACTS_DIR.mkdir(exist_ok=True)
    return ARTIFACTS_DIR
