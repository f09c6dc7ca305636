"""Security headers (issue 12, item 3): a Content-Security-Policy without inline script,
no framing of our pages, nosniff everywhere, a referrer policy, HSTS in production, and
a sandboxing policy on files customers uploaded."""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

from flask import Flask

from tests.conversations import pro_conversation
from tests.portal import conftest as portal_fixtures
from tests.portal.conftest import Portal
from tests.test_operations import POSTGRES, STRONG_SECRET
from tests.usage import conftest as usage_fixtures
from tests.usage.conftest import Tenant
from webapp import create_app

portal = portal_fixtures.portal  # the fixtures, for this module's tests
make_tenant, tenant = usage_fixtures.make_tenant, usage_fixtures.tenant

TEMPLATES = Path(__file__).resolve().parents[1] / "webapp" / "templates"
INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.IGNORECASE)
INLINE_HANDLER = re.compile(r"\son[a-z]+\s*=", re.IGNORECASE)


def policy(response: Any) -> dict[str, str]:
    directives = response.headers["Content-Security-Policy"].split(";")
    return {d.strip().split(" ", 1)[0]: d.strip().partition(" ")[2] for d in directives}


def assert_common_headers(response: Any) -> None:
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "strict-origin-when-cross-origin"


def test_portal_pages_forbid_inline_script_and_framing(portal: Portal, user: Any) -> None:
    for path in ("/login", "/signup"):
        response = portal.get(path)
        csp = policy(response)
        assert csp["script-src"] == "'self'"
        assert "unsafe-inline" not in csp["script-src"] and "unsafe-eval" not in str(csp)
        assert csp["frame-ancestors"] == "'none'" and csp["object-src"] == "'none'"
        assert response.headers["X-Frame-Options"] == "DENY"
        assert_common_headers(response)
        html = response.get_data(as_text=True)
        assert not INLINE_SCRIPT.search(html) and not INLINE_HANDLER.search(html)
    portal.login(user.email)
    page = portal.page("/dashboard")
    assert not INLINE_SCRIPT.search(page) and not INLINE_HANDLER.search(page)


def test_no_template_has_inline_script() -> None:
    """Every page we render, /docs' and the sandbox's included: the policy would block it."""
    offenders = [
        str(path.relative_to(TEMPLATES))
        for path in TEMPLATES.rglob("*.html")
        if INLINE_SCRIPT.search(text := path.read_text()) or INLINE_HANDLER.search(text)
    ]
    assert offenders == []


def test_docs_run_under_the_same_policy(client: Any) -> None:
    response = client.get("/docs")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert not INLINE_SCRIPT.search(html)
    assert "swagger-init.js" in html and 'data-spec-url="/openapi.json"' in html
    assert policy(response)["script-src"] == "'self'"


def test_api_answers_and_the_widget_script_are_not_sniffed(client: Any) -> None:
    api = client.get("/api/v1/subscriptions/plans")
    assert_common_headers(api)
    script = client.get("/static/widget.js")
    assert_common_headers(script)
    assert script.mimetype in ("text/javascript", "application/javascript")
    # Nothing stops other sites from loading the widget's script.
    assert "Cross-Origin-Resource-Policy" not in script.headers
    assert "Cross-Origin-Embedder-Policy" not in script.headers


def test_uploaded_files_are_served_sandboxed(app: Flask, tenant: Tenant) -> None:
    client, headers, path = pro_conversation(app, tenant)
    html_as_png = b"<html><script>alert(1)</script></html>"
    upload = {"kind": "image", "file": (io.BytesIO(html_as_png), "x.png", "image/png")}
    sent = client.post(path, data=upload, headers=headers)
    assert sent.status_code == 201, sent.get_json()
    message = sent.get_json()["message"]

    api_file = tenant.api.get(f"{path}/{message['id']}/attachment")
    portal = Portal(app.test_client())
    portal.login(tenant.owner.email)
    conversation_id = path.split("/")[-2]
    inbox = f"/inbox/{conversation_id}/messages/{message['id']}/attachment"
    portal_file = portal.get(inbox)
    for response in (api_file, portal_file):
        assert response.status_code == 200
        assert response.data == html_as_png
        assert response.mimetype == "image/png"
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        csp = policy(response)
        assert csp["default-src"] == "'none'" and "sandbox" in csp


def test_hsts_in_production_over_https_only(client: Any) -> None:
    testing = client.get("/livez", base_url="https://localhost")
    assert "Strict-Transport-Security" not in testing.headers
    production = create_app(
        "production", SECRET_KEY=STRONG_SECRET, PAYMENTS_MODE="live", **POSTGRES
    )
    secure = production.test_client().get("/livez", base_url="https://localhost")
    assert secure.headers["Strict-Transport-Security"].startswith("max-age=31556926")  # a year
    plain = production.test_client().get("/livez")
    assert "Strict-Transport-Security" not in plain.headers
    assert plain.status_code == 200  # no redirect to https: notify URLs must never redirect


def test_signed_in_pages_are_not_stored(portal: Portal, user: Any) -> None:
    """What a signed-in user sees (tax ids, chats) is no-store; the public pages may be kept."""
    assert "no-store" not in portal.get("/login").headers.get("Cache-Control", "")
    portal.login(user.email)
    response = portal.get("/dashboard")
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    assert "no-store" not in portal.get("/static/app.js").headers.get("Cache-Control", "")
