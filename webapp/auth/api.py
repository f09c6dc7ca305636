"""/api/v1/auth: accounts and JWT sessions for people."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from flask import request
from flask.views import MethodView
from flask_jwt_extended import current_user, get_jwt, jwt_required
from flask_smorest import Blueprint

from webapp.auth import services
from webapp.auth.schemas import LoginSchema, MeSchema, RegisteredSchema, RegisterSchema, TokenSchema
from webapp.auth.throttle import login_attempt, throttled_per_ip
from webapp.errors import ErrorSchema
from webapp.extensions import db

blp = Blueprint("auth_api", __name__, url_prefix="/api/v1/auth", description="Accounts and tokens")


@blp.route("/register")
class Register(MethodView):
    decorators = [throttled_per_ip("SIGNUP_LIMIT_PER_IP")]

    @blp.arguments(RegisterSchema)
    @blp.response(201, RegisteredSchema)
    def post(self, data: dict[str, Any]) -> dict[str, Any]:
        """Create an account and log in"""
        user = services.register_user(data["email"], data["password"], data["name"])
        tokens = services.start_api_session(user, request.user_agent.string)
        db.session.commit()
        return {"user": user, **asdict(tokens)}


@blp.route("/login")
class Login(MethodView):
    @blp.arguments(LoginSchema)
    @blp.response(200, TokenSchema)
    @blp.alt_response(429, schema=ErrorSchema, description="`rate_limited` (see Retry-After)")
    def post(self, data: dict[str, Any]) -> dict[str, Any]:
        """Exchange email and password for tokens"""
        with login_attempt(data["email"]):
            user = services.authenticate(data["email"], data["password"])
        tokens = services.start_api_session(user, request.user_agent.string)
        db.session.commit()
        return asdict(tokens)


@blp.route("/refresh")
class Refresh(MethodView):
    @jwt_required(refresh=True)
    @blp.response(200, TokenSchema)
    @blp.doc(security=[{"bearerAuth": []}])
    def post(self) -> dict[str, Any]:
        """Rotate a refresh token (send it as the Bearer token)"""
        claims = get_jwt()
        try:
            tokens = services.rotate_refresh_token(int(claims["sub"]), claims["sid"], claims["jti"])
        finally:
            # A reused token revokes its session: keep that even though the call fails.
            db.session.commit()
        return asdict(tokens)


@blp.route("/logout")
class Logout(MethodView):
    @jwt_required(verify_type=False)
    @blp.response(204)
    @blp.doc(security=[{"bearerAuth": []}])
    def post(self) -> None:
        """End this session: its access and refresh tokens stop working"""
        services.revoke_api_session(get_jwt()["sid"])
        db.session.commit()


@blp.route("/me")
class Me(MethodView):
    @jwt_required()
    @blp.response(200, MeSchema)
    @blp.doc(security=[{"bearerAuth": []}])
    def get(self) -> Any:
        """The caller, with organizations and roles"""
        return current_user
