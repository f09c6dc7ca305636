from marshmallow import EXCLUDE, Schema, fields, validate

from webapp.core.validation import Text
from webapp.kb.importing import ExportFormat, ImportMode
from webapp.kb.models import (
    ANSWER_MAX_LENGTH,
    MAX_SIMILAR_QUESTIONS,
    QUESTION_MAX_LENGTH,
)


def _question(**kwargs):
    return Text(validate=validate.Length(min=1, max=QUESTION_MAX_LENGTH), **kwargs)


def _similar(**kwargs):
    return fields.List(
        _question(),
        validate=validate.Length(max=MAX_SIMILAR_QUESTIONS),
        metadata={"description": "Other ways customers ask the same thing"},
        **kwargs,
    )


class FaqEntryCreateSchema(Schema):
    question = _question(required=True)
    answer = Text(required=True, validate=validate.Length(min=1, max=ANSWER_MAX_LENGTH))
    similar_questions = _similar(load_default=list)
    is_enabled = fields.Boolean(load_default=True)


class FaqEntryUpdateSchema(Schema):
    """Only the fields given change."""

    question = _question()
    answer = Text(validate=validate.Length(min=1, max=ANSWER_MAX_LENGTH))
    similar_questions = _similar()
    is_enabled = fields.Boolean()


class FaqEntrySchema(Schema):
    id = fields.Integer()
    bot_id = fields.Integer()
    question = fields.String()
    answer = fields.String()
    similar_questions = fields.List(fields.String())
    is_enabled = fields.Boolean()
    created_at = fields.AwareDateTime()
    updated_at = fields.AwareDateTime()


class FaqListArgsSchema(Schema):
    q = Text(
        validate=validate.Length(max=QUESTION_MAX_LENGTH),
        metadata={"description": "Only entries whose question, answer or phrasings contain it"},
    )


class AnswerPreviewArgsSchema(Schema):
    question = _question(required=True)


class MatchSchema(Schema):
    entry_id = fields.Integer()
    question = fields.String()
    matched_phrasing = fields.String()
    score = fields.Float(
        metadata={
            "description": "BM25 score (relative within one question; 0 when only the "
            "sentence vectors found the entry)"
        }
    )
    confidence = fields.Float(
        metadata={"description": "0 to 1: the calibrated probability that the entry answers"}
    )


class AnswerPreviewSchema(Schema):
    answer = fields.String(attribute="text")
    confidence = fields.Float(metadata={"description": "The best match's, 0 to 1"})
    band = fields.String(
        metadata={
            "description": "confident: it answers; unsure: it offers `suggestions`; "
            "lost: it falls back to a person",
            "enum": ["confident", "unsure", "lost"],
        }
    )
    entry_id = fields.Integer(allow_none=True)
    handoff = fields.Boolean(metadata={"description": "The bot would fall back to a person"})
    engine = fields.String()
    threshold = fields.Float(metadata={"description": "The bot's answer threshold"})
    suggest_threshold = fields.Float(metadata={"description": "The bot's suggest threshold"})
    matches = fields.List(fields.Nested(MatchSchema))
    suggestions = fields.List(fields.Nested(MatchSchema))


class ImportFormSchema(Schema):
    """The form fields beside the file of a multipart import."""

    class Meta:
        unknown = EXCLUDE

    dry_run = fields.Boolean(load_default=False)
    mode = fields.String(
        load_default=ImportMode.MERGE.value,
        validate=validate.OneOf([mode.value for mode in ImportMode]),
    )


class ExportArgsSchema(Schema):
    format = fields.String(
        load_default=ExportFormat.CSV.value,
        validate=validate.OneOf([f.value for f in ExportFormat]),
    )


class RowErrorSchema(Schema):
    row = fields.Integer(metadata={"description": "As a spreadsheet numbers it (header: 1)"})
    field = fields.String()
    message = fields.String()


class ImportRowSchema(Schema):
    row = fields.Integer()
    question = fields.String()
    answer = fields.String()
    similar_questions = fields.List(fields.String())
    is_enabled = fields.Boolean()
    action = fields.String(metadata={"description": "`create`, or `update` of entry_id"})
    entry_id = fields.Integer(allow_none=True)
    errors = fields.List(fields.Nested(RowErrorSchema))


class ImportReportSchema(Schema):
    dry_run = fields.Boolean()
    mode = fields.String()
    valid = fields.Boolean(metadata={"description": "No row has an error"})
    total = fields.Integer()
    created = fields.Integer()
    updated = fields.Integer()
    deleted = fields.Integer(metadata={"description": "Entries not in the file (`replace`)"})
    errors = fields.List(fields.Nested(RowErrorSchema))
    rows = fields.List(fields.Nested(ImportRowSchema), metadata={"description": "Previews only"})
