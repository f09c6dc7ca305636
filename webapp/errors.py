"""One error envelope for the API, HTML error pages for the portal.

API errors follow flask-smorest's envelope plus a stable machine-readable id:
`{"code": 404, "status": "Not Found", "error": "not_found", "message": "..."}`.
Services raise `AppError` (or a subclass); the API turns it into the envelope
and portal views either flash its message or show the HTML error page.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import flask_smorest
import marshmallow as ma
import sqlalchemy as sa
from flask import Flask, Response, jsonify, render_template, request
from flask_babel import lazy_gettext as _l
from werkzeug.exceptions import HTTPException, InternalServerError
from werkzeug.http import HTTP_STATUS_CODES

log = logging.getLogger(__name__)

API_PREFIX = "/api/"

DEFAULT_ERROR_IDS = {
    400: "bad_request",
    401: "authentication_required",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "rate_limited",
    500: "internal_error",
    503: "service_unavailable",
}


class AppError(Exception):
    """A rule was broken; carries the HTTP status, a stable id and a human message."""

    status = 400
    error = "bad_request"

    def __init__(
        self,
        message: str,
        *,
        error: str | None = None,
        status: int | None = None,
        errors: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if error is not None:
            self.error = error
        if status is not None:
            self.status = status
        self.errors = errors
        self.headers = headers or {}  # e.g. Retry-After


class NotFound(AppError):
    status = 404
    error = "not_found"


class Forbidden(AppError):
    status = 403
    error = "forbidden"


class Conflict(AppError):
    status = 409
    error = "conflict"


class Unauthorized(AppError):
    status = 401
    error = "authentication_required"


def wants_json() -> bool:
    return request.path.startswith(API_PREFIX) or request.path in ("/healthz", "/livez")


def error_payload(
    status: int, error: str, message: str | None = None, errors: dict[str, Any] | None = None
) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "code": status,
        "status": HTTP_STATUS_CODES.get(status, "Unknown Error"),
        "error": error,
        "message": message or HTTP_STATUS_CODES.get(status, "Error"),
    }
    if errors:
        payload["errors"] = _string_keys(errors)
    return payload


def _string_keys(errors: Mapping[Any, Any]) -> dict[str, Any]:
    """Field errors keyed by strings, as JSON (sorted) needs: list positions come as ints,
    and a multipart part without a name as None."""
    keyed: dict[str, Any] = {}
    for key, value in errors.items():
        nested = isinstance(value, Mapping)
        keyed["" if key is None else str(key)] = _string_keys(value) if nested else value
    return keyed


def json_error(
    status: int, error: str, message: str | None = None, errors: dict[str, Any] | None = None
) -> Response:
    response = jsonify(error_payload(status, error, message, errors))
    response.status_code = status
    return response


def render_error_page(status: int, message: str | None = None) -> tuple[str, int]:
    titles = {
        400: _l("Bad request"),
        403: _l("You do not have permission to do that"),
        404: _l("Page not found"),
        405: _l("Method not allowed"),
        413: _l("Request too large"),
        429: _l("Too many requests, please slow down"),
        500: _l("Something went wrong on our side"),
        503: _l("Temporarily unavailable, please try again"),
    }
    title = titles.get(status, HTTP_STATUS_CODES.get(status, "Error"))
    return render_template("errors/error.html", status=status, title=title, message=message), status


class ErrorSchema(flask_smorest.error_handler.ErrorSchema):
    """The documented error envelope: flask-smorest's, plus the stable `error` id."""

    error = ma.fields.String(metadata={"description": "Stable machine-readable error id"})


class Api(flask_smorest.Api):
    """flask-smorest's Api, made to answer HTML for portal pages and add `error` ids."""

    ERROR_SCHEMA = ErrorSchema

    def handle_http_exception(self, error: HTTPException) -> Any:
        status = error.code or 500
        if status >= 500:
            log.exception("unhandled error on %s %s", request.method, request.path)
        if not wants_json():
            return render_error_page(status)
        payload, status, headers = super().handle_http_exception(error)
        # Keep the exception's own headers (Allow on 405, Retry-After...), not its HTML type.
        own = {k: v for k, v in error.get_headers() if k.lower() != "content-type"}
        headers = {**own, **(headers or {})}
        data = getattr(error, "data", None) or {}
        payload["error"] = data.get("error") or DEFAULT_ERROR_IDS.get(status, "error")
        payload.setdefault("message", _default_message(status, error))
        return payload, status, headers


def _default_message(status: int, error: HTTPException) -> str:
    if status == 422:
        return "The request is invalid; see `errors` for details."
    if status >= 500:
        return "Internal server error."
    return error.description or HTTP_STATUS_CODES.get(status, "Error")


def handle_app_error(error: AppError) -> Any:
    if wants_json():
        response = json_error(error.status, error.error, error.message, error.errors)
        response.headers.update(error.headers)
        return response
    return (*render_error_page(error.status, error.message), error.headers)


def handle_unexpected_error(error: Exception) -> Any:
    log.exception("unhandled error on %s %s", request.method, request.path)
    if wants_json():
        return json_error(500, "internal_error", "Internal server error.")
    return render_error_page(InternalServerError.code)


def handle_database_error(error: sa.exc.DBAPIError) -> Any:
    """A connection found dead (PostgreSQL restarted): the pool has already been
    invalidated, so a retry gets a fresh connection. Anything else is a bug (500)."""
    if not error.connection_invalidated:
        return handle_unexpected_error(error)
    log.warning("database connection lost on %s %s", request.method, request.path)
    if wants_json():
        response = json_error(
            503, "database_unavailable", "The database connection was lost; please retry."
        )
        response.headers["Retry-After"] = "1"
        return response
    return render_error_page(503)


def register_error_handlers(app: Flask) -> None:
    app.register_error_handler(AppError, handle_app_error)
    app.register_error_handler(sa.exc.DBAPIError, handle_database_error)
    app.register_error_handler(Exception, handle_unexpected_error)
