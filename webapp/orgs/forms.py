from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import EmailField, SelectChoice, SelectField, StringField
from wtforms.validators import DataRequired, Email, Length

from webapp.auth.models import EMAIL_MAX_LENGTH
from webapp.orgs.models import ORG_NAME_MAX_LENGTH, ROLE_LABELS, Role


class OrganizationForm(FlaskForm):
    name = StringField(
        _l("Organization name"), validators=[DataRequired(), Length(max=ORG_NAME_MAX_LENGTH)]
    )


class InviteForm(FlaskForm):
    email = EmailField(
        _l("Email"), validators=[DataRequired(), Email(), Length(max=EMAIL_MAX_LENGTH)]
    )
    role = SelectField(
        _l("Role"),
        choices=[
            SelectChoice(Role.MEMBER.value, ROLE_LABELS[Role.MEMBER]),
            SelectChoice(Role.ADMIN.value, ROLE_LABELS[Role.ADMIN]),
        ],
        default=Role.MEMBER.value,
    )


class RoleForm(FlaskForm):
    role = SelectField(
        _l("Role"), choices=[SelectChoice(role.value, label) for role, label in ROLE_LABELS.items()]
    )
