"""Configuration, read from the environment (and `.env` when present).

`APP_ENV` picks the class: `development` (default), `production` or `testing`.
Any other Flask or extension setting can be given as a `FLASK_`-prefixed
variable; `create_app` applies those last.
"""

from __future__ import annotations

import json
import os
from datetime import timedelta
from functools import partial
from pathlib import Path

from dotenv import load_dotenv

load_dotenv()

PROJECT_ROOT = Path(__file__).resolve().parent.parent
INSTANCE_DIR = PROJECT_ROOT / "instance"

# Values that must never reach production.
INSECURE_SECRET_KEYS = {"", "dev", "change-me", "development-only-secret-key-do-not-deploy"}
MIN_SECRET_KEY_LENGTH = 32
ANSWER_ENGINES = ("hybrid", "lexical")


class ConfigurationError(RuntimeError):
    """Raised when the configuration is unsafe or incomplete for the environment."""


def _env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value else default


def database_url(url: str) -> str:
    """Use the psycopg2 driver for plain PostgreSQL URLs (SQLAlchemy 2.1 would pick psycopg 3)."""
    for scheme in ("postgres://", "postgresql://"):
        if url.startswith(scheme):
            return "postgresql+psycopg2://" + url.removeprefix(scheme)
    return url


class Config:
    APP_ENV = "development"
    SECRET_KEY = os.environ.get("SECRET_KEY", "development-only-secret-key-do-not-deploy")
    SQLALCHEMY_DATABASE_URI = database_url(
        os.environ.get("DATABASE_URL", f"sqlite:///{INSTANCE_DIR / 'saas.db'}")
    )
    # JSON columns keep Chinese as is (not \uXXXX escapes), so searches can match inside them.
    # No pool_pre_ping: it costs a round trip on every checkout, i.e. every request. The
    # one request that meets a dead connection (PostgreSQL restarted) answers 503 to retry
    # (webapp.errors) and SQLAlchemy invalidates the pool, so each worker reconnects once.
    # pool_recycle replaces connections before idle timeouts (firewalls, PgBouncer) cut them.
    SQLALCHEMY_ENGINE_OPTIONS: dict[str, object] = {
        "pool_recycle": 1800,
        "json_serializer": partial(json.dumps, ensure_ascii=False),
    }
    REDIS_URL = os.environ.get("REDIS_URL", "")
    BASE_URL = os.environ.get("BASE_URL", "http://127.0.0.1:8000").rstrip("/")
    PAYMENTS_MODE = os.environ.get("PAYMENTS_MODE", "sandbox")
    # WeChat Pay (APIv3, Native). Keys are PEM text or a file path. Public-key mode when
    # WECHATPAY_PUBLIC_KEY(+_ID) is set, else platform-certificate mode (WECHATPAY_CERT_DIR).
    # In sandbox mode, anything unset comes from the sandbox's generated keys.
    WECHATPAY_MCHID = os.environ.get("WECHATPAY_MCHID")
    WECHATPAY_APPID = os.environ.get("WECHATPAY_APPID")
    WECHATPAY_APIV3_KEY = os.environ.get("WECHATPAY_APIV3_KEY")
    WECHATPAY_PRIVATE_KEY = os.environ.get("WECHATPAY_PRIVATE_KEY")
    WECHATPAY_CERT_SERIAL_NO = os.environ.get("WECHATPAY_CERT_SERIAL_NO")
    WECHATPAY_PUBLIC_KEY = os.environ.get("WECHATPAY_PUBLIC_KEY")
    WECHATPAY_PUBLIC_KEY_ID = os.environ.get("WECHATPAY_PUBLIC_KEY_ID")
    WECHATPAY_CERT_DIR = os.environ.get("WECHATPAY_CERT_DIR")
    WECHATPAY_GATEWAY = os.environ.get("WECHATPAY_GATEWAY")
    # Certificate mode: a notify naming an unknown platform certificate downloads them
    # again at most this often per process (forged serials must not hammer WeChat Pay).
    WECHATPAY_CERTIFICATE_REFRESH_SECONDS = 60
    # Alipay (RSA2). ALIPAY_GATEWAY is the full gateway URL (…/gateway.do).
    ALIPAY_APPID = os.environ.get("ALIPAY_APPID")
    ALIPAY_APP_PRIVATE_KEY = os.environ.get("ALIPAY_APP_PRIVATE_KEY")
    ALIPAY_PUBLIC_KEY = os.environ.get("ALIPAY_PUBLIC_KEY")
    ALIPAY_GATEWAY = os.environ.get("ALIPAY_GATEWAY")
    ALIPAY_SIGN_TYPE = os.environ.get("ALIPAY_SIGN_TYPE", "RSA2")
    # The merchant's PID (2088…): when set, notifies and queries must name this seller.
    ALIPAY_SELLER_ID = os.environ.get("ALIPAY_SELLER_ID")
    # Who gets the daily differences between the channels' bills and our records.
    OPERATOR_EMAIL = os.environ.get("OPERATOR_EMAIL", "")
    PAYMENT_NOTIFY_MAX_AGE_SECONDS = 300  # older signed notifies are refused (replays)
    PAYMENT_HTTP_TIMEOUT_SECONDS = 10
    # The sandbox retries a notify that was not acknowledged after these many seconds.
    SANDBOX_NOTIFY_RETRY_DELAYS = (2, 5, 15, 30, 60, 120, 300, 600)
    # How bots answer (webapp.kb.answering): "hybrid" (sentence vectors and words) or "lexical".
    ANSWER_ENGINE = os.environ.get("ANSWER_ENGINE", "hybrid")
    # The LLM answer engine (OpenAI-compatible chat completions): on when URL and model are set.
    LLM_BASE_URL = os.environ.get("LLM_BASE_URL", "")
    LLM_API_KEY = os.environ.get("LLM_API_KEY", "")
    LLM_MODEL = os.environ.get("LLM_MODEL", "")
    LLM_TIMEOUT_SECONDS = float(os.environ.get("LLM_TIMEOUT_SECONDS") or 10)
    PROXY_FIX_HOPS = _env_int("PROXY_FIX_HOPS", 0)
    CORS_ORIGINS = [o for o in os.environ.get("CORS_ORIGINS", "").split(",") if o]

    # Requests: nothing legitimate sends more than this to the portal or API.
    MAX_CONTENT_LENGTH = 1024 * 1024
    # FAQ imports: seconds of reading a file before it is refused (422 import_too_slow);
    # a 10,000-row XLSX reads in about 2 s.
    IMPORT_READ_SECONDS = 20.0

    # Cookies
    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    SESSION_COOKIE_SECURE = False
    REMEMBER_COOKIE_HTTPONLY = True
    REMEMBER_COOKIE_SAMESITE = "Lax"
    REMEMBER_COOKIE_SECURE = False
    PERMANENT_SESSION_LIFETIME = timedelta(days=14)

    # Passwords (argon2id). Defaults follow argon2-cffi's RFC 9106 low-memory profile.
    ARGON2_TIME_COST = 3
    ARGON2_MEMORY_COST = 65536
    ARGON2_PARALLELISM = 4

    # Tokens
    # Unset means SECRET_KEY (Flask-JWT-Extended's fallback), read after every override.
    JWT_SECRET_KEY = os.environ.get("JWT_SECRET_KEY")
    JWT_ACCESS_TOKEN_EXPIRES = timedelta(minutes=15)
    JWT_REFRESH_TOKEN_EXPIRES = timedelta(days=30)
    JWT_TOKEN_LOCATION = ["headers"]
    JWT_ERROR_MESSAGE_KEY = "message"
    PASSWORD_RESET_MAX_AGE = int(timedelta(hours=1).total_seconds())
    INVITATION_TTL = timedelta(days=7)
    ORDER_TTL_MINUTES = 30  # an unpaid order expires (and is closed) after this

    # Rate limits (Flask-Limiter). Redis when REDIS_URL is set, else in-process.
    RATELIMIT_STORAGE_URI = os.environ.get("REDIS_URL") or "memory://"
    RATELIMIT_HEADERS_ENABLED = True
    RATELIMIT_STRATEGY = "moving-window"
    # If Redis goes away, keep limiting per process rather than failing requests.
    RATELIMIT_IN_MEMORY_FALLBACK_ENABLED = True
    LOGIN_LIMIT_PER_IP = "20 per minute;200 per hour"
    LOGIN_LIMIT_PER_ACCOUNT = "5 per minute;30 per hour"
    SIGNUP_LIMIT_PER_IP = "10 per hour"
    PASSWORD_RESET_LIMIT_PER_IP = "10 per hour"
    PASSWORD_RESET_LIMIT_PER_EMAIL = "3 per hour"
    # The web widget: per visitor (its token, or the client IP before it has one) and per
    # publishable key; sends (new conversations, messages) and reads (config, polling every
    # 3 s while the panel is open) apart, so polling never eats into what a visitor can say.
    WIDGET_RATELIMIT_VISITOR = "20 per minute"
    WIDGET_RATELIMIT_VISITOR_READS = "60 per minute"
    WIDGET_RATELIMIT_KEY = "600 per minute"
    WIDGET_RATELIMIT_KEY_READS = "6000 per minute"
    # Per client IP (as PROXY_FIX_HOPS gives it) whatever visitor token it shows, since new
    # tokens are free to get: new conversations and messages together.
    WIDGET_RATELIMIT_IP = "30 per minute;300 per hour"

    # Mail: without MAIL_SERVER, mails are written to the log instead of sent.
    MAIL_SERVER = os.environ.get("MAIL_SERVER", "")
    MAIL_PORT = _env_int("MAIL_PORT", 587)
    MAIL_USE_TLS = _env_bool("MAIL_USE_TLS", True)
    MAIL_USE_SSL = _env_bool("MAIL_USE_SSL", False)
    MAIL_USERNAME = os.environ.get("MAIL_USERNAME")
    MAIL_PASSWORD = os.environ.get("MAIL_PASSWORD")
    MAIL_DEFAULT_SENDER = os.environ.get("MAIL_DEFAULT_SENDER", "no-reply@example.com")

    # i18n
    BABEL_DEFAULT_LOCALE = "zh_CN"
    BABEL_DEFAULT_TIMEZONE = "Asia/Shanghai"
    LANGUAGES = {"zh_CN": "中文", "en": "English"}

    # UI assets are served from the installed Bootstrap-Flask package, never a CDN.
    BOOTSTRAP_SERVE_LOCAL = True

    # OpenAPI (flask-smorest)
    API_TITLE = "智能客服 SaaS API"
    API_VERSION = "v1"
    OPENAPI_VERSION = "3.0.3"
    OPENAPI_URL_PREFIX = "/"
    OPENAPI_JSON_PATH = "openapi.json"
    OPENAPI_SWAGGER_UI_PATH = "/docs"
    OPENAPI_SWAGGER_UI_URL = "/vendor/swagger-ui/"
    API_SPEC_OPTIONS = {
        "components": {
            "securitySchemes": {
                "bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
                "apiKeyAuth": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
                "widgetKeyAuth": {"type": "apiKey", "in": "header", "name": "X-Widget-Key"},
            }
        }
    }

    # RQ. Without REDIS_URL, jobs run on a thread of the web process after the commit.
    RQ_QUEUES = ["default"]
    RQ_ASYNC = True
    # A job running longer is stopped (rq's default is 180 s): embedding a 10,000-entry
    # import takes about 2 minutes, and a stopped one is finished by `embed_missing`.
    RQ_JOB_TIMEOUT = int(os.environ.get("RQ_JOB_TIMEOUT", "900"))

    @classmethod
    def validate(cls, config: dict[str, object]) -> None:
        """Refuse configurations that are unsafe for this environment."""
        if config.get("ANSWER_ENGINE") not in ANSWER_ENGINES:
            raise ConfigurationError(
                f"ANSWER_ENGINE must be one of {', '.join(ANSWER_ENGINES)}, "
                f"not {config.get('ANSWER_ENGINE')!r}"
            )


class DevelopmentConfig(Config):
    pass


class ProductionConfig(Config):
    APP_ENV = "production"
    SESSION_COOKIE_SECURE = True
    REMEMBER_COOKIE_SECURE = True
    PAYMENTS_MODE = os.environ.get("PAYMENTS_MODE", "live")

    @classmethod
    def validate(cls, config: dict[str, object]) -> None:
        super().validate(config)
        for name in ("SECRET_KEY", "JWT_SECRET_KEY"):
            secret = config.get(name)
            if name == "JWT_SECRET_KEY" and secret is None:
                continue  # falls back to SECRET_KEY
            if (
                str(secret or "") in INSECURE_SECRET_KEYS
                or len(str(secret)) < MIN_SECRET_KEY_LENGTH
            ):
                raise ConfigurationError(
                    f"{name} must be set to a random value of at least "
                    f"{MIN_SECRET_KEY_LENGTH} characters in production "
                    '(python -c "import secrets; print(secrets.token_urlsafe(48))").'
                )
        if str(config.get("SQLALCHEMY_DATABASE_URI", "")).startswith("sqlite"):
            raise ConfigurationError("Set DATABASE_URL to a PostgreSQL database in production.")
        if config.get("PAYMENTS_MODE") == "sandbox":
            raise ConfigurationError("PAYMENTS_MODE=sandbox is not allowed in production.")


class TestConfig(Config):
    APP_ENV = "testing"
    TESTING = True
    SECRET_KEY = "testing-secret-key-that-is-long-enough-0123456789"
    SQLALCHEMY_DATABASE_URI = database_url(
        os.environ.get("TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/saas_test")
    )
    REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/15")
    RATELIMIT_STORAGE_URI = "memory://"
    RATELIMIT_IN_MEMORY_FALLBACK_ENABLED = False  # limiter errors must surface in tests
    MAIL_SUPPRESS_SEND = True
    LLM_BASE_URL = ""  # the lexical engine, whatever the environment says
    LLM_MODEL = ""
    RQ_ASYNC = False  # jobs run at once, in the test's process, through a real RQ queue
    BABEL_DEFAULT_LOCALE = "zh_CN"
    # Cheap hashes keep the suite fast; the algorithm and code path are the production ones.
    ARGON2_TIME_COST = 1
    ARGON2_MEMORY_COST = 1024
    ARGON2_PARALLELISM = 1
    SERVER_NAME = None


CONFIGS: dict[str, type[Config]] = {
    "development": DevelopmentConfig,
    "production": ProductionConfig,
    "testing": TestConfig,
}


def config_for(app_env: str | None) -> type[Config]:
    name = app_env or os.environ.get("APP_ENV", "development")
    try:
        return CONFIGS[name]
    except KeyError:
        raise ConfigurationError(
            f"APP_ENV must be one of {', '.join(CONFIGS)}; got {name!r}."
        ) from None
