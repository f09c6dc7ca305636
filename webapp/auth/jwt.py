"""JWT for people on the API: loaders and error answers in the API's envelope."""

from __future__ import annotations

import re
from typing import Any

from flask import Response
from flask_jwt_extended import JWTManager
from flask_jwt_extended.exceptions import JWTDecodeError

from webapp.auth.models import MAX_USER_ID, User
from webapp.auth.services import is_api_session_revoked
from webapp.errors import json_error
from webapp.extensions import db

USER_ID = re.compile(r"[0-9]{1,10}")
ID_CLAIM = re.compile(r"[0-9A-Za-z-]{1,36}")  # sid and jti: the uuid4 strings we issue


def check_claims(payload: dict[str, Any]) -> None:
    """Our tokens' claims have the shapes we issue; a signed token with others is invalid
    (401 `token_invalid`), never a database error."""
    sub, sid, jti = payload.get("sub"), payload.get("sid"), payload.get("jti")
    if not (isinstance(sub, str) and USER_ID.fullmatch(sub) and int(sub) <= MAX_USER_ID):
        raise JWTDecodeError("malformed subject")
    if not (isinstance(jti, str) and ID_CLAIM.fullmatch(jti)):
        raise JWTDecodeError("malformed token id")
    if sid is not None and not (isinstance(sid, str) and ID_CLAIM.fullmatch(sid)):
        raise JWTDecodeError("malformed session id")  # none at all: no session, so revoked


def register_jwt_handlers(jwt: JWTManager) -> None:
    @jwt.user_lookup_loader
    def load_user(_header: dict[str, Any], payload: dict[str, Any]) -> User | None:
        user = db.session.get(User, int(payload["sub"]))
        return user if user is not None and user.is_active_account else None

    @jwt.token_in_blocklist_loader  # the first of these hooks on every request with a token
    def session_revoked(_header: dict[str, Any], payload: dict[str, Any]) -> bool:
        check_claims(payload)
        return is_api_session_revoked(payload.get("sid"))

    @jwt.expired_token_loader
    def expired(_header: dict[str, Any], _payload: dict[str, Any]) -> Response:
        return json_error(401, "token_expired", "The token has expired.")

    @jwt.revoked_token_loader
    def revoked(_header: dict[str, Any], _payload: dict[str, Any]) -> Response:
        return json_error(401, "token_revoked", "The token has been revoked; log in again.")

    @jwt.invalid_token_loader
    def invalid(reason: str) -> Response:
        return json_error(401, "token_invalid", f"The token is invalid: {reason}")

    @jwt.unauthorized_loader
    def missing(reason: str) -> Response:
        return json_error(401, "authentication_required", f"Authentication required: {reason}")

    @jwt.needs_fresh_token_loader
    def not_fresh(_header: dict[str, Any], _payload: dict[str, Any]) -> Response:
        return json_error(401, "fresh_token_required", "Log in again to do this.")

    @jwt.user_lookup_error_loader
    def unknown_user(_header: dict[str, Any], _payload: dict[str, Any]) -> Response:
        return json_error(401, "token_invalid", "The token's account no longer exists.")
