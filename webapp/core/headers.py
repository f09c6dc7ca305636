"""Security headers on every response, by Flask-Talisman.

One Content-Security-Policy fits every page we render (portal, /docs, the payment
sandbox's pages): scripts only from our own origin (the pages carry no inline
script; `static/app.js` and `static/swagger-init.js` do what inline handlers did),
nothing framed and no framing (`frame-ancestors 'none'` plus `X-Frame-Options:
DENY`), no plugins, no `<base>` elsewhere. Styles also allow inline `style`
attributes and the `<style>` inside the server-drawn SVG charts: CSS cannot run
script, and hashing every chart's stylesheet would buy nothing. JSON answers
carry the same headers, which do nothing to the sites that call the API.

Everywhere: `X-Content-Type-Options: nosniff`, `Referrer-Policy:
strict-origin-when-cross-origin`, and in production (HTTPS requests only) HSTS.
Files customers uploaded are served with a sandboxing policy of their own
(`user_upload`): opened directly, nothing in them runs.

The widget's script (`/static/widget.js`) runs in the embedding site's page, under
that site's policy; no header here stops another origin from loading it.

Pages shown to a signed-in user (tax ids, bank accounts, customers' chats) are
`Cache-Control: no-store`, so neither a shared cache nor the browser's back button
after logout shows them again.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar, cast

from flask import Flask, Response, make_response, session
from flask_talisman import Talisman

PAGE_POLICY = {
    "default-src": "'self'",
    "script-src": "'self'",
    "style-src": "'self' 'unsafe-inline'",
    "img-src": "'self' data: https:",  # bot logos are the owners' https URLs
    "font-src": "'self' data:",
    "connect-src": "'self'",
    "object-src": "'none'",
    "base-uri": "'self'",
    "frame-ancestors": "'none'",
}
UPLOAD_POLICY = {
    "default-src": "'none'",
    "img-src": "'self'",
    "media-src": "'self'",
    "sandbox": "",
}

View = TypeVar("View", bound=Callable[..., Any])


def register_security_headers(app: Flask) -> None:
    """One Talisman per app: it keeps its options (and its app) on the instance."""
    app.extensions["talisman"] = Talisman(
        app,
        force_https=False,  # TLS ends at the proxy; notify URLs must never redirect
        strict_transport_security=app.config["APP_ENV"] == "production",
        frame_options="DENY",
        content_security_policy=PAGE_POLICY,
        referrer_policy="strict-origin-when-cross-origin",
        session_cookie_secure=app.config["SESSION_COOKIE_SECURE"],
        session_cookie_samesite=app.config["SESSION_COOKIE_SAMESITE"],
        x_content_type_options=True,
    )
    app.after_request(_private_pages_uncached)


def _private_pages_uncached(response: Response) -> Response:
    if response.mimetype == "text/html" and session.get("_user_id") is not None:
        response.headers.setdefault("Cache-Control", "no-store")
    return response


def user_upload(view: View) -> View:
    """A view that serves a customer's file: its own, sandboxing policy, and
    `Cache-Control: private, no-store` (a customer's photo, a 发票 with tax ids: kept by
    neither a shared cache nor the browser).

    Talisman reads per-view options from an attribute its decorator sets on the view,
    whichever instance made it, so this needs no app."""

    @functools.wraps(view)
    def uncached(*args: Any, **kwargs: Any) -> Response:
        response = make_response(view(*args, **kwargs))
        response.cache_control.private = True
        response.cache_control.no_store = True
        return response

    return Talisman()(content_security_policy=UPLOAD_POLICY)(cast(View, uncached))
