"""Login throttling, per client IP and per account, shared by the portal and the API."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from flask import Response, current_app, request
from flask_limiter.util import get_remote_address

from webapp.extensions import limiter


def _account_key() -> str:
    source = request.get_json(silent=True) if request.is_json else request.form
    email = source.get("email", "") if isinstance(source, Mapping) else ""
    return "login-account:" + str(email).strip().lower()[:254]


def _failed(response: Response) -> bool:
    return response.status_code == 401


def login_throttled(view: Callable[..., Any]) -> Callable[..., Any]:
    """Throttle a login endpoint per client IP and per account.

    Only failed attempts (401) count, so people who type their password right
    are not locked out by someone else's guessing.
    """
    per_account = limiter.limit(
        lambda: current_app.config["LOGIN_LIMIT_PER_ACCOUNT"],
        key_func=_account_key,
        deduct_when=_failed,
    )
    per_ip = limiter.limit(
        lambda: current_app.config["LOGIN_LIMIT_PER_IP"],
        key_func=lambda: "login-ip:" + get_remote_address(),
        deduct_when=_failed,
    )
    return per_ip(per_account(view))
