"""Bots and API keys.

A plan's bot limit is checked under a lock on the organization row, so two
concurrent creations cannot both take the last slot. Moving to a plan with a
lower limit keeps existing bots but refuses new ones.
"""

from __future__ import annotations

import hmac
import math
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

import sqlalchemy as sa
from flask_babel import gettext as _

from webapp.billing.services import plan_of
from webapp.bots.models import (
    DEFAULT_WIDGET_CAP_SHARE,
    HANDOFF_WORD_MAX_LENGTH,
    MAX_ALLOWED_ORIGINS,
    MAX_HANDOFF_WORDS,
    MAX_WIDGET_DAILY_CAP,
    ApiKey,
    Bot,
    new_publishable_key,
)
from webapp.core.security import token_digest
from webapp.db import UTCDateTime, utcnow
from webapp.errors import AppError, Forbidden, NotFound, Unauthorized
from webapp.extensions import db
from webapp.orgs.models import Organization, OrganizationMember

API_KEY_PREFIX = "sk"
# last_used_at is a hint for people, not an audit log: write it at most this often.
LAST_USED_RESOLUTION = timedelta(minutes=1)


def bots_of(organization_id: int, only_bot_id: int | None = None) -> sa.Select[Bot]:
    """The organization's bots; just one of them when `only_bot_id` is given (bound keys)."""
    query = sa.select(Bot).where(Bot.organization_id == organization_id).order_by(Bot.id)
    return query if only_bot_id is None else query.where(Bot.id == only_bot_id)


def bot_count(organization_id: int) -> int:
    return (
        db.session.scalar(
            sa.select(sa.func.count())
            .select_from(Bot)
            .where(Bot.organization_id == organization_id)
        )
        or 0
    )


def acting_bot_id(bound_bot_id: int | None, requested: int | None) -> int | None:
    """The bot a call is for: the one asked for, or the one its API key is bound to."""
    if bound_bot_id is None:
        return requested
    if requested is not None and requested != bound_bot_id:
        raise Forbidden(_("This API key is bound to another bot."), error="bot_mismatch")
    return bound_bot_id


def bot_of(organization_id: int, bot_id: int) -> Bot:
    """A bot of this organization, or 404 (also for another organization's bot).

    Read once per transaction: a second call (a message's answer, then its metering)
    finds it in the session."""
    bot = db.session.get(Bot, bot_id)
    if bot is None or bot.organization_id != organization_id:
        raise NotFound(_("Bot not found."), error="bot_not_found")
    return bot


def create_bot(
    actor: OrganizationMember, name: str, description: str = "", greeting: str = ""
) -> Bot:
    actor.require_manager()
    organization_id = actor.organization_id
    db.session.execute(
        sa.select(Organization.id).where(Organization.id == organization_id).with_for_update()
    )
    limit = plan_of(organization_id).bot_limit
    if limit is not None and bot_count(organization_id) >= limit:
        raise Forbidden(
            _(
                "Your plan allows %(limit)d bot(s); upgrade to add more.",
                limit=limit,
            ),
            error="plan_limit_reached",
            errors={"limit": [str(limit)]},
        )
    bot = Bot(
        organization_id=organization_id,
        name=_required_name(name),
        description=description.strip(),
        greeting=greeting.strip(),
    )
    db.session.add(bot)
    db.session.flush()
    return bot


def _required_name(name: str) -> str:
    name = name.strip()
    if not name:
        raise AppError(_("A name is required."), error="validation_error", status=422)
    return name


BRANDING_FIELDS = ("widget_title", "widget_color", "widget_logo_url", "show_powered_by")


def update_bot(actor: OrganizationMember, bot_id: int, **changes: object) -> Bot:
    """Rename or configure: name, texts, answering, widget origins and (plans with
    `branding`) the widget's branding. Only the fields given change."""
    actor.require_manager()
    bot = bot_of(actor.organization_id, bot_id)
    if any(field in changes for field in BRANDING_FIELDS) and not plan_of(
        actor.organization_id
    ).has_feature("branding"):
        raise Forbidden(
            _("Custom branding is not in your plan; upgrade to use it."),
            error="feature_not_in_plan",
        )
    for field in ("description", "greeting", "fallback_text", "widget_title"):
        if isinstance(value := changes.get(field), str):
            setattr(bot, field, value.strip())
    if isinstance(name := changes.get("name"), str):
        bot.name = _required_name(name)
    for flag in ("is_enabled", "show_powered_by"):
        if isinstance(value := changes.get(flag), bool):
            setattr(bot, flag, value)
    _set_thresholds(bot, changes.get("answer_threshold"), changes.get("suggest_threshold"))
    if isinstance(words := changes.get("handoff_words"), list):
        bot.handoff_words = normalized_handoff_words(words)
    if isinstance(color := changes.get("widget_color"), str):
        bot.widget_color = color.lower()
    if isinstance(logo := changes.get("widget_logo_url"), str):
        bot.widget_logo_url = _logo_url(logo)
    if isinstance(origins := changes.get("allowed_origins"), list):
        bot.allowed_origins = normalized_origins(origins)
    if "widget_daily_cap" in changes:
        bot.widget_daily_cap = _widget_daily_cap(changes["widget_daily_cap"])
    return bot


def _threshold(value: object, field: str) -> float | None:
    if not isinstance(value, float | int) or isinstance(value, bool):
        return None
    if not 0 <= value <= 1:
        message = _("The threshold is from 0 to 1.")
        raise AppError(message, error="validation_error", status=422, errors={field: [message]})
    return float(value)


def _set_thresholds(bot: Bot, answer_value: object, suggest_value: object) -> None:
    """0 <= suggest <= answer <= 1. An answer threshold set alone below the suggest threshold
    takes the suggest threshold down with it (so the unsure band is empty, not inverted)."""
    answer = _threshold(answer_value, "answer_threshold")
    suggest = _threshold(suggest_value, "suggest_threshold")
    new_answer = bot.answer_threshold if answer is None else answer
    if suggest is not None and suggest > new_answer:
        message = _("The suggest threshold must not be above the answer threshold.")
        raise AppError(
            message, error="validation_error", status=422, errors={"suggest_threshold": [message]}
        )
    bot.answer_threshold = new_answer
    bot.suggest_threshold = min(bot.suggest_threshold if suggest is None else suggest, new_answer)


def normalized_handoff_words(words: list[object]) -> list[str]:
    """Trimmed, without blanks or repeats; at most MAX_HANDOFF_WORDS of at most
    HANDOFF_WORD_MAX_LENGTH characters each (an empty list: no handoff words)."""
    kept: list[str] = []
    for raw in words:
        word = str(raw).strip()
        if len(word) > HANDOFF_WORD_MAX_LENGTH:
            message = _(
                "A handoff word has at most %(n)d characters: %(word)s",
                n=HANDOFF_WORD_MAX_LENGTH,
                word=word,
            )
            raise AppError(
                message, error="validation_error", status=422, errors={"handoff_words": [message]}
            )
        if word and word not in kept:
            kept.append(word)
    if len(kept) > MAX_HANDOFF_WORDS:
        message = _("At most %(n)d handoff words.", n=MAX_HANDOFF_WORDS)
        raise AppError(
            message, error="validation_error", status=422, errors={"handoff_words": [message]}
        )
    return kept


def _widget_daily_cap(value: object) -> int | None:
    if value is None:
        return None
    if not isinstance(value, int) or not 1 <= value <= MAX_WIDGET_DAILY_CAP:
        raise AppError(
            _("The daily cap is a number from 1 to %(n)d.", n=MAX_WIDGET_DAILY_CAP),
            error="validation_error",
            status=422,
        )
    return value


def widget_daily_limit(bot: Bot) -> int | None:
    """Widget messages the bot takes a day: the owner's cap, else the default share of the
    plan's monthly quota; None (no cap) on plans without a quota."""
    if bot.widget_daily_cap is not None:
        return bot.widget_daily_cap
    quota = plan_of(bot.organization_id).monthly_message_quota
    return None if quota is None else max(math.ceil(quota * DEFAULT_WIDGET_CAP_SHARE), 1)


def _logo_url(url: str) -> str:
    url = url.strip()
    parts = urlsplit(url)
    if url and (parts.scheme not in ("https", "http") or not parts.netloc):
        raise AppError(
            _("The logo must be an http(s) URL."),
            error="validation_error",
            status=422,
            errors={"widget_logo_url": [_("The logo must be an http(s) URL.")]},
        )
    return url


def normalized_origins(origins: list[object]) -> list[str]:
    """`scheme://host[:port]`, lower-cased, without repeats; anything else is 422."""
    kept: list[str] = []
    for raw in origins:
        text = str(raw).strip().rstrip("/").lower()
        parts = urlsplit(text)
        valid = (
            parts.scheme in ("http", "https")
            and parts.hostname
            and not (parts.path or parts.query or parts.fragment or parts.username)
        )
        if not valid:
            message = _("%(origin)s is not an origin like https://shop.example.", origin=raw)
            raise AppError(
                message, error="validation_error", status=422, errors={"allowed_origins": [message]}
            )
        if text not in kept:
            kept.append(text)
    if len(kept) > MAX_ALLOWED_ORIGINS:
        raise AppError(
            _("At most %(n)d origins.", n=MAX_ALLOWED_ORIGINS), error="validation_error", status=422
        )
    return kept


def rotate_publishable_key(actor: OrganizationMember, bot_id: int) -> Bot:
    """A new widget key; pages embedding the old one stop working at once."""
    actor.require_manager()
    bot = bot_of(actor.organization_id, bot_id)
    bot.publishable_key = new_publishable_key()
    db.session.flush()
    return bot


def bot_by_publishable_key(key: str) -> Bot:
    """The enabled bot a widget key belongs to, or 401 `invalid_widget_key` (also when
    disabled: a page embedding a switched-off bot learns nothing more)."""
    bot = db.session.scalar(sa.select(Bot).where(Bot.publishable_key == key.strip()))
    if bot is None or not bot.is_enabled:
        raise Unauthorized(
            _("The widget key is invalid or its bot is disabled."), error="invalid_widget_key"
        )
    return bot


def delete_bot(actor: OrganizationMember, bot_id: int) -> None:
    """Delete a bot and its keys; its usage stays counted (records keep no bot)."""
    actor.require_manager()
    bot = bot_of(actor.organization_id, bot_id)
    # Explicitly, not only by ON DELETE CASCADE: SQLite (the embedded default) does not
    # enforce foreign keys, and a deleted bot's keys must stop working there too.
    db.session.execute(sa.delete(ApiKey).where(ApiKey.bot_id == bot.id))
    db.session.delete(bot)
    db.session.flush()


# --- API keys ---------------------------------------------------------------


@dataclass(frozen=True)
class IssuedApiKey:
    api_key: ApiKey
    secret: str  # the full key, shown once


def api_keys_of(organization_id: int, bot_id: int | None = None) -> sa.Select[ApiKey]:
    """The organization's keys, revoked ones included, newest first; or those bound to a bot."""
    query = (
        sa.select(ApiKey)
        .where(ApiKey.organization_id == organization_id)
        .order_by(ApiKey.created_at.desc(), ApiKey.id.desc())
    )
    return query if bot_id is None else query.where(ApiKey.bot_id == bot_id)


def create_api_key(actor: OrganizationMember, name: str, bot_id: int | None = None) -> IssuedApiKey:
    actor.require_manager()
    if bot_id is not None:
        bot_of(actor.organization_id, bot_id)
    prefix = secrets.token_hex(6)  # unique: 48 bits keeps collisions (a 500) out of reach
    secret = secrets.token_urlsafe(32)
    api_key = ApiKey(
        organization_id=actor.organization_id,
        bot_id=bot_id,
        name=_required_name(name),
        prefix=prefix,
        secret_hash=token_digest(secret),
        created_by_id=actor.user_id,
    )
    db.session.add(api_key)
    db.session.flush()
    return IssuedApiKey(api_key, f"{API_KEY_PREFIX}_{prefix}_{secret}")


def revoke_api_key(actor: OrganizationMember, api_key_id: int) -> ApiKey:
    actor.require_manager()
    api_key = db.session.scalar(
        sa.select(ApiKey).where(
            ApiKey.id == api_key_id, ApiKey.organization_id == actor.organization_id
        )
    )
    if api_key is None:
        raise NotFound(_("API key not found."), error="api_key_not_found")
    api_key.revoked_at = api_key.revoked_at or utcnow()
    return api_key


def looks_like_api_key(token: str) -> bool:
    return token.startswith(API_KEY_PREFIX + "_")


@dataclass(frozen=True)
class KeyIdentity:
    """Who an authenticated API key speaks for (all a request needs of the key)."""

    id: int
    organization_id: int
    bot_id: int | None


# On every bot call: one indexed read, and a write at most once a minute per key.
_FIND_KEY = sa.text(
    "SELECT id, organization_id, bot_id, secret_hash, revoked_at, last_used_at "
    "FROM api_keys WHERE prefix = :prefix"
).columns(revoked_at=UTCDateTime(), last_used_at=UTCDateTime())
_TOUCH_KEY = sa.text("UPDATE api_keys SET last_used_at = :now WHERE id = :id").bindparams(
    sa.bindparam("now", type_=UTCDateTime())
)


def api_key_parts(token: str) -> tuple[str, str] | None:
    """`sk_<prefix>_<secret>` as (prefix, secret), or None for anything else."""
    parts = token.split("_", 2)
    if len(parts) != 3 or parts[0] != API_KEY_PREFIX:
        return None
    return parts[1], parts[2]


def authenticate_api_key(token: str, now: datetime | None = None) -> tuple[KeyIdentity, bool]:
    """The live key for a presented secret, or 401 `invalid_api_key` (revoked ones included).

    Also says whether `last_used_at` was just moved (the caller commits that).
    """
    parts = api_key_parts(token)
    row = None if parts is None else db.session.execute(_FIND_KEY, {"prefix": parts[0]}).first()
    if (
        parts is None
        or row is None
        or not hmac.compare_digest(row.secret_hash, token_digest(parts[1]))
        or row.revoked_at is not None
    ):
        raise Unauthorized(_("The API key is invalid or revoked."), error="invalid_api_key")
    now = now or utcnow()
    touched = row.last_used_at is None or now - row.last_used_at >= LAST_USED_RESOLUTION
    if touched:
        db.session.execute(_TOUCH_KEY, {"now": now, "id": row.id})
    return KeyIdentity(row.id, row.organization_id, row.bot_id), touched
