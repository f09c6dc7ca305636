"""Application factory: a short list of register_* calls."""

from __future__ import annotations

from typing import Any

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from webapp.config import INSTANCE_DIR, config_for

CORS_REQUEST_HEADERS = [
    "Authorization",
    "Content-Type",
    "X-API-Key",
    "X-Organization-ID",
    "Idempotency-Key",
]
# The widget's calls (webapp/conversations/widget_api.py), from any site that embeds it.
CORS_WIDGET_REQUEST_HEADERS = ["X-Widget-Key", "X-Visitor-Token", "Content-Type", "Idempotency-Key"]
CORS_RESPONSE_HEADERS = [
    "X-Pagination",
    "X-Quota-Limit",
    "X-Quota-Remaining",
    "X-Quota-Reset",
    "Idempotent-Replayed",
    "Retry-After",
]


def create_app(app_env: str | None = None, **overrides: Any) -> Flask:
    app = Flask(__name__, instance_path=str(INSTANCE_DIR))
    config_class = config_for(app_env)
    app.config.from_object(config_class)
    app.config.from_prefixed_env()
    app.config.update(overrides)
    config_class.validate(app.config)

    register_proxy_fix(app)
    register_converters(app)
    register_extensions(app)
    register_blueprints(app)
    register_error_handlers(app)
    register_cli(app)
    return app


def register_proxy_fix(app: Flask) -> None:
    hops = app.config["PROXY_FIX_HOPS"]
    if hops:
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops, x_port=hops
        )


def register_converters(app: Flask) -> None:
    from webapp.core.routing import register_converters as register

    register(app)


def register_extensions(app: Flask) -> None:
    from webapp import models  # noqa: F401  (every model known to SQLAlchemy/Alembic)
    from webapp.auth.jwt import register_jwt_handlers
    from webapp.auth.views import register_login_manager
    from webapp.core.headers import register_security_headers
    from webapp.core.i18n import register_i18n
    from webapp.core.jobs import register_jobs
    from webapp.extensions import api, bootstrap, cors, csrf, db, jwt, limiter, mail, migrate

    INSTANCE_DIR.mkdir(exist_ok=True)
    db.init_app(app)
    migrate.init_app(app, db, directory=str(INSTANCE_DIR.parent / "migrations"))
    csrf.init_app(app)
    jwt.init_app(app)
    limiter.init_app(app)
    mail.init_app(app)
    bootstrap.init_app(app)
    # Browsers may call the API (never the portal) from CORS_ORIGINS. Credentials travel
    # as headers (Bearer, X-API-Key), never cookies, so none are allowed cross-site.
    # The widget's API answers every origin here: it checks each bot's allowed origins itself.
    cors.init_app(
        app,
        resources={
            r"/api/v1/widget/*": {"origins": "*", "allow_headers": CORS_WIDGET_REQUEST_HEADERS},
            r"/api/*": {"origins": app.config["CORS_ORIGINS"]},
        },
        allow_headers=CORS_REQUEST_HEADERS,
        expose_headers=CORS_RESPONSE_HEADERS,
        max_age=600,
    )
    api.init_app(app)
    register_security_headers(app)
    register_i18n(app)
    register_jobs(app)
    register_login_manager(app)
    register_jwt_handlers(jwt)


def register_blueprints(app: Flask) -> None:
    from webapp.analytics import api as analytics_api
    from webapp.analytics import views as analytics_views
    from webapp.auth import api as auth_api
    from webapp.auth import views as auth_views
    from webapp.billing import api as billing_api
    from webapp.billing import views as billing_views
    from webapp.bots import api as bots_api
    from webapp.bots import views as bots_views
    from webapp.conversations import api as conversations_api
    from webapp.conversations import views as conversations_views
    from webapp.conversations import widget_api
    from webapp.core import views as core_views
    from webapp.extensions import api, csrf
    from webapp.invoices import api as invoices_api
    from webapp.invoices import views as invoices_views
    from webapp.kb import api as kb_api
    from webapp.kb import views as kb_views
    from webapp.learning import api as learning_api
    from webapp.learning import views as learning_views
    from webapp.orgs import api as orgs_api
    from webapp.orgs import views as orgs_views
    from webapp.payments import api as payments_api
    from webapp.payments import views as payments_views
    from webapp.usage import api as usage_api
    from webapp.usage import views as usage_views

    portal = (
        core_views,
        auth_views,
        orgs_views,
        billing_views,
        payments_views,
        invoices_views,
        bots_views,
        conversations_views,
        kb_views,
        learning_views,
        usage_views,
        analytics_views,
    )
    for module in portal:
        app.register_blueprint(module.bp)
    api_modules = (
        auth_api,
        orgs_api,
        billing_api,
        payments_api,
        invoices_api,
        bots_api,
        usage_api,
        kb_api,
        learning_api,
        conversations_api,
        widget_api,
        analytics_api,
    )
    for api_module in api_modules:
        csrf.exempt(api_module.blp)
        api.register_blueprint(api_module.blp)
    if app.config["PAYMENTS_MODE"] == "sandbox":  # never in production (config refuses it)
        from webapp.payments.sandbox.views import register_sandbox

        register_sandbox(app)


def register_error_handlers(app: Flask) -> None:
    from webapp.errors import register_error_handlers as register

    register(app)


def register_cli(app: Flask) -> None:
    """Operator commands (`flask --help`): each feature's, from its cli.py."""
    from webapp.auth.cli import create_admin
    from webapp.billing.cli import billing_cli
    from webapp.invoices.cli import INVOICE_COMMANDS
    from webapp.kb.cli import kb_cli
    from webapp.payments.cli import payments_cli

    for invoice_command in INVOICE_COMMANDS:  # 发票 are part of `flask billing`
        billing_cli.add_command(invoice_command)
    for command in (create_admin, billing_cli, kb_cli, payments_cli):
        app.cli.add_command(command)
