"""Throttles for the account endpoints, shared by the portal and the API.

Limits come from settings (`LOGIN_LIMIT_PER_IP`, ...) so operators can tune them.
"""

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


def throttled_per_ip(limit_setting: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Limit the POSTs of an endpoint per client IP, by the named setting (e.g. sign-ups)."""
    return limiter.limit(
        lambda: current_app.config[limit_setting],
        key_func=lambda: f"{limit_setting.lower()}:{get_remote_address()}",
        methods=["POST"],
    )


def _email_key() -> str:
    return "password-reset:" + _account_key().removeprefix("login-account:")


def password_reset_throttled(view: Callable[..., Any]) -> Callable[..., Any]:
    """At most a few reset mails per address and per client: nobody floods an inbox."""
    per_email = limiter.limit(
        lambda: current_app.config["PASSWORD_RESET_LIMIT_PER_EMAIL"],
        key_func=_email_key,
        methods=["POST"],
    )
    return throttled_per_ip("PASSWORD_RESET_LIMIT_PER_IP")(per_email(view))
