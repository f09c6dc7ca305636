from marshmallow import Schema, fields, validate

from webapp.auth.models import EMAIL_MAX_LENGTH, NAME_MAX_LENGTH
from webapp.auth.services import PASSWORD_MAX_LENGTH, PASSWORD_MIN_LENGTH
from webapp.core.validation import Email, Text


class RegisterSchema(Schema):
    email = Email(required=True, validate=validate.Length(max=EMAIL_MAX_LENGTH))
    password = Text(
        required=True,
        load_only=True,
        validate=validate.Length(min=PASSWORD_MIN_LENGTH, max=PASSWORD_MAX_LENGTH),
    )
    name = Text(load_default="", validate=validate.Length(max=NAME_MAX_LENGTH))


class LoginSchema(Schema):
    email = Text(required=True, validate=validate.Length(min=1, max=EMAIL_MAX_LENGTH))
    password = Text(
        required=True, load_only=True, validate=validate.Length(min=1, max=PASSWORD_MAX_LENGTH)
    )


class TokenSchema(Schema):
    access_token = fields.String(required=True)
    refresh_token = fields.String(required=True)
    token_type = fields.String(dump_default="Bearer")
    expires_in = fields.Integer(metadata={"description": "Access token lifetime in seconds"})


class UserSchema(Schema):
    id = fields.Integer()
    email = fields.String()
    name = fields.String()
    created_at = fields.AwareDateTime()


class RegisteredSchema(TokenSchema):
    user = fields.Nested(UserSchema)


class MembershipSummarySchema(Schema):
    id = fields.Integer(attribute="organization_id")
    name = fields.String(attribute="organization.name")
    role = fields.String()


class MeSchema(UserSchema):
    organizations = fields.List(fields.Nested(MembershipSummarySchema), attribute="memberships")
