"""JWT for people on the API: loaders and error answers in the API's envelope."""

from __future__ import annotations

from typing import Any

from flask import Response
from flask_jwt_extended import JWTManager

from webapp.auth.models import User
from webapp.auth.services import is_api_session_revoked
from webapp.errors import json_error
from webapp.extensions import db


def register_jwt_handlers(jwt: JWTManager) -> None:
    @jwt.user_lookup_loader
    def load_user(_header: dict[str, Any], payload: dict[str, Any]) -> User | None:
        user = db.session.get(User, int(payload["sub"]))
        return user if user is not None and user.is_active_account else None

    @jwt.token_in_blocklist_loader
    def session_revoked(_header: dict[str, Any], payload: dict[str, Any]) -> bool:
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
