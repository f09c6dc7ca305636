from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, EmailField, PasswordField, StringField
from wtforms.validators import DataRequired, Email, EqualTo, Length

from webapp.auth.models import EMAIL_MAX_LENGTH, NAME_MAX_LENGTH
from webapp.auth.services import PASSWORD_MAX_LENGTH, PASSWORD_MIN_LENGTH

password_length = Length(min=PASSWORD_MIN_LENGTH, max=PASSWORD_MAX_LENGTH)


class SignupForm(FlaskForm):
    name = StringField(_l("Name"), validators=[Length(max=NAME_MAX_LENGTH)])
    email = EmailField(
        _l("Email"), validators=[DataRequired(), Email(), Length(max=EMAIL_MAX_LENGTH)]
    )
    password = PasswordField(_l("Password"), validators=[DataRequired(), password_length])
    confirm = PasswordField(
        _l("Confirm password"),
        validators=[DataRequired(), EqualTo("password", message=_l("Passwords do not match."))],
    )


class LoginForm(FlaskForm):
    email = EmailField(_l("Email"), validators=[DataRequired(), Length(max=EMAIL_MAX_LENGTH)])
    password = PasswordField(
        _l("Password"), validators=[DataRequired(), Length(max=PASSWORD_MAX_LENGTH)]
    )
    remember = BooleanField(_l("Keep me logged in"))


class ForgotPasswordForm(FlaskForm):
    email = EmailField(
        _l("Email"), validators=[DataRequired(), Email(), Length(max=EMAIL_MAX_LENGTH)]
    )


class ResetPasswordForm(FlaskForm):
    password = PasswordField(_l("New password"), validators=[DataRequired(), password_length])
    confirm = PasswordField(
        _l("Confirm password"),
        validators=[DataRequired(), EqualTo("password", message=_l("Passwords do not match."))],
    )
