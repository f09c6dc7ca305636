from typing import Any

from marshmallow import Schema, ValidationError, fields, pre_load, validate, validates_schema

from webapp.core.validation import Text
from webapp.usage.models import IDEMPOTENCY_KEY_MAX_LENGTH, UsageKind
from webapp.usage.services import MAX_BATCH_EVENTS, MAX_QUANTITY

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


class _UsageSchema(Schema):
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


class UsageRecordSchema(_UsageSchema):
    idempotency_key = _idempotency_key(load_default=None, allow_none=True)


class UsageEventSchema(_UsageSchema):
    idempotency_key = _idempotency_key(required=True)


BATCH_SIZE_MESSAGE = f"Send from 1 to {MAX_BATCH_EVENTS} events."


class UsageBatchSchema(Schema):
    # One nested load of the whole list: a third cheaper than a List of Nested (per item).
    events = fields.Nested(
        UsageEventSchema,
        many=True,
        required=True,
        validate=validate.Length(min=1, max=MAX_BATCH_EVENTS, error=BATCH_SIZE_MESSAGE),
        metadata={"description": f"1 to {MAX_BATCH_EVENTS} events, each with its own key"},
    )

    @pre_load
    def _not_too_many(self, data: Any, **_kwargs: Any) -> Any:
        """Refuse an oversized batch before validating its events one by one."""
        events = data.get("events") if isinstance(data, dict) else None
        if isinstance(events, list) and len(events) > MAX_BATCH_EVENTS:
            raise ValidationError(BATCH_SIZE_MESSAGE, "events")
        return data

    @validates_schema
    def _keys_unique(self, data: dict[str, Any], **_kwargs: Any) -> None:
        first: dict[str, int] = {}
        errors: dict[int, dict[str, list[str]]] = {}
        for index, event in enumerate(data["events"]):
            key = event["idempotency_key"]
            if key in first:
                message = f"The same idempotency_key as event {first[key]}."
                errors[index] = {"idempotency_key": [message]}
            else:
                first[key] = index
        if errors:
            raise ValidationError({"events": errors})


class IdempotencyHeaderSchema(Schema):
    idempotency_key = _idempotency_key(data_key=IDEMPOTENCY_HEADER, load_default=None)


class UsageResultSchema(Schema):
    used = fields.Integer(metadata={"description": "Messages counted this month, all kinds"})
    limit = fields.Integer(allow_none=True, metadata={"description": "null = unlimited"})
    remaining = fields.Integer(allow_none=True, metadata={"description": "null = unlimited"})
    period_start = fields.AwareDateTime()
    period_end = fields.AwareDateTime(metadata={"description": "When the quota resets"})


class UsageBatchResultSchema(UsageResultSchema):
    accepted = fields.Integer(metadata={"description": "Events this call counted"})
    replayed = fields.Integer(
        metadata={
            "description": "Events whose idempotency key was counted before (by a batch or a "
            "single record): not counted again"
        }
    )


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
