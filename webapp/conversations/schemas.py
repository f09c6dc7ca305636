from datetime import date
from typing import Any

from flask_babel import gettext as _
from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from webapp.bots.schemas import MAX_ID
from webapp.conversations.models import (
    EXTERNAL_USER_ID_MAX_LENGTH,
    MESSAGE_TEXT_MAX_LENGTH,
    Channel,
    ConversationStatus,
    MessageKind,
)
from webapp.conversations.services import IDEMPOTENCY_KEY_MAX_LENGTH
from webapp.core.validation import Text
from webapp.usage.schemas import IDEMPOTENCY_HEADER, UsageResultSchema

ID_RANGE = validate.Range(min=1, max=MAX_ID)
# Days whose Shanghai bounds are datetimes (date.min and date.max are not).
DAY_RANGE = validate.Range(min=date(2000, 1, 1), max=date(9998, 12, 31))


class ConversationCreateSchema(Schema):
    bot_id = fields.Integer(
        strict=True,
        load_default=None,
        allow_none=True,
        validate=ID_RANGE,
        metadata={"description": "Required unless the API key is bound to a bot"},
    )
    external_user_id = Text(
        load_default=None,
        allow_none=True,
        validate=validate.Length(max=EXTERNAL_USER_ID_MAX_LENGTH),
        metadata={"description": "Your id for the customer (an openid, a user id)"},
    )
    channel = fields.String(
        load_default=Channel.API.value,
        validate=validate.OneOf([c.value for c in Channel if c != Channel.WIDGET]),
    )


class ConversationSchema(Schema):
    id = fields.Integer()
    bot_id = fields.Integer()
    external_user_id = fields.String(allow_none=True)
    channel = fields.String()
    status = fields.String(metadata={"description": "open, needs_human or closed"})
    handoff_at = fields.AwareDateTime(allow_none=True)
    agent_joined_at = fields.AwareDateTime(allow_none=True)
    closed_at = fields.AwareDateTime(allow_none=True)
    last_message_at = fields.AwareDateTime()
    created_at = fields.AwareDateTime()


class ConversationListArgsSchema(Schema):
    bot_id = fields.Integer(validate=ID_RANGE)
    status = fields.String(validate=validate.OneOf([s.value for s in ConversationStatus]))
    start = fields.Date(
        data_key="from",
        validate=DAY_RANGE,
        metadata={"description": "Started on or after this day (Asia/Shanghai)"},
    )
    end = fields.Date(
        data_key="to",
        validate=DAY_RANGE,
        metadata={"description": "Started on or before this day (Asia/Shanghai)"},
    )


def _idempotency_key(**kwargs):
    return Text(
        validate=validate.Length(min=1, max=IDEMPOTENCY_KEY_MAX_LENGTH),
        metadata={"description": "A retry with the same key is counted and answered once"},
        **kwargs,
    )


class MessageCreateSchema(Schema):
    """A text message, or the pick of a suggestion (JSON): `text` or `entry_id`, not both."""

    text = Text(
        load_default="",
        validate=validate.Length(min=1, max=MESSAGE_TEXT_MAX_LENGTH),
        metadata={"description": "What the customer wrote"},
    )
    entry_id = fields.Integer(
        load_default=None,
        strict=True,
        validate=ID_RANGE,
        metadata={
            "description": "The customer picked this suggestion: one of the `entry_id`s the "
            "bot offered last in the conversation (otherwise 422 `not_offered`)"
        },
    )
    idempotency_key = _idempotency_key(load_default=None, allow_none=True)

    @validates_schema
    def _text_or_pick(self, data: dict[str, Any], **kwargs: Any) -> None:
        if bool(data["text"]) == (data["entry_id"] is not None):
            raise ValidationError(_("Send either text or the entry_id of a suggestion."))


class UploadFormSchema(Schema):
    """An image or voice message (multipart/form-data, the file in `file`)."""

    kind = fields.String(
        required=True, validate=validate.OneOf([MessageKind.IMAGE.value, MessageKind.VOICE.value])
    )
    text = Text(load_default="", validate=validate.Length(max=MESSAGE_TEXT_MAX_LENGTH))
    idempotency_key = _idempotency_key(load_default=None)


class MessageIdempotencyHeaderSchema(Schema):
    idempotency_key = _idempotency_key(data_key=IDEMPOTENCY_HEADER, load_default=None)


class AttachmentSchema(Schema):
    content_type = fields.String()
    filename = fields.String()
    size = fields.Integer()


class SuggestionSchema(Schema):
    entry_id = fields.Integer(metadata={"description": "Send it back as `entry_id` to pick it"})
    question = fields.String()


def _band() -> fields.String:
    return fields.String(
        allow_none=True,
        metadata={
            "description": "How the bot answered. confident: it answered; unsure: it offers "
            "`suggestions` and keeps the conversation; lost: it gave its fallback text and asked "
            "for a person. Null while an agent has the conversation"
        },
    )


def _suggestions() -> fields.List:
    return fields.List(
        fields.Nested(SuggestionSchema),
        metadata={"description": "Up to 3 questions offered, best first; empty unless unsure"},
    )


class MessageSchema(Schema):
    id = fields.Integer()
    role = fields.String(metadata={"description": "customer, bot or agent"})
    kind = fields.String(metadata={"description": "text, image or voice"})
    text = fields.String()
    outcome = fields.String(
        allow_none=True,
        metadata={
            "description": "Customer messages: answered, unsure (suggestions offered), picked "
            "(a suggestion), fallback, asked_for_human (a handoff word) or agent"
        },
    )
    confidence = fields.Float(
        allow_none=True,
        metadata={"description": "Bot replies: 0 to 1; null for a pick or a handoff asked for"},
    )
    faq_entry_id = fields.Integer(
        allow_none=True,
        metadata={"description": "The entry a bot reply answered from, or a customer picked"},
    )
    suggestions = fields.List(
        fields.Nested(SuggestionSchema),
        allow_none=True,
        metadata={"description": "Bot replies when unsure: the questions offered, best first"},
    )
    attachment = fields.Nested(AttachmentSchema, allow_none=True)
    created_at = fields.AwareDateTime()


class SourceEntrySchema(Schema):
    id = fields.Integer()
    question = fields.String()


class ExchangeSchema(Schema):
    message = fields.Nested(MessageSchema)
    reply = fields.Nested(
        MessageSchema,
        allow_none=True,
        metadata={"description": "The bot's reply; null while an agent has the conversation"},
    )
    confidence = fields.Float(allow_none=True)
    source_entry = fields.Nested(SourceEntrySchema, allow_none=True)
    band = _band()
    suggestions = _suggestions()
    handoff = fields.Boolean(
        metadata={"description": "The bot could not answer: a person has been asked for"}
    )
    usage = fields.Nested(UsageResultSchema)


class MessagesArgsSchema(Schema):
    after = fields.Integer(
        validate=validate.Range(min=0, max=2**63 - 1),
        metadata={"description": "Only messages with a larger id (for polling)"},
    )


class AgentReplySchema(Schema):
    text = Text(required=True, validate=validate.Length(min=1, max=MESSAGE_TEXT_MAX_LENGTH))


# --- the web widget (publishable key) ---------------------------------------


class WidgetConfigSchema(Schema):
    name = fields.String(metadata={"description": "The bot's name"})
    greeting = fields.String()
    title = fields.String(metadata={"description": "Branding: the panel's title ('' = the name)"})
    color = fields.String(metadata={"description": "Branding: #rrggbb"})
    logo_url = fields.String(metadata={"description": "Branding: '' for none"})
    show_powered_by = fields.Boolean()
    uploads = fields.List(
        fields.String(), metadata={"description": "Kinds of upload the plan allows: image, voice"}
    )


class WidgetConversationCreateSchema(Schema):
    external_user_id = Text(
        load_default=None,
        allow_none=True,
        validate=validate.Length(max=EXTERNAL_USER_ID_MAX_LENGTH),
        metadata={"description": "The embedding site's id for the visitor, if it has one"},
    )


class WidgetConversationSchema(Schema):
    id = fields.Integer()
    status = fields.String(metadata={"description": "open, needs_human or closed"})
    created_at = fields.AwareDateTime()


class WidgetConversationCreatedSchema(WidgetConversationSchema):
    visitor_token = fields.String(
        metadata={
            "description": "Send as X-Visitor-Token with this conversation's calls (shown once)"
        }
    )


class WidgetMessageSchema(Schema):
    """What a visitor sees of a message (no scores, entries or authors)."""

    id = fields.Integer()
    role = fields.String(metadata={"description": "customer, bot or agent"})
    kind = fields.String(metadata={"description": "text, image or voice"})
    text = fields.String()
    suggestions = fields.List(
        fields.Nested(SuggestionSchema),
        allow_none=True,
        metadata={"description": "Bot replies when unsure: the questions offered, best first"},
    )
    created_at = fields.AwareDateTime()


class WidgetExchangeSchema(Schema):
    message = fields.Nested(WidgetMessageSchema)
    reply = fields.Nested(
        WidgetMessageSchema,
        allow_none=True,
        metadata={"description": "The bot's reply; null while an agent has the conversation"},
    )
    band = _band()
    suggestions = _suggestions()
    handoff = fields.Boolean(
        metadata={"description": "The bot could not answer: a person has been asked for"}
    )


class WidgetMessagesSchema(Schema):
    conversation = fields.Nested(WidgetConversationSchema)
    messages = fields.List(fields.Nested(WidgetMessageSchema))
