from marshmallow import Schema, fields, validate

from webapp.bots.models import (
    API_KEY_NAME_MAX_LENGTH,
    BOT_NAME_MAX_LENGTH,
    BOT_TEXT_MAX_LENGTH,
    HANDOFF_WORD_MAX_LENGTH,
    LOGO_URL_MAX_LENGTH,
    MAX_ALLOWED_ORIGINS,
    MAX_HANDOFF_WORDS,
    MAX_WIDGET_DAILY_CAP,
    WIDGET_TITLE_MAX_LENGTH,
)
from webapp.bots.services import widget_daily_limit
from webapp.core.validation import Text

MAX_ID = 2**31 - 1  # the id columns are 32-bit integers


class BotCreateSchema(Schema):
    name = Text(required=True, validate=validate.Length(min=1, max=BOT_NAME_MAX_LENGTH))
    description = Text(load_default="", validate=validate.Length(max=BOT_TEXT_MAX_LENGTH))
    greeting = Text(
        load_default="",
        validate=validate.Length(max=BOT_TEXT_MAX_LENGTH),
        metadata={"description": "The first message the bot sends in a conversation"},
    )


def _threshold(description: str) -> fields.Float:
    return fields.Float(
        validate=validate.Range(min=0, max=1),
        allow_nan=False,
        metadata={"description": description},
    )


class BotUpdateSchema(Schema):
    """Only the fields given change."""

    name = Text(validate=validate.Length(min=1, max=BOT_NAME_MAX_LENGTH))
    description = Text(validate=validate.Length(max=BOT_TEXT_MAX_LENGTH))
    greeting = Text(validate=validate.Length(max=BOT_TEXT_MAX_LENGTH))
    is_enabled = fields.Boolean(
        metadata={"description": "A disabled bot keeps its settings and keys but is not served"}
    )
    answer_threshold = _threshold(
        "From this confidence the bot answers. Set alone below the suggest threshold, it "
        "takes the suggest threshold down with it"
    )
    suggest_threshold = _threshold(
        "From this confidence (up to the answer threshold) the bot offers the closest "
        "questions (您是不是想问); below it, it falls back to a person"
    )
    fallback_text = Text(
        validate=validate.Length(max=BOT_TEXT_MAX_LENGTH),
        metadata={"description": "What the bot says when it cannot answer; empty: the default"},
    )
    handoff_words = fields.List(
        Text(validate=validate.Length(max=HANDOFF_WORD_MAX_LENGTH)),
        validate=validate.Length(max=MAX_HANDOFF_WORDS),
        metadata={
            "description": "A customer who writes one of these in a short request (转人工, "
            "我要人工) is handed to a person; [] for none"
        },
    )
    allowed_origins = fields.List(
        Text(validate=validate.Length(min=1, max=LOGO_URL_MAX_LENGTH)),
        validate=validate.Length(max=MAX_ALLOWED_ORIGINS),
        metadata={"description": "Sites that may embed the web widget, e.g. https://shop.example"},
    )
    widget_title = Text(
        validate=validate.Length(max=WIDGET_TITLE_MAX_LENGTH),
        metadata={"description": "Branding (plans with it): the widget's name"},
    )
    widget_color = fields.String(
        validate=validate.Regexp(r"^#[0-9a-fA-F]{6}$"),
        metadata={"description": "Branding: the widget's colour, #rrggbb"},
    )
    widget_logo_url = Text(
        validate=validate.Length(max=LOGO_URL_MAX_LENGTH),
        metadata={"description": "Branding: an https URL of the logo; empty for none"},
    )
    show_powered_by = fields.Boolean(
        metadata={"description": "Branding: false removes the powered-by line"}
    )
    widget_daily_cap = fields.Integer(
        allow_none=True,
        strict=True,
        validate=validate.Range(min=1, max=MAX_WIDGET_DAILY_CAP),
        metadata={
            "description": "Widget messages a day (Asia/Shanghai), beyond which visitors get "
            "429 `widget_daily_cap_reached`; null: 20% of the plan's monthly quota (none on "
            "plans without a quota)"
        },
    )


class BotSchema(Schema):
    id = fields.Integer()
    name = fields.String()
    description = fields.String()
    greeting = fields.String()
    is_enabled = fields.Boolean()
    answer_threshold = fields.Float()
    suggest_threshold = fields.Float()
    fallback_text = fields.String()
    handoff_words = fields.List(fields.String())
    publishable_key = fields.String(
        metadata={"description": "The web widget's key (public: it sits in your pages)"}
    )
    allowed_origins = fields.List(fields.String())
    widget_title = fields.String()
    widget_color = fields.String()
    widget_logo_url = fields.String()
    show_powered_by = fields.Boolean()
    widget_daily_cap = fields.Integer(
        allow_none=True, metadata={"description": "The cap the owner set; null: the default"}
    )
    widget_daily_limit = fields.Function(
        lambda bot: widget_daily_limit(bot),
        metadata={
            "description": "The cap in force today; null: none",
            "type": "integer",
            "nullable": True,
        },
    )
    knowledge_version = fields.Integer()
    created_at = fields.AwareDateTime()
    updated_at = fields.AwareDateTime()


class ApiKeyCreateSchema(Schema):
    name = Text(required=True, validate=validate.Length(min=1, max=API_KEY_NAME_MAX_LENGTH))
    bot_id = fields.Integer(
        load_default=None,
        allow_none=True,
        strict=True,
        validate=validate.Range(min=1, max=MAX_ID),
        metadata={"description": "Bind the key to one bot; omit or null for any bot"},
    )


class ApiKeyListArgsSchema(Schema):
    bot_id = fields.Integer(
        validate=validate.Range(min=1, max=MAX_ID),
        metadata={"description": "Only the keys bound to this bot"},
    )


class ApiKeySchema(Schema):
    """A key as listed: never its secret nor its hash."""

    id = fields.Integer()
    name = fields.String()
    prefix = fields.String(
        metadata={"description": "Identifies the key: it starts with `sk_<prefix>_`"}
    )
    bot_id = fields.Integer(allow_none=True)
    created_at = fields.AwareDateTime()
    last_used_at = fields.AwareDateTime(allow_none=True)
    revoked_at = fields.AwareDateTime(allow_none=True)


class ApiKeyCreatedSchema(ApiKeySchema):
    key = fields.String(
        metadata={"description": "The full key, `sk_<prefix>_<secret>`: shown this once only"}
    )
