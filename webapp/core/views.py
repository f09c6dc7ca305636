"""Landing, health check, language switch, the CSRF error page and locally served vendor assets."""

from __future__ import annotations

import logging
from typing import Any

import sqlalchemy as sa
import swagger_ui_bundle
from flask import (
    Blueprint,
    current_app,
    redirect,
    request,
    send_from_directory,
    session,
    url_for,
)
from flask_babel import gettext as _
from flask_login import current_user
from flask_wtf.csrf import CSRFError
from redis import Redis
from redis.exceptions import RedisError
from werkzeug.wrappers import Response

from webapp.core.security import safe_next_url
from webapp.core.validation import check_request
from webapp.errors import handle_database_error, render_error_page
from webapp.extensions import db

log = logging.getLogger(__name__)
bp = Blueprint("core", __name__)


@bp.get("/")
def index() -> Response:
    if current_user.is_authenticated:
        return redirect(url_for("orgs.dashboard"))
    return redirect(url_for("auth.login"))


@bp.get("/lang/<code>")
def set_language(code: str) -> Response:
    if code in current_app.config["LANGUAGES"]:
        session["lang"] = code
    return redirect(safe_next_url(request.args.get("next"), url_for("core.index")))


@bp.app_errorhandler(CSRFError)
def csrf_error(error: CSRFError) -> tuple[str, int]:
    """Say why a form was refused: usually a page left open too long (API routes are exempt)."""
    return render_error_page(
        400,
        _("This form has expired. Go back, reload the page and try again."),
    )


bp.before_app_request(check_request)  # one rule for the text every request carries


@bp.after_app_request
def end_transaction(response: Response) -> Response:
    """End the request's transaction before the response leaves (rather than in teardown).

    A connection the database dropped after the view's last query is found when the
    transaction ends; in teardown that failure escaped every handler and the server
    answered its own 500. Here it is the designed 503 (nothing was committed, so the
    client may retry), and the pool is already invalidated.
    """
    try:
        db.session.close()
    except sa.exc.DBAPIError as error:
        if not error.connection_invalidated:
            raise
        return current_app.make_response(handle_database_error(error))
    return response


@bp.get("/livez")
def livez() -> dict[str, str]:
    """Liveness: the process answers; touches nothing else (also the benchmark's baseline)."""
    return {"status": "ok"}


@bp.get("/healthz")
def healthz() -> tuple[dict[str, Any], int]:
    """Database and Redis reachability, for load balancers and orchestrators."""
    checks: dict[str, str] = {}
    try:
        db.session.execute(sa.text("SELECT 1"))
        checks["database"] = "ok"
    except sa.exc.SQLAlchemyError as exc:
        log.warning("health check: database unreachable: %s", exc)
        checks["database"] = "unreachable"
    redis_url = current_app.config["REDIS_URL"]
    if redis_url:
        try:
            Redis.from_url(redis_url, socket_timeout=2, socket_connect_timeout=2).ping()
            checks["redis"] = "ok"
        except RedisError as exc:
            log.warning("health check: redis unreachable: %s", exc)
            checks["redis"] = "unreachable"
    else:
        checks["redis"] = "not_configured"
    healthy = all(value != "unreachable" for value in checks.values())
    return {"status": "ok" if healthy else "degraded", "checks": checks}, 200 if healthy else 503


@bp.get("/vendor/swagger-ui/<path:filename>")
def swagger_ui_asset(filename: str) -> Response:
    """Swagger UI for /docs, from the installed package instead of a CDN."""
    return send_from_directory(swagger_ui_bundle.swagger_ui_path, filename, max_age=86400)
