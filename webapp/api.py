"""What every `/api/v1` blueprint shares: who may call, the organization, doc fragments, quotas.

Who calls:
- people send their access JWT and pick the organization with `X-Organization-ID`
  (or `?organization_id=`), which defaults to their only one;
- bots send an API key (`Authorization: Bearer sk_...` or `X-API-Key: sk_...`), which
  implies its organization (and, when bound to one, its bot). API keys never pass
  `jwt_required()`, so they cannot reach people's endpoints;
- the web widget sends its bot's publishable key (`X-Widget-Key: pk_...`) from one of
  the bot's allowed origins.

The rules about keys and bots themselves are in `webapp.bots.services`. Feature
`api.py` modules import from here, never from one another.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC
from functools import wraps
from typing import Any

from flask import Response, g, request
from flask_babel import gettext as _
from flask_jwt_extended import get_current_user, verify_jwt_in_request

from webapp.auth.models import User
from webapp.bots.models import Bot
from webapp.bots.services import (
    KeyIdentity,
    acting_bot_id,
    authenticate_api_key,
    bot_by_publishable_key,
    looks_like_api_key,
)
from webapp.db import utcnow
from webapp.errors import AppError, Forbidden, Unauthorized, json_error
from webapp.extensions import db
from webapp.orgs.models import OrganizationMember
from webapp.orgs.services import membership_for, memberships_of
from webapp.usage.services import QuotaExceeded, UsageResult

ORGANIZATION_HEADER = "X-Organization-ID"
API_KEY_HEADER = "X-API-Key"
WIDGET_KEY_HEADER = "X-Widget-Key"
REPLAYED_HEADER = "Idempotent-Replayed"  # "true" on the answer to an idempotent retry

# --- doc fragments ----------------------------------------------------------------------

CALLER_SECURITY: list[dict[str, list[str]]] = [{"apiKeyAuth": []}, {"bearerAuth": []}]
PEOPLE_ONLY: dict[str, Any] = {"security": [{"bearerAuth": []}]}
BOTS_OR_PEOPLE: dict[str, Any] = {"security": CALLER_SECURITY}
WIDGET_KEY: dict[str, Any] = {"security": [{"widgetKeyAuth": []}]}
ORGANIZATION_PARAMETER: dict[str, Any] = {
    "in": "header",
    "name": ORGANIZATION_HEADER,
    "required": False,
    "schema": {"type": "integer", "minimum": 1},
    "description": (
        "The organization (or `?organization_id=`); defaults to a person's only one, "
        "and an API key implies its own"
    ),
}
# For operations whose route does not declare ORGANIZATION_PARAMETER itself.
PEOPLE_IN_ORGANIZATION: dict[str, Any] = {**PEOPLE_ONLY, "parameters": [ORGANIZATION_PARAMETER]}
QUOTA_HEADERS: dict[str, Any] = {
    "X-Quota-Limit": {
        "description": "Monthly message quota, or `unlimited`",
        "schema": {"type": "string"},
    },
    "X-Quota-Remaining": {
        "description": "What is left of it, or `unlimited`",
        "schema": {"type": "string"},
    },
    "X-Quota-Reset": {
        "description": "End of the calendar month (Asia/Shanghai), RFC 3339 in UTC",
        "schema": {"type": "string", "format": "date-time"},
    },
}
UNLIMITED = "unlimited"

# --- who calls --------------------------------------------------------------------------


@dataclass(frozen=True)
class Caller:
    organization_id: int
    user: User | None = None
    membership: OrganizationMember | None = None
    api_key: KeyIdentity | None = None

    @property
    def bot_id(self) -> int | None:
        """The bot an API key is bound to, if any."""
        return self.api_key.bot_id if self.api_key is not None else None


def current_caller() -> Caller:
    caller: Caller = g.caller
    return caller


def acting_bot(caller: Caller, requested: int | None) -> int | None:
    """The bot a call is for: the one asked for, or the one the API key is bound to."""
    return acting_bot_id(caller.bot_id, requested)


def person_membership() -> OrganizationMember:
    """The calling member, for operations that are for people only.

    An API key gets 401 `api_key_not_allowed`: like every people's endpoint (which
    keys never pass), such an operation does not accept a key as credentials.
    """
    membership = current_caller().membership
    if membership is None:
        raise Unauthorized(
            _("API keys cannot do this; call it with a member's access token."),
            error="api_key_not_allowed",
        )
    return membership


def person_required(view: Callable[..., Any]) -> Callable[..., Any]:
    """For a method under `caller_required`: refuse API keys (401) before the body is read."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        person_membership()
        return view(*args, **kwargs)

    return wrapper


def presented_api_key() -> str | None:
    if key := request.headers.get(API_KEY_HEADER):
        return key.strip()
    scheme, _sep, token = request.headers.get("Authorization", "").partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and looks_like_api_key(token) else None


def _chosen_organization_id() -> int | None:
    raw = request.headers.get(ORGANIZATION_HEADER) or request.args.get("organization_id")
    if raw is None:
        return None
    raw = raw.strip()
    if not (raw.isascii() and raw.isdigit()):  # "²".isdigit() is true, int("²") fails
        message = _("Must be an organization id.")
        raise AppError(
            message, error="validation_error", status=422, errors={ORGANIZATION_HEADER: [message]}
        )
    return int(raw)


def _person_caller() -> Caller:
    verify_jwt_in_request()  # answers 401 in the API envelope when missing or bad
    user: User = get_current_user()
    organization_id = _chosen_organization_id()
    if organization_id is None:
        memberships = db.session.scalars(memberships_of(user).limit(2)).all()
        if len(memberships) != 1:
            raise AppError(
                _("Say which organization with the %(header)s header.", header=ORGANIZATION_HEADER),
                error="organization_required",
                status=400,
            )
        membership = memberships[0]
    else:
        membership = membership_for(user, organization_id)
    return Caller(membership.organization_id, user=user, membership=membership)


def api_key_caller(presented: str) -> Caller:
    """The caller a presented API key speaks for, or 401 `invalid_api_key`."""
    api_key, touched = authenticate_api_key(presented)
    if touched:
        # last_used_at moved (at most once a minute): keep it even when the view
        # fails or, like a GET, commits nothing.
        db.session.commit()
    return Caller(api_key.organization_id, api_key=api_key)


def caller_required(view: Callable[..., Any]) -> Callable[..., Any]:
    """Authenticate a bot or a person and resolve the organization before the view runs."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        presented = presented_api_key()
        g.caller = _person_caller() if presented is None else api_key_caller(presented)
        return view(*args, **kwargs)

    return wrapper


def person_required_unless_api_key(view: Callable[..., Any]) -> Callable[..., Any]:
    """Like `caller_required` for people; a presented API key is left to the view.

    For a view that authenticates the key together with its own work in one database
    round trip (`presented_api_key()` gives the key; `current_caller()` is then unset).
    """

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if presented_api_key() is None:
            g.caller = _person_caller()
        return view(*args, **kwargs)

    return wrapper


# MethodView decorators for people's endpoints: the last one runs first (who calls,
# for which organization), then API keys are refused.
PEOPLE_DECORATORS = [person_required, caller_required]


def widget_bot() -> Bot:
    """The bot of the presented publishable key (401 `invalid_widget_key`), called from
    one of its allowed origins (403 `origin_not_allowed`)."""
    bot = bot_by_publishable_key(request.headers.get(WIDGET_KEY_HEADER, ""))
    origin = request.headers.get("Origin", "").strip().rstrip("/").lower()
    if not origin or origin not in bot.allowed_origins:
        raise Forbidden(
            _("This site is not allowed to use the widget of this bot."),
            error="origin_not_allowed",
        )
    return bot


# --- quotas -----------------------------------------------------------------------------


def quota_headers(result: UsageResult) -> dict[str, str]:
    def number(value: int | None) -> str:
        return UNLIMITED if value is None else str(value)

    return {
        "X-Quota-Limit": number(result.limit),
        "X-Quota-Remaining": number(result.remaining),
        "X-Quota-Reset": result.period_end.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def quota_exceeded(error: QuotaExceeded) -> Response:
    """The envelope, plus where the quota stands and when to try again.

    Register it on each blueprint whose calls count usage:
    `blp.errorhandler(QuotaExceeded)(quota_exceeded)`.
    """
    response = json_error(error.status, error.error, error.message, error.errors)
    if error.usage is not None:
        response.headers.update(quota_headers(error.usage))
        wait = error.usage.period_end - utcnow()
        response.headers["Retry-After"] = str(max(int(wait.total_seconds()), 0))
    return response
