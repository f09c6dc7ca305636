from typing import Any

from flask_babel import gettext as _
from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from webapp.bots.schemas import MAX_ID
from webapp.core.validation import Text
from webapp.kb.models import ANSWER_MAX_LENGTH, QUESTION_MAX_LENGTH
from webapp.learning.models import LearningStatus


class LearningListArgsSchema(Schema):
    status = fields.String(
        load_default=LearningStatus.OPEN.value,
        validate=validate.OneOf([status.value for status in LearningStatus]),
        metadata={"description": "open (the default), learned or dismissed"},
    )
    sort = fields.String(
        load_default="frequent",
        validate=validate.OneOf(["frequent", "recent"]),
        metadata={"description": "frequent: most asked first (the default); recent: latest first"},
    )


class EntryRefSchema(Schema):
    entry_id = fields.Integer()
    question = fields.String()


class LearningItemSchema(Schema):
    id = fields.Integer()
    bot_id = fields.Integer()
    text = fields.String(metadata={"description": "The latest wording of the question"})
    count = fields.Integer(
        metadata={
            "description": "Times asked (wordings that differ only in "
            "case, spaces or punctuation count as one question)"
        }
    )
    first_seen_at = fields.AwareDateTime()
    last_seen_at = fields.AwareDateTime()
    status = fields.String(metadata={"description": "open, learned or dismissed"})
    proposed_entry = fields.Nested(
        EntryRefSchema,
        allow_none=True,
        metadata={"description": "The entry a customer picked from the suggestions it got"},
    )
    candidates = fields.List(
        fields.Nested(EntryRefSchema),
        metadata={"description": "The bot's closest entries when it was last asked, best first"},
    )
    proposed_answer = fields.String(
        allow_none=True,
        metadata={"description": "An agent's reply to it in the inbox, for a new entry"},
    )
    learned_entry_id = fields.Integer(allow_none=True)
    resolved_at = fields.AwareDateTime(allow_none=True)


class LearnSchema(Schema):
    """`entry_id` (and optionally `phrasing`): add it as a similar question of that entry;
    or `answer` (and optionally `question`): make a new entry."""

    entry_id = fields.Integer(
        strict=True,
        validate=validate.Range(min=1, max=MAX_ID),
        metadata={"description": "Add the question as a similar question of this entry"},
    )
    phrasing = Text(
        validate=validate.Length(min=1, max=QUESTION_MAX_LENGTH),
        metadata={"description": "With entry_id: the phrasing to add; default the question"},
    )
    answer = Text(
        validate=validate.Length(min=1, max=ANSWER_MAX_LENGTH),
        metadata={"description": "Make a new entry with this answer"},
    )
    question = Text(
        validate=validate.Length(min=1, max=QUESTION_MAX_LENGTH),
        metadata={"description": "With answer: the new entry's question; default the question"},
    )

    @validates_schema
    def _one_way(self, data: dict[str, Any], **kwargs: Any) -> None:
        if ("entry_id" in data) == ("answer" in data):
            raise ValidationError(_("Give either entry_id or answer."))
        if "entry_id" in data and "question" in data:
            raise ValidationError(_("A question goes with an answer."), "question")
        if "answer" in data and "phrasing" in data:
            raise ValidationError(_("A phrasing goes with an entry_id."), "phrasing")
