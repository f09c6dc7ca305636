from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import TextAreaField
from wtforms.validators import DataRequired, Length

from webapp.conversations.models import MESSAGE_TEXT_MAX_LENGTH


class AgentReplyForm(FlaskForm):
    text = TextAreaField(
        _l("Reply"), validators=[DataRequired(), Length(max=MESSAGE_TEXT_MAX_LENGTH)]
    )
