"""Portal: sign up, log in and out, reset a forgotten password."""

from __future__ import annotations

import re

from flask import Blueprint, Flask, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required, login_user, logout_user
from werkzeug.wrappers import Response

from webapp.auth import services
from webapp.auth.forms import ForgotPasswordForm, LoginForm, ResetPasswordForm, SignupForm
from webapp.auth.models import MAX_USER_ID, User
from webapp.auth.throttle import (
    TooManyLogins,
    login_attempt,
    password_reset_throttled,
    throttled_per_ip,
)
from webapp.core.security import safe_next_url
from webapp.errors import AppError
from webapp.extensions import db, login_manager

bp = Blueprint("auth", __name__)
SESSION_ID = re.compile(r"(?P<user>[0-9]{1,10})\.(?P<generation>[0-9]{1,10})")


def register_login_manager(app: Flask) -> None:
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.login_message = _l("Please log in to continue.")
    login_manager.login_message_category = "warning"


@login_manager.user_loader
def load_user(session_id: str) -> User | None:
    """Session ids carry the user's session generation: logging out, changing or resetting
    the password bump it, which ends every session and remember-me cookie issued before."""
    match = SESSION_ID.fullmatch(session_id)
    if match is None or int(match["user"]) > MAX_USER_ID:
        return None
    user = db.session.get(User, int(match["user"]))
    if user is None or user.session_generation != int(match["generation"]):
        return None
    return user


def _redirect_after_login() -> Response:
    return redirect(safe_next_url(request.args.get("next"), url_for("orgs.dashboard")))


@bp.route("/signup", methods=["GET", "POST"])
@throttled_per_ip("SIGNUP_LIMIT_PER_IP")
def signup() -> Response | str:
    if current_user.is_authenticated:
        return redirect(url_for("orgs.dashboard"))
    form = SignupForm(email=request.args.get("email", ""))
    if form.validate_on_submit():
        try:
            user = services.register_user(
                form.email.data or "", form.password.data or "", form.name.data or ""
            )
        except AppError as exc:
            form.email.errors = [*form.email.errors, exc.message]
        else:
            db.session.commit()
            login_user(user)
            flash(_("Welcome! Create your first organization to get started."), "success")
            return _redirect_after_login()
    return render_template("auth/signup.html", form=form)


@bp.route("/login", methods=["GET", "POST"])
def login() -> Response | tuple[str, int] | str:
    if current_user.is_authenticated:
        return _redirect_after_login()
    form = LoginForm()
    if form.validate_on_submit():
        email = form.email.data or ""
        try:
            with login_attempt(email):
                user = services.authenticate(email, form.password.data or "")
        except TooManyLogins:
            raise  # the 429 page
        except AppError as exc:
            flash(exc.message, "danger")
            return render_template("auth/login.html", form=form), exc.status
        db.session.commit()
        login_user(user, remember=bool(form.remember.data))
        return _redirect_after_login()
    return render_template("auth/login.html", form=form)


@bp.post("/logout")
@login_required
def logout() -> Response:
    services.end_portal_sessions(current_user)  # every browser's, see the README
    db.session.commit()
    logout_user()
    flash(_("You have logged out."), "info")
    return redirect(url_for("auth.login"))


@bp.route("/forgot-password", methods=["GET", "POST"])
@password_reset_throttled
def forgot_password() -> Response | str:
    form = ForgotPasswordForm()
    if form.validate_on_submit():
        services.request_password_reset(form.email.data or "")
        db.session.commit()  # queues the mail job
        flash(
            _("If an account exists for that email, we have sent a link to reset the password."),
            "info",
        )
        return redirect(url_for("auth.login"))
    return render_template("auth/forgot_password.html", form=form)


@bp.route("/reset-password/<token>", methods=["GET", "POST"])
def reset_password(token: str) -> Response | tuple[str, int] | str:
    try:
        user = services.user_for_reset_token(token)
    except AppError as exc:
        flash(exc.message, "danger")
        return redirect(url_for("auth.forgot_password"))
    form = ResetPasswordForm()
    if form.validate_on_submit():
        services.set_password(user, form.password.data or "")
        db.session.commit()
        login_user(user)
        flash(_("Your password has been changed."), "success")
        return redirect(url_for("orgs.dashboard"))
    return render_template("auth/reset_password.html", form=form)
