"""/api/v1/analytics: the analytics page's numbers, for people (plans with `analytics`)."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView
from flask_smorest import Blueprint

from webapp.analytics import services
from webapp.analytics.schemas import AnalyticsQuerySchema, AnalyticsSummarySchema
from webapp.api import (
    ORGANIZATION_PARAMETER,
    PEOPLE_DECORATORS,
    PEOPLE_ONLY,
    person_membership,
)
from webapp.errors import ErrorSchema

blp = Blueprint("analytics_api", __name__, url_prefix="/api/v1/analytics", description="Analytics")


@blp.route("/summary", parameters=[ORGANIZATION_PARAMETER])
class Summary(MethodView):
    decorators = PEOPLE_DECORATORS

    @blp.arguments(AnalyticsQuerySchema, location="query")
    @blp.response(200, AnalyticsSummarySchema)
    @blp.alt_response(403, schema=ErrorSchema, description="`feature_not_in_plan`")
    @blp.alt_response(404, schema=ErrorSchema, description="`bot_not_found`")
    @blp.alt_response(
        422,
        schema=ErrorSchema,
        description="`from` after `to`, more than 366 days, or a day before 2000 or after 9998",
    )
    @blp.doc(**PEOPLE_ONLY)
    def get(self, query: dict[str, Any]) -> dict[str, Any]:
        """Messages per day, resolution, pick and handoff rates, unanswered questions, busy hours

        Days and hours are Asia/Shanghai; the default range is the last 30 days. Any member.
        """
        numbers = services.analytics(
            person_membership().organization_id, query["start"], query["end"], query["bot_id"]
        )
        return {
            "start": numbers.start,
            "end": numbers.end,
            "bot_id": query["bot_id"],
            "messages": numbers.messages,
            "outcomes": numbers.outcomes,
            "answered_share": numbers.answered_share,
            "questions": numbers.questions,
            "resolution_rate": numbers.resolution_rate,
            "pick_rate": numbers.pick_rate,
            "conversations": numbers.conversations,
            "handoffs": numbers.handoffs,
            "handoff_rate": numbers.handoff_rate,
            "days": numbers.days,
            "hours": numbers.hours,
            "unanswered": numbers.unanswered,
        }
