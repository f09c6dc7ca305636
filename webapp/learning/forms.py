from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import IntegerField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, NumberRange

from webapp.bots.schemas import MAX_ID
from webapp.kb.models import ANSWER_MAX_LENGTH, QUESTION_MAX_LENGTH


class SimilarForm(FlaskForm):
    """Add the question as a similar question of an entry."""

    entry_id = IntegerField(_l("Entry"), validators=[DataRequired(), NumberRange(1, MAX_ID)])
    phrasing = StringField(
        _l("Question"), validators=[DataRequired(), Length(max=QUESTION_MAX_LENGTH)]
    )


class NewEntryForm(FlaskForm):
    question = StringField(
        _l("Question"), validators=[DataRequired(), Length(max=QUESTION_MAX_LENGTH)]
    )
    answer = TextAreaField(_l("Answer"), validators=[DataRequired(), Length(max=ANSWER_MAX_LENGTH)])


class DismissForm(FlaskForm):
    """Nothing but the CSRF token."""
