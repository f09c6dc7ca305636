from marshmallow import Schema, fields, validate

from webapp.core.validation import Email, Text
from webapp.orgs.models import ORG_NAME_MAX_LENGTH, Role
from webapp.orgs.services import INVITABLE_ROLES


class OrganizationCreateSchema(Schema):
    name = Text(required=True, validate=validate.Length(min=1, max=ORG_NAME_MAX_LENGTH))


class PlanSummarySchema(Schema):
    code = fields.String()
    name = fields.String()


class OrganizationSchema(Schema):
    id = fields.Integer()
    name = fields.String()
    role = fields.String(metadata={"description": "The caller's role"})
    plan = fields.Nested(PlanSummarySchema)
    member_count = fields.Integer()
    created_at = fields.AwareDateTime()


class MemberSchema(Schema):
    user_id = fields.Integer()
    email = fields.String(attribute="user.email")
    name = fields.String(attribute="user.name")
    role = fields.String()
    joined_at = fields.AwareDateTime(attribute="created_at")


class MemberInviteSchema(Schema):
    email = Email(required=True, validate=validate.Length(max=254))
    role = fields.String(
        load_default=Role.MEMBER.value,
        validate=validate.OneOf([role.value for role in INVITABLE_ROLES]),
    )


class MemberUpdateSchema(Schema):
    role = fields.String(required=True, validate=validate.OneOf([role.value for role in Role]))


class InvitationSchema(Schema):
    id = fields.Integer()
    email = fields.String()
    role = fields.String()
    status = fields.String(metadata={"description": "pending, accepted, revoked or expired"})
    created_at = fields.AwareDateTime()
    expires_at = fields.AwareDateTime()
