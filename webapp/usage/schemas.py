from marshmallow import Schema, fields, validate

from webapp.core.validation import Text
from webapp.usage.models import IDEMPOTENCY_KEY_MAX_LENGTH, UsageKind
from webapp.usage.services import MAX_QUANTITY

KINDS = [kind.value for kind in UsageKind]
# Ids are PostgreSQL integers: anything larger cannot name a row (and must not reach SQL).
ID_RANGE = validate.Range(min=1, max=2**31 - 1)
IDEMPOTENCY_HEADER = "Idempotency-Key"
QUOTA_HEADERS_DESCRIPTION = (
    "`X-Quota-Limit`: the organization's monthly message quota (`unlimited` on plans "
    "without one); `X-Quota-Remaining`: what is left of it after this call (`unlimited` "
    "likewise); `X-Quota-Reset`: when the counter starts again, the end of the calendar "
    "month (Asia/Shanghai) as an RFC 3339 UTC timestamp, e.g. `2026-07-31T16:00:00Z`."
)


def _idempotency_key(**kwargs):
    return Text(
        validate=validate.Length(min=1, max=IDEMPOTENCY_KEY_MAX_LENGTH),
        metadata={
            "description": "Any unique string (a UUID, say). Retrying with the same key "
            "counts once and answers with the first call's result."
        },
        **kwargs,
    )


class UsageRecordSchema(Schema):
    kind = fields.String(required=True, validate=validate.OneOf(KINDS))
    quantity = fields.Integer(
        strict=True, load_default=1, validate=validate.Range(min=1, max=MAX_QUANTITY)
    )
    bot_id = fields.Integer(
        strict=True,
        load_default=None,
        allow_none=True,
        validate=ID_RANGE,
        metadata={"description": "Defaults to the bot an API key is bound to"},
    )
    idempotency_key = _idempotency_key(load_default=None, allow_none=True)


class IdempotencyHeaderSchema(Schema):
    idempotency_key = _idempotency_key(data_key=IDEMPOTENCY_HEADER, load_default=None)


class UsageResultSchema(Schema):
    used = fields.Integer(metadata={"description": "Messages counted this month, all kinds"})
    limit = fields.Integer(allow_none=True, metadata={"description": "null = unlimited"})
    remaining = fields.Integer(allow_none=True, metadata={"description": "null = unlimited"})
    period_start = fields.AwareDateTime()
    period_end = fields.AwareDateTime(metadata={"description": "When the quota resets"})


class KindCountsSchema(Schema):
    message = fields.Integer()
    image = fields.Integer()
    voice = fields.Integer()


class UsagePlanSchema(Schema):
    code = fields.String()
    name = fields.String()
    name_en = fields.String()


class BotsUsageSchema(Schema):
    used = fields.Integer()
    limit = fields.Integer(allow_none=True, metadata={"description": "null = unlimited"})


class UsageStatsSchema(Schema):
    plan = fields.Nested(UsagePlanSchema)
    period_start = fields.AwareDateTime()
    period_end = fields.AwareDateTime()
    used = fields.Integer(metadata={"description": "All kinds together: they share the quota"})
    limit = fields.Integer(allow_none=True, metadata={"description": "null = unlimited"})
    remaining = fields.Integer(allow_none=True, metadata={"description": "null = unlimited"})
    percent_used = fields.Integer(allow_none=True, metadata={"description": "0-100"})
    by_kind = fields.Nested(KindCountsSchema)
    kinds_in_plan = fields.List(
        fields.String(), metadata={"description": "The kinds this plan lets bots record"}
    )
    bots = fields.Nested(BotsUsageSchema)


class UsageHistoryQuerySchema(Schema):
    start = fields.Date(
        data_key="from",
        load_default=None,
        metadata={
            "description": "First day (Asia/Shanghai); default: the 30 days, or 12 months, "
            "that end with `to`"
        },
    )
    end = fields.Date(
        data_key="to", load_default=None, metadata={"description": "Last day; default today"}
    )
    granularity = fields.String(load_default="day", validate=validate.OneOf(["day", "month"]))
    bot_id = fields.Integer(load_default=None, validate=ID_RANGE)


class UsagePointSchema(KindCountsSchema):
    period = fields.Date(metadata={"description": "The day, or the first day of the month"})
    total = fields.Integer()


class UsageHistorySchema(Schema):
    start = fields.Date(data_key="from")
    end = fields.Date(data_key="to")
    granularity = fields.String()
    bot_id = fields.Integer(allow_none=True)
    series = fields.List(fields.Nested(UsagePointSchema))
