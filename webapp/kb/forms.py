from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from wtforms import (
    BooleanField,
    HiddenField,
    SelectChoice,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.validators import DataRequired, Length

from webapp.kb.importing import ImportMode
from webapp.kb.models import ANSWER_MAX_LENGTH, QUESTION_MAX_LENGTH


class FaqEntryForm(FlaskForm):
    question = StringField(
        _l("Question"), validators=[DataRequired(), Length(max=QUESTION_MAX_LENGTH)]
    )
    answer = TextAreaField(_l("Answer"), validators=[DataRequired(), Length(max=ANSWER_MAX_LENGTH)])
    similar_questions = TextAreaField(
        _l("Similar questions"),
        description=_l("One per line: other ways customers ask the same thing."),
    )
    is_enabled = BooleanField(_l("Enabled"), default=True)

    @property
    def similar_list(self) -> list[str]:
        return (self.similar_questions.data or "").splitlines()


class ImportForm(FlaskForm):
    file = FileField(
        _l("CSV or XLSX file"),
        validators=[FileRequired()],
        description=_l(
            "Columns: question, answer, similar_questions (one per line or separated by |), "
            "enabled (1/0). Chinese headers (问题, 答案, 相似问题, 启用) work too."
        ),
    )
    mode = SelectField(
        _l("Entries already in the knowledge base"),
        choices=[
            SelectChoice(
                ImportMode.MERGE.value, _l("Keep them; update the ones with the same question")
            ),
            SelectChoice(
                ImportMode.REPLACE.value, _l("Replace the whole knowledge base with the file")
            ),
        ],
        default=ImportMode.MERGE.value,
    )
    # The digest of the file and mode last previewed: only what was previewed imports.
    previewed = HiddenField()
