"""/api/v1/widget: the embeddable web widget's API, called by visitors of a customer's site.

A bot's publishable key (`X-Widget-Key: pk_...`) is public by design (it sits in the
embedding page), so it grants little: read the bot's widget settings, start a
conversation with that bot, and post to and read a conversation it started, each
only with the visitor token handed out when that conversation started
(`X-Visitor-Token`; only its digest is stored). Any other conversation, of this bot
or another, is 404.

Requests must come from one of the bot's allowed origins: browsers set `Origin` and
page scripts cannot change it; a request without one is refused too. CORS lets every
origin through on these paths (webapp/__init__.py) because this check is made here,
per bot. Limits per client IP (across visitor tokens), per visitor (token, or client
IP before there is one) and per key come from the WIDGET_RATELIMIT_* settings; messages
are metered like any other, and each bot takes at most its daily cap of widget
messages (widget_caps.py).
Quota figures are the organization's business, so they stay out of these answers.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import current_app, request
from flask.views import MethodView
from flask_limiter import RouteLimit
from flask_limiter.util import get_remote_address
from flask_smorest import Blueprint

from webapp.api import WIDGET_KEY, WIDGET_KEY_HEADER, widget_bot
from webapp.billing.services import plan_of
from webapp.bots.models import DEFAULT_WIDGET_COLOR, Bot
from webapp.conversations import services, widget_caps
from webapp.conversations.api import exchange_response, read_message_request
from webapp.conversations.models import MAX_ATTACHMENT_BYTES, Channel, Conversation
from webapp.conversations.schemas import (
    MessageIdempotencyHeaderSchema,
    MessagesArgsSchema,
    WidgetConfigSchema,
    WidgetConversationCreatedSchema,
    WidgetConversationCreateSchema,
    WidgetExchangeSchema,
    WidgetMessagesSchema,
)
from webapp.core.security import new_token, token_digest
from webapp.core.uploads import allow_uploads
from webapp.db import commit_keeping_objects
from webapp.errors import ErrorSchema
from webapp.extensions import db, limiter

VISITOR_HEADER = "X-Visitor-Token"
UPLOAD_FEATURES = ("image", "voice")
POLL_BATCH = 100  # messages per poll; the widget asks again after the last id it got

blp = Blueprint("widget_api", __name__, url_prefix="/api/v1/widget", description="Web widget")

VISITOR_PARAMETER: dict[str, Any] = {
    "in": "header",
    "name": VISITOR_HEADER,
    "required": True,
    "schema": {"type": "string"},
    "description": "The token returned when the conversation started",
}


def _visitor_limit_key() -> str:
    token = request.headers.get(VISITOR_HEADER, "").strip()
    return "visitor:" + token_digest(token) if token else "ip:" + get_remote_address()


def _ip_limit_key() -> str:
    """The client's address as ProxyFix gives it (PROXY_FIX_HOPS), whatever token it holds."""
    return "ip:" + get_remote_address()


def _key_limit_key() -> str:
    return "key:" + token_digest(request.headers.get(WIDGET_KEY_HEADER, "").strip())


def _limit(setting: str, key_func: Callable[[], str], methods: list[str]) -> RouteLimit:
    """One bucket per visitor or key across every widget endpoint, for the given methods."""
    return limiter.shared_limit(
        lambda: current_app.config[setting],
        scope=setting.lower(),
        key_func=key_func,
        methods=methods,
    )


RATE_LIMITS: list[Callable[..., Any]] = [
    _limit("WIDGET_RATELIMIT_IP", _ip_limit_key, ["POST"]),
    _limit("WIDGET_RATELIMIT_VISITOR", _visitor_limit_key, ["POST"]),
    _limit("WIDGET_RATELIMIT_VISITOR_READS", _visitor_limit_key, ["GET"]),
    _limit("WIDGET_RATELIMIT_KEY", _key_limit_key, ["POST"]),
    _limit("WIDGET_RATELIMIT_KEY_READS", _key_limit_key, ["GET"]),
]


def _visitor_conversation(
    bot: Bot, conversation_id: int, *, for_update: bool = False
) -> Conversation:
    token = request.headers.get(VISITOR_HEADER, "").strip()
    return services.visitor_conversation(bot, conversation_id, token, for_update=for_update)


@blp.route("/config")
class Config(MethodView):
    decorators = RATE_LIMITS

    @blp.response(200, WidgetConfigSchema)
    @blp.alt_response(401, schema=ErrorSchema, description="`invalid_widget_key`")
    @blp.alt_response(403, schema=ErrorSchema, description="`origin_not_allowed`")
    @blp.doc(**WIDGET_KEY)
    def get(self) -> dict[str, Any]:
        """The widget's texts and look (branding only on plans that have it)"""
        bot = widget_bot()
        plan = plan_of(bot.organization_id)
        branded = plan.has_feature("branding")
        return {
            "name": bot.name,
            "greeting": bot.greeting,
            "title": bot.widget_title if branded else "",
            "color": bot.widget_color if branded else DEFAULT_WIDGET_COLOR,
            "logo_url": bot.widget_logo_url if branded else "",
            "show_powered_by": bot.show_powered_by if branded else True,
            "uploads": [kind for kind in UPLOAD_FEATURES if plan.has_feature(kind)],
        }


@blp.route("/conversations")
class Conversations(MethodView):
    decorators = RATE_LIMITS

    @blp.arguments(WidgetConversationCreateSchema)
    @blp.response(201, WidgetConversationCreatedSchema)
    @blp.alt_response(401, schema=ErrorSchema, description="`invalid_widget_key`")
    @blp.alt_response(403, schema=ErrorSchema, description="`origin_not_allowed`")
    @blp.alt_response(429, schema=ErrorSchema, description="`rate_limited`")
    @blp.doc(**WIDGET_KEY)
    def post(self, data: dict[str, Any]) -> dict[str, Any]:
        """Start a conversation; keep `visitor_token`, it is the only key to it"""
        bot = widget_bot()
        token = new_token()
        conversation = services.start_conversation(
            bot.organization_id,
            bot.id,
            external_user_id=data["external_user_id"],
            channel=Channel.WIDGET,
            visitor_token_hash=token_digest(token),
        )
        db.session.commit()
        return {
            "id": conversation.id,
            "status": conversation.status,
            "created_at": conversation.created_at,
            "visitor_token": token,
        }


@blp.route("/conversations/<int:conversation_id>/messages", parameters=[VISITOR_PARAMETER])
class Messages(MethodView):
    decorators = RATE_LIMITS

    @blp.arguments(MessagesArgsSchema, location="query")
    @blp.response(200, WidgetMessagesSchema)
    @blp.alt_response(401, schema=ErrorSchema, description="`invalid_widget_key`")
    @blp.alt_response(403, schema=ErrorSchema, description="`origin_not_allowed`")
    @blp.alt_response(404, schema=ErrorSchema, description="`conversation_not_found`")
    @blp.doc(**WIDGET_KEY)
    def get(self, args: dict[str, Any], conversation_id: int) -> dict[str, Any]:
        """The conversation's status and its messages after `after` (for polling)"""
        conversation = _visitor_conversation(widget_bot(), conversation_id)
        messages = db.session.scalars(
            services.messages_of(conversation.id, args.get("after")).limit(POLL_BATCH)
        ).all()
        return {"conversation": conversation, "messages": messages}

    @blp.arguments(MessageIdempotencyHeaderSchema, location="headers")
    @blp.response(201, WidgetExchangeSchema, description="Counted, stored and answered")
    @blp.alt_response(
        200, schema=WidgetExchangeSchema, success=True, description="A retry: the first answer"
    )
    @blp.alt_response(401, schema=ErrorSchema, description="`invalid_widget_key`")
    @blp.alt_response(
        403,
        schema=ErrorSchema,
        description="`origin_not_allowed`, or `feature_not_in_plan` (image or voice)",
    )
    @blp.alt_response(404, schema=ErrorSchema, description="`conversation_not_found`")
    @blp.alt_response(409, schema=ErrorSchema, description="`conversation_closed`: start anew")
    @blp.alt_response(
        422,
        schema=ErrorSchema,
        description="`not_offered`: `entry_id` is not among the suggestions last offered",
    )
    @blp.alt_response(
        429,
        schema=ErrorSchema,
        description="`rate_limited`, `widget_daily_cap_reached` (the bot's cap for today, "
        "see Retry-After) or `quota_exceeded`; nothing stored or answered",
    )
    @blp.doc(**WIDGET_KEY)
    def post(
        self, headers: dict[str, Any], conversation_id: int
    ) -> tuple[dict[str, Any], int, dict[str, str]]:
        """Post the visitor's message and get the bot's answer

        Text as JSON, or `{"entry_id": N}` to pick one of the `suggestions` an unsure bot
        offered last; an image or voice clip as multipart/form-data (fields `kind`, `file`)
        on plans that have them. Counted against the monthly quota first.
        """
        bot = widget_bot()
        conversation = _visitor_conversation(bot, conversation_id, for_update=True)
        data = read_message_request(headers["idempotency_key"])
        widget_caps.refuse_over_cap(bot)
        exchange = services.post_customer_message(
            conversation,
            kind=data["kind"],
            text=data["text"],
            entry_id=data["entry_id"],
            upload=data["upload"],
            idempotency_key=data["idempotency_key"],
        )
        if not exchange.replayed:
            widget_caps.count_widget_message(bot)
        commit_keeping_objects(db.session())
        body, status, response_headers = exchange_response(exchange)
        kept = {k: v for k, v in response_headers.items() if not k.startswith("X-Quota-")}
        return body, status, kept


allow_uploads(blp, {Messages.__name__}, MAX_ATTACHMENT_BYTES)
