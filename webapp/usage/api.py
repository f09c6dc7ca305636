"""/api/v1/usage: metering and usage statistics.

Bots (API key) and people (JWT + X-Organization-ID) may call all of them. A key
bound to a bot acts for that bot: recording or reading another bot's usage
with it is 403 `bot_mismatch`.

`/record` counts one event; `/records` counts up to 500 in one call, all or
nothing against the quota (see `webapp.usage.services.record_batch`).

Stats and history read only `usage_counters` and the `usage_daily` rollup
(see `webapp.usage.models`), never `usage_records`, so they stay as fast at
tens of millions of records as at ten.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from flask.views import MethodView
from flask_babel import gettext as _
from flask_smorest import Blueprint

from webapp.api import (
    BOTS_OR_PEOPLE,
    QUOTA_HEADERS,
    REPLAYED_HEADER,
    acting_bot,
    api_key_caller,
    caller_required,
    current_caller,
    person_required_unless_api_key,
    presented_api_key,
    quota_exceeded,
    quota_headers,
)
from webapp.billing.periods import SHANGHAI
from webapp.db import utcnow
from webapp.errors import AppError, ErrorSchema
from webapp.extensions import db
from webapp.usage import services
from webapp.usage.models import UsageKind
from webapp.usage.schemas import (
    IDEMPOTENCY_HEADER,
    QUOTA_HEADERS_DESCRIPTION,
    IdempotencyHeaderSchema,
    UsageBatchResultSchema,
    UsageBatchSchema,
    UsageHistoryQuerySchema,
    UsageHistorySchema,
    UsageRecordSchema,
    UsageResultSchema,
    UsageStatsSchema,
)

blp = Blueprint("usage_api", __name__, url_prefix="/api/v1/usage", description="Usage and quotas")

blp.errorhandler(services.QuotaExceeded)(quota_exceeded)


def quota_refusal(description: str) -> dict[str, Any]:
    """The documented 429 of a call that counts usage."""
    return {
        "schema": ErrorSchema,
        "description": f"`quota_exceeded`: {description} Also carries the X-Quota-* headers "
        "and Retry-After (seconds until the quota resets).",
        "headers": QUOTA_HEADERS,
    }


def _idempotency_key(body: str | None, header: str | None) -> str | None:
    if body is not None and header is not None and body != header:
        message = _("The %(header)s header and idempotency_key differ.", header=IDEMPOTENCY_HEADER)
        raise AppError(
            message,
            error="validation_error",
            status=422,
            errors={"idempotency_key": [message]},
        )
    return body if body is not None else header


@blp.route("/record")
class Record(MethodView):
    decorators = [person_required_unless_api_key]

    # Schema instances, not classes: webargs would build a schema per request from a class.
    @blp.arguments(UsageRecordSchema())
    @blp.arguments(IdempotencyHeaderSchema(), location="headers")
    @blp.response(
        201,
        UsageResultSchema,
        description="Counted. " + QUOTA_HEADERS_DESCRIPTION,
        headers=QUOTA_HEADERS,
    )
    @blp.alt_response(
        200,
        schema=UsageResultSchema,
        success=True,
        description="A retry with an idempotency key already counted: the first call's result, "
        f"counted once (with the `{REPLAYED_HEADER}: true` header).",
        headers=QUOTA_HEADERS,
    )
    @blp.alt_response(
        403,
        schema=ErrorSchema,
        description="`feature_not_in_plan` (image or voice on a plan without them), "
        "`bot_disabled`, or `bot_mismatch` (the API key is bound to another bot)",
    )
    @blp.alt_response(404, schema=ErrorSchema, description="`bot_not_found`")
    @blp.alt_response(429, **quota_refusal("nothing was counted."))
    @blp.doc(**BOTS_OR_PEOPLE)
    def post(self, data: dict[str, Any], headers: dict[str, Any]) -> Any:
        """Count bot messages against the monthly quota

        Send an idempotency key (in the body or the `Idempotency-Key` header) to make
        retries safe: a key already counted answers 200 with the first result.
        """
        kind, quantity = UsageKind(data["kind"]), data["quantity"]
        idempotency_key = _idempotency_key(data["idempotency_key"], headers["idempotency_key"])
        presented = presented_api_key()
        result = None
        if presented is not None:
            result = services.record_with_api_key(
                presented,
                kind,
                quantity,
                bot_id=data["bot_id"],
                idempotency_key=idempotency_key,
            )
        if result is None:
            caller = current_caller() if presented is None else api_key_caller(presented)
            result = services.record_usage(
                caller.organization_id,
                kind,
                quantity,
                bot_id=acting_bot(caller, data["bot_id"]),
                api_key_id=caller.api_key.id if caller.api_key else None,
                idempotency_key=idempotency_key,
            )
        db.session.commit()
        response_headers = quota_headers(result)
        if result.replayed:
            response_headers[REPLAYED_HEADER] = "true"
        return result, 200 if result.replayed else 201, response_headers


BATCH_EXAMPLE = {
    "events": [
        {"kind": "message", "idempotency_key": "wx-8812-m1"},
        {"kind": "message", "quantity": 3, "idempotency_key": "wx-8812-m2"},
        {"kind": "image", "bot_id": 7, "idempotency_key": "wx-8813-i1"},
    ]
}
BATCH_RESULT_EXAMPLE = {
    "used": 412,
    "limit": 50000,
    "remaining": 49588,
    "period_start": "2026-11-30T16:00:00+00:00",
    "period_end": "2026-12-31T16:00:00+00:00",
    "accepted": 3,
    "replayed": 0,
}


@blp.route("/records")
class Records(MethodView):
    decorators = [caller_required]

    @blp.arguments(UsageBatchSchema(), example=BATCH_EXAMPLE)
    @blp.response(
        201,
        UsageBatchResultSchema,
        description="Counted: `accepted` events by this call; `replayed` ones had been "
        "counted before and were not counted again. " + QUOTA_HEADERS_DESCRIPTION,
        headers=QUOTA_HEADERS,
        example=BATCH_RESULT_EXAMPLE,
    )
    @blp.alt_response(
        200,
        schema=UsageBatchResultSchema,
        success=True,
        description="Every event's key had been counted before (a batch retried as a whole): "
        "nothing was counted again; `used`, `limit` and `remaining` are as the first call "
        f"left them, with the `{REPLAYED_HEADER}: true` header.",
        headers=QUOTA_HEADERS,
    )
    @blp.alt_response(
        403,
        schema=ErrorSchema,
        description="`feature_not_in_plan`, `bot_disabled` or `bot_mismatch`, for the first "
        "event that breaks the rule (its index in `errors.events`): nothing was counted",
    )
    @blp.alt_response(
        404, schema=ErrorSchema, description="`bot_not_found` (the event's index in `errors`)"
    )
    @blp.alt_response(
        409,
        schema=ErrorSchema,
        description="`concurrent_batch`: some of these keys were being recorded for another "
        "month at the same instant (at a month's end); nothing was counted, retry it.",
    )
    @blp.alt_response(
        429,
        **quota_refusal(
            "the new events do not all fit in what remains of the month's quota, so none was "
            "counted."
        ),
    )
    @blp.doc(**BOTS_OR_PEOPLE)
    def post(self, data: dict[str, Any]) -> Any:
        """Count a batch of events (1-500) against the monthly quota, all or nothing

        Each event needs its own idempotency key; a key counts once, whether it came in a
        batch or through `/usage/record`. A batch retried after a timeout counts nothing
        twice: the events already counted are reported as `replayed`, the others are counted.
        Either every new event fits in the quota and all are counted, or the call is 429 and
        none is. Invalid events are 422 with their index: `{"events": {"3": {...}}}`.
        """
        events = [
            services.UsageEvent(
                UsageKind(event["kind"]),
                event["quantity"],
                event["idempotency_key"],
                event["bot_id"],
            )
            for event in data["events"]
        ]
        caller = current_caller()
        result = services.record_batch(
            caller.organization_id,
            events,
            bound_bot_id=caller.bot_id,
            api_key_id=caller.api_key.id if caller.api_key else None,
        )
        db.session.commit()
        usage = result.usage
        response_headers = quota_headers(usage)
        if usage.replayed:
            response_headers[REPLAYED_HEADER] = "true"
        body = {
            "used": usage.used,
            "limit": usage.limit,
            "remaining": usage.remaining,
            "period_start": usage.period_start,
            "period_end": usage.period_end,
            "accepted": result.accepted,
            "replayed": result.replayed,
        }
        return body, 200 if usage.replayed else 201, response_headers


@blp.route("/stats")
class Stats(MethodView):
    decorators = [caller_required]

    @blp.response(200, UsageStatsSchema)
    @blp.doc(**BOTS_OR_PEOPLE)
    def get(self) -> dict[str, Any]:
        """This month's usage: per kind, against the shared quota; bots against the plan"""
        stats = services.usage_stats(current_caller().organization_id)
        plan = stats.plan
        return {
            "plan": plan,
            "period_start": stats.period_start,
            "period_end": stats.period_end,
            "used": stats.used,
            "limit": stats.limit,
            "remaining": stats.remaining,
            "percent_used": stats.percent_used,
            "by_kind": stats.by_kind,
            "kinds_in_plan": [
                kind.value
                for kind in UsageKind
                if kind.required_feature is None or plan.has_feature(kind.required_feature)
            ],
            "bots": {"used": stats.bots_used, "limit": plan.bot_limit},
        }


def default_range(start: date | None, end: date | None, granularity: str) -> tuple[date, date]:
    """Missing bounds: up to today (Asia/Shanghai), from 30 days or 12 months before the end."""
    end = end or utcnow().astimezone(SHANGHAI).date()
    if start is None and granularity == "month":
        index = end.year * 12 + end.month - 1 - 11
        start = date(index // 12, index % 12 + 1, 1) if index >= 12 else date.min
    elif start is None:
        start = date.fromordinal(max(end.toordinal() - 29, 1))
    return start, end


@blp.route("/history")
class History(MethodView):
    decorators = [caller_required]

    @blp.arguments(UsageHistoryQuerySchema(), location="query")
    @blp.response(200, UsageHistorySchema)
    @blp.alt_response(403, schema=ErrorSchema, description="`bot_mismatch`")
    @blp.alt_response(404, schema=ErrorSchema, description="`bot_not_found`")
    @blp.doc(**BOTS_OR_PEOPLE)
    def get(self, query: dict[str, Any]) -> dict[str, Any]:
        """Usage per day or month (Asia/Shanghai), zeros included, per kind

        At most 400 days, or 36 months; optionally for one bot.
        """
        caller = current_caller()
        granularity = query["granularity"]
        start, end = default_range(query["start"], query["end"], granularity)
        bot_id = acting_bot(caller, query["bot_id"])
        points = services.usage_history(caller.organization_id, start, end, granularity, bot_id)
        return {
            "start": points[0].period if points else start,
            "end": end,
            "granularity": granularity,
            "bot_id": bot_id,
            "series": [{"period": p.period, **p.by_kind, "total": p.total} for p in points],
        }
