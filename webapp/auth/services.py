"""Accounts, passwords, API sessions (JWT) and password resets."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from email_validator import EmailNotValidError, validate_email
from flask import current_app
from flask_babel import gettext as _
from flask_jwt_extended import create_access_token, create_refresh_token
from itsdangerous import BadSignature, URLSafeTimedSerializer

from webapp.auth.models import AuthSession, User
from webapp.core.mail import external_url, send_mail
from webapp.db import utcnow
from webapp.errors import AppError, Conflict, Unauthorized
from webapp.extensions import db

PASSWORD_MIN_LENGTH = 8
PASSWORD_MAX_LENGTH = 128
RESET_SALT = "password-reset"


@dataclass(frozen=True)
class TokenPair:
    access_token: str
    refresh_token: str
    expires_in: int


def normalize_email(email: str) -> str:
    """Validate syntax (no DNS) and lower-case the whole address."""
    try:
        result = validate_email(email.strip(), check_deliverability=False)
    except EmailNotValidError:
        message = _("Enter a valid email address.")
        raise AppError(
            message, error="validation_error", status=422, errors={"email": [message]}
        ) from None
    return result.normalized.lower()


def _hasher() -> PasswordHasher:
    config = current_app.config
    return PasswordHasher(
        time_cost=config["ARGON2_TIME_COST"],
        memory_cost=config["ARGON2_MEMORY_COST"],
        parallelism=config["ARGON2_PARALLELISM"],
    )


def hash_password(password: str) -> str:
    check_password_policy(password)
    return _hasher().hash(password)


def check_password_policy(password: str) -> None:
    if not PASSWORD_MIN_LENGTH <= len(password) <= PASSWORD_MAX_LENGTH:
        raise AppError(
            _(
                "Password must be %(min)d to %(max)d characters long.",
                min=PASSWORD_MIN_LENGTH,
                max=PASSWORD_MAX_LENGTH,
            ),
            error="weak_password",
            status=422,
        )


def find_user_by_email(email: str) -> User | None:
    return db.session.scalar(sa.select(User).where(User.email == email.strip().lower()))


def register_user(email: str, password: str, name: str = "") -> User:
    email = normalize_email(email)
    if find_user_by_email(email) is not None:
        raise Conflict(_("An account with this email already exists."), error="email_taken")
    user = User(email=email, name=name.strip(), password_hash=hash_password(password))
    db.session.add(user)
    db.session.flush()
    return user


def authenticate(email: str, password: str) -> User:
    """Return the user for these credentials or raise `invalid_credentials`.

    An unknown email costs one hash too, so response time does not reveal accounts.
    """
    user = find_user_by_email(email)
    hasher = _hasher()
    if user is None:
        hasher.hash(password)
        raise Unauthorized(_("Email or password is incorrect."), error="invalid_credentials")
    try:
        hasher.verify(user.password_hash, password)
    except (VerificationError, InvalidHashError):
        raise Unauthorized(
            _("Email or password is incorrect."), error="invalid_credentials"
        ) from None
    if not user.is_active_account:
        raise Unauthorized(_("This account is disabled."), error="account_disabled")
    if hasher.check_needs_rehash(user.password_hash):
        user.password_hash = hasher.hash(password)
    user.last_login_at = utcnow()
    return user


def end_portal_sessions(user: User) -> None:
    """End every portal session of the user, in every browser, remember-me cookies included:
    their ids carry the old generation (a copied cookie stops working too)."""
    user.session_generation = db.session.execute(
        sa.update(User)
        .where(User.id == user.id)
        .values(session_generation=User.session_generation + 1)
        .returning(User.session_generation)
        .execution_options(synchronize_session=False)
    ).scalar_one()


def set_password(user: User, new_password: str) -> None:
    """Change the password and end every portal and API session of the user."""
    user.password_hash = hash_password(new_password)
    end_portal_sessions(user)
    db.session.execute(
        sa.update(AuthSession)
        .where(AuthSession.user_id == user.id, AuthSession.revoked_at.is_(None))
        .values(revoked_at=utcnow(), revoked_reason="password_changed")
    )


# --- API sessions ---------------------------------------------------------


def _issue_tokens(user: User, session: AuthSession) -> TokenPair:
    identity = str(user.id)
    access = create_access_token(identity=identity, additional_claims={"sid": session.id})
    refresh = create_refresh_token(
        identity=identity, additional_claims={"sid": session.id, "jti": session.current_jti}
    )
    expires = current_app.config["JWT_ACCESS_TOKEN_EXPIRES"]
    return TokenPair(access, refresh, int(expires.total_seconds()))


def start_api_session(user: User, user_agent: str = "") -> TokenPair:
    session = AuthSession(
        id=str(uuid.uuid4()),
        user_id=user.id,
        current_jti=str(uuid.uuid4()),
        expires_at=utcnow() + current_app.config["JWT_REFRESH_TOKEN_EXPIRES"],
        user_agent=user_agent[:255],
    )
    db.session.add(session)
    db.session.flush()
    return _issue_tokens(user, session)


class TokenRevoked(Unauthorized):
    error = "token_revoked"


def rotate_refresh_token(user_id: int, session_id: str, jti: str) -> TokenPair:
    """Swap a refresh token for a new pair. A reused token revokes its session.

    The revocation is flushed before `TokenRevoked` is raised: the caller must
    commit it even though the request fails.
    """
    session = db.session.scalar(
        sa.select(AuthSession).where(AuthSession.id == session_id).with_for_update()
    )
    if session is None or session.user_id != user_id or session.revoked_at is not None:
        raise TokenRevoked(_("This session has ended; log in again."))
    if session.current_jti != jti:
        session.revoked_at = utcnow()
        session.revoked_reason = "refresh_reuse"
        db.session.flush()
        raise TokenRevoked(_("This refresh token was already used; the session is revoked."))
    if not session.user.is_active_account:
        raise Unauthorized(_("This account is disabled."), error="account_disabled")
    session.current_jti = str(uuid.uuid4())
    session.last_refreshed_at = utcnow()
    return _issue_tokens(session.user, session)


def revoke_api_session(session_id: str, reason: str = "logout") -> None:
    db.session.execute(
        sa.update(AuthSession)
        .where(AuthSession.id == session_id, AuthSession.revoked_at.is_(None))
        .values(revoked_at=utcnow(), revoked_reason=reason)
    )


def is_api_session_revoked(session_id: str | None) -> bool:
    if not session_id:
        return True
    revoked_at = db.session.execute(
        sa.select(AuthSession.revoked_at).where(AuthSession.id == session_id)
    ).first()
    return revoked_at is None or revoked_at[0] is not None


# --- password reset ---------------------------------------------------------


def _reset_serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=RESET_SALT)


def make_password_reset_token(user: User) -> str:
    return _reset_serializer().dumps({"uid": user.id, "fp": user.password_fingerprint})


def request_password_reset(email: str) -> None:
    """Mail a reset link if the account exists; say nothing either way."""
    user = find_user_by_email(email)
    if user is None or not user.is_active_account:
        return
    token = make_password_reset_token(user)
    link = external_url("auth.reset_password", token=token)
    send_mail(
        user.email,
        _("Reset your password"),
        _(
            "Open this link within one hour to choose a new password:\n%(link)s\n\n"
            "If you did not ask for this, ignore this mail.",
            link=link,
        ),
    )


def user_for_reset_token(token: str) -> User:
    """The user a reset link is for; a link stops working once the password changes."""
    invalid = AppError(
        _("This reset link is invalid or has expired."), error="invalid_token", status=400
    )
    try:
        data = _reset_serializer().loads(
            token, max_age=current_app.config["PASSWORD_RESET_MAX_AGE"]
        )
    except BadSignature:
        raise invalid from None
    user = db.session.get(User, data.get("uid")) if isinstance(data, dict) else None
    if user is None or user.password_fingerprint != data.get("fp"):
        raise invalid
    return user
