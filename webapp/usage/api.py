"""/api/v1/usage: metering and usage statistics.

Bots (API key) and people (JWT + X-Organization-ID) may call all three. A key
bound to a bot acts for that bot: recording or reading another bot's usage
with it is 403 `bot_mismatch`.

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
    UsageHistoryQuerySchema,
    UsageHistorySchema,
    UsageRecordSchema,
    UsageResultSchema,
    UsageStatsSchema,
)

blp = Blueprint("usage_api", __name__, url_prefix="/api/v1/usage", description="Usage and quotas")

blp.errorhandler(services.QuotaExceeded)(quota_exceeded)


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
    @blp.alt_response(
        429,
        schema=ErrorSchema,
        description="`quota_exceeded`: nothing was counted. Also carries the X-Quota-* "
        "headers and Retry-After (seconds until the quota resets).",
        headers=QUOTA_HEADERS,
    )
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
