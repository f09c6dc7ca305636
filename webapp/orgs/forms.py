from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import EmailField, SelectField, StringField
from wtforms.validators import DataRequired, Email, Length

from webapp.orgs.models import ORG_NAME_MAX_LENGTH, Role

ROLE_LABELS = {Role.OWNER: _l("Owner"), Role.ADMIN: _l("Admin"), Role.MEMBER: _l("Member")}


class OrganizationForm(FlaskForm):
    name = StringField(
        _l("Organization name"), validators=[DataRequired(), Length(max=ORG_NAME_MAX_LENGTH)]
    )


class InviteForm(FlaskForm):
    email = EmailField(_l("Email"), validators=[DataRequired(), Email(), Length(max=254)])
    role = SelectField(
        _l("Role"),
        choices=[
            (Role.MEMBER.value, ROLE_LABELS[Role.MEMBER]),
            (Role.ADMIN.value, ROLE_LABELS[Role.ADMIN]),
        ],
        default=Role.MEMBER.value,
    )


class RoleForm(FlaskForm):
    role = SelectField(
        _l("Role"), choices=[(role.value, label) for role, label in ROLE_LABELS.items()]
    )
