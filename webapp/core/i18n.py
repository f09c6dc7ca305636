"""Locale selection: the visitor's choice, then the account's, then the browser's, then zh_CN.

Outside a request (CLI, worker jobs) the default locale, zh_CN, applies.
"""

from __future__ import annotations

from flask import Flask, current_app, has_request_context, request, session
from flask_babel import get_locale
from flask_login import current_user

from webapp.extensions import babel


def select_locale() -> str:
    languages = current_app.config["LANGUAGES"]
    default = current_app.config["BABEL_DEFAULT_LOCALE"]
    if not has_request_context():  # CLI commands and worker jobs
        return str(default)
    chosen = session.get("lang")
    if chosen in languages:
        return str(chosen)
    if current_user and current_user.is_authenticated and current_user.locale in languages:
        return str(current_user.locale)
    if not request.accept_languages:
        return str(default)
    return str(request.accept_languages.best_match(list(languages), default=default))


def register_i18n(app: Flask) -> None:
    babel.init_app(app, locale_selector=select_locale)

    @app.context_processor
    def inject_languages() -> dict[str, object]:
        return {"languages": app.config["LANGUAGES"], "get_locale": get_locale}
