from marshmallow import Schema, fields, validate

from webapp.bots.models import API_KEY_NAME_MAX_LENGTH, BOT_NAME_MAX_LENGTH, BOT_TEXT_MAX_LENGTH
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


class BotUpdateSchema(Schema):
    """Only the fields given change."""

    name = Text(validate=validate.Length(min=1, max=BOT_NAME_MAX_LENGTH))
    description = Text(validate=validate.Length(max=BOT_TEXT_MAX_LENGTH))
    greeting = Text(validate=validate.Length(max=BOT_TEXT_MAX_LENGTH))
    is_enabled = fields.Boolean(
        metadata={"description": "A disabled bot keeps its settings and keys but is not served"}
    )


class BotSchema(Schema):
    id = fields.Integer()
    name = fields.String()
    description = fields.String()
    greeting = fields.String()
    is_enabled = fields.Boolean()
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
