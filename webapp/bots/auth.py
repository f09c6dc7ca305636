"""Who is calling an organization-scoped API endpoint: a bot (API key) or a person (JWT).

Bots send `Authorization: Bearer sk_...` or `X-API-Key: sk_...`; the key implies
its organization. People send their access JWT and pick the organization with
`X-Organization-ID` (or `?organization_id=`), which defaults to their only one.
API keys never pass `jwt_required()`, so they cannot reach people's endpoints.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps
from typing import Any

from flask import g, request
from flask_babel import gettext as _
from flask_jwt_extended import get_current_user, verify_jwt_in_request

from webapp.auth.models import User
from webapp.bots.services import KeyIdentity, authenticate_api_key, looks_like_api_key
from webapp.errors import AppError, Forbidden, Unauthorized
from webapp.extensions import db
from webapp.orgs.models import OrganizationMember
from webapp.orgs.services import membership_for, memberships_of

ORGANIZATION_HEADER = "X-Organization-ID"
API_KEY_HEADER = "X-API-Key"
CALLER_SECURITY: list[dict[str, list[str]]] = [{"apiKeyAuth": []}, {"bearerAuth": []}]


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
    if caller.bot_id is None:
        return requested
    if requested is not None and requested != caller.bot_id:
        raise Forbidden(_("This API key is bound to another bot."), error="bot_mismatch")
    return caller.bot_id


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
