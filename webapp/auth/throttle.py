"""Throttles for the account endpoints, shared by the portal and the API.

Limits come from settings (`LOGIN_LIMIT_PER_IP`, ...) so operators can tune them.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from flask import current_app, request
from flask_babel import gettext as _
from flask_limiter.util import get_remote_address
from limits import RateLimitItem, parse_many
from limits.storage import MemoryStorage
from limits.strategies import FixedWindowRateLimiter
from redis.exceptions import RedisError

from webapp.errors import AppError
from webapp.extensions import limiter

log = logging.getLogger(__name__)
_FALLBACK_STORAGE = MemoryStorage()  # when Redis is away, as Flask-Limiter's own fallback


class TooManyLogins(AppError):
    status = 429
    error = "rate_limited"


@contextmanager
def login_attempt(email: str) -> Iterator[None]:
    """Count a login attempt, portal or API, against one budget per client IP and one per
    client IP and account, before the password is checked; refuse it (429) when either is
    spent. A successful attempt is given back.

    The count is taken first and atomically (Redis INCR, or a lock in process), so
    concurrent guesses cannot all slip past a check made before any of them counted.
    Nothing is counted per account alone: the owner, logging in from another address
    than the guesser's, is never refused.
    """
    if not limiter.enabled:
        yield
        return
    ip = get_remote_address()
    budgets = [
        (item, f"login-ip:{ip}") for item in parse_many(current_app.config["LOGIN_LIMIT_PER_IP"])
    ] + [
        (item, f"login-account:{ip}:{email.strip().lower()[:254]}")
        for item in parse_many(current_app.config["LOGIN_LIMIT_PER_ACCOUNT"])
    ]
    counter = FixedWindowRateLimiter(limiter.limiter.storage)
    try:
        counter.storage.get("login-ip:probe")
    except RedisError:
        log.warning("rate-limit storage unreachable: counting logins in this process")
        counter = FixedWindowRateLimiter(_FALLBACK_STORAGE)
    spent: list[tuple[RateLimitItem, str]] = []
    for item, key in budgets:
        spent.append((item, key))
        if not counter.hit(item, key):
            for taken, taken_key in spent:  # this attempt is refused, not evaluated
                counter.hit(taken, taken_key, cost=-1)
            reset = counter.get_window_stats(item, key).reset_time
            raise TooManyLogins(
                _("Too many login attempts; try again later."),
                headers={"Retry-After": str(max(int(reset - time.time()) + 1, 1))},
            )
    yield  # raises on a wrong password: the attempt stays counted
    for item, key in spent:
        counter.hit(item, key, cost=-1)


def throttled_per_ip(limit_setting: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Limit the POSTs of an endpoint per client IP, by the named setting (e.g. sign-ups)."""
    return limiter.limit(
        lambda: current_app.config[limit_setting],
        key_func=lambda: f"{limit_setting.lower()}:{get_remote_address()}",
        methods=["POST"],
    )


def _email_key() -> str:
    source = request.get_json(silent=True) if request.is_json else request.form
    email = source.get("email", "") if isinstance(source, Mapping) else ""
    return "password-reset:" + str(email).strip().lower()[:254]


def password_reset_throttled(view: Callable[..., Any]) -> Callable[..., Any]:
    """At most a few reset mails per address and per client: nobody floods an inbox."""
    per_email = limiter.limit(
        lambda: current_app.config["PASSWORD_RESET_LIMIT_PER_EMAIL"],
        key_func=_email_key,
        methods=["POST"],
    )
    return throttled_per_ip("PASSWORD_RESET_LIMIT_PER_IP")(per_email(view))
