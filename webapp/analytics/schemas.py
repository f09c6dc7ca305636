from marshmallow import Schema, fields, validate

from webapp.conversations.schemas import ID_RANGE


class AnalyticsQuerySchema(Schema):
    start = fields.Date(
        data_key="from",
        load_default=None,
        metadata={"description": "First day (Asia/Shanghai); default: 29 days before `to`"},
    )
    end = fields.Date(
        data_key="to", load_default=None, metadata={"description": "Last day; default today"}
    )
    bot_id = fields.Integer(
        load_default=None, validate=ID_RANGE, metadata={"description": "Only this bot's numbers"}
    )


def _rate(description: str) -> fields.Float:
    return fields.Float(
        allow_none=True,
        validate=validate.Range(min=0, max=1),
        metadata={"description": description + ", 0-1; null when there is nothing to divide"},
    )


class AnalyticsDaySchema(Schema):
    day = fields.Date()
    messages = fields.Integer(metadata={"description": "Customer messages"})
    answered = fields.Integer(metadata={"description": "Of those, answered by the bot"})
    questions = fields.Integer(
        metadata={
            "description": "Customer questions the bot handled: answered, unsure, fallback or "
            "asked_for_human (a pick answers an earlier question)"
        }
    )
    unsure = fields.Integer(metadata={"description": "Questions it offered suggestions for"})
    picked = fields.Integer(metadata={"description": "Suggestions the customers picked"})
    resolved = fields.Integer(metadata={"description": "answered + picked"})
    resolution_rate = _rate("resolved / questions")
    pick_rate = _rate("picked / unsure")
    conversations = fields.Integer(metadata={"description": "Conversations started this day"})
    handoffs = fields.Integer(metadata={"description": "Of those, handed to a person"})
    handoff_rate = _rate("handoffs / conversations")


class OutcomeCountsSchema(Schema):
    answered = fields.Integer(metadata={"description": "Answered from the knowledge base"})
    unsure = fields.Integer(metadata={"description": "Suggestions offered (您是不是想问)"})
    picked = fields.Integer(metadata={"description": "A suggestion picked, and answered"})
    fallback = fields.Integer(metadata={"description": "Not answered: handed to a person"})
    asked_for_human = fields.Integer(
        metadata={"description": "The customer asked for a person (a handoff word)"}
    )
    agent = fields.Integer(metadata={"description": "Sent while an agent had the conversation"})


class UnansweredQuestionSchema(Schema):
    text = fields.String(metadata={"description": "One customer's wording of the question"})
    count = fields.Integer()


class AnalyticsSummarySchema(Schema):
    start = fields.Date(data_key="from")
    end = fields.Date(data_key="to")
    bot_id = fields.Integer(allow_none=True)
    messages = fields.Integer(metadata={"description": "Customer messages in the range"})
    outcomes = fields.Nested(OutcomeCountsSchema)
    answered_share = fields.Float(
        allow_none=True,
        validate=validate.Range(min=0, max=1),
        metadata={"description": "answered / messages, 0-1; null without messages"},
    )
    questions = fields.Integer(metadata={"description": "Customer questions the bot handled"})
    resolution_rate = _rate("(answered + picked) / questions, at most 1")
    pick_rate = _rate("picked / unsure, at most 1")
    conversations = fields.Integer(metadata={"description": "Conversations started in the range"})
    handoffs = fields.Integer(metadata={"description": "Of those, handed to a person"})
    handoff_rate = fields.Float(
        allow_none=True,
        validate=validate.Range(min=0, max=1),
        metadata={"description": "handoffs / conversations, 0-1; null without conversations"},
    )
    days = fields.List(
        fields.Nested(AnalyticsDaySchema), metadata={"description": "Every day, zeros included"}
    )
    hours = fields.List(
        fields.Integer(),
        metadata={"description": "Customer messages by hour of day (Asia/Shanghai), 24 values"},
    )
    unanswered = fields.List(
        fields.Nested(UnansweredQuestionSchema),
        metadata={"description": "The 10 questions most often not answered, most asked first"},
    )
