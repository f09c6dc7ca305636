"""/api/v1/bots/{bot_id}/learning: the questions a bot was unsure or lost on (people only).

Any member lists them; owners and admins teach the bot with one (a similar question of an
entry, or a new entry) or dismiss it. API keys get 401 `api_key_not_allowed`. Another
organization's bot or item is 404.
"""

from __future__ import annotations

from typing import Any

from flask.views import MethodView
from flask_smorest import Blueprint
from flask_smorest.pagination import PaginationParameters

from webapp.api import (
    ORGANIZATION_PARAMETER,
    PEOPLE_ONLY,
    caller_required,
    person_membership,
    person_required,
)
from webapp.core.pagination import paginate
from webapp.errors import ErrorSchema
from webapp.extensions import db
from webapp.learning import services
from webapp.learning.models import LearningItem, LearningStatus
from webapp.learning.schemas import LearningItemSchema, LearningListArgsSchema, LearnSchema

blp = Blueprint(
    "learning_api", __name__, url_prefix="/api/v1", description="Learning (questions to learn)"
)


def item_views(bot_id: int, items: list[LearningItem]) -> list[dict[str, Any]]:
    """Items with their entries' questions (entries deleted since are left out)."""
    questions = services.entry_questions(bot_id, items)

    def ref(entry_id: int | None) -> dict[str, Any] | None:
        return (
            {"entry_id": entry_id, "question": questions[entry_id]}
            if entry_id in questions
            else None
        )

    return [
        {
            "id": item.id,
            "bot_id": item.bot_id,
            "text": item.text,
            "count": item.count,
            "first_seen_at": item.first_seen_at,
            "last_seen_at": item.last_seen_at,
            "status": item.status,
            "proposed_entry": ref(item.proposed_entry_id),
            "candidates": [ref(entry_id) for entry_id in item.candidates if entry_id in questions],
            "proposed_answer": item.proposed_answer,
            "learned_entry_id": item.learned_entry_id,
            "resolved_at": item.resolved_at,
        }
        for item in items
    ]


@blp.route("/bots/<int:bot_id>/learning", parameters=[ORGANIZATION_PARAMETER])
class LearningItems(MethodView):
    decorators = [person_required, caller_required]

    @blp.arguments(LearningListArgsSchema, location="query")
    @blp.response(200, LearningItemSchema(many=True))
    @blp.alt_response(404, schema=ErrorSchema, description="`bot_not_found`")
    @blp.paginate()
    @blp.doc(**PEOPLE_ONLY)
    def get(
        self, args: dict[str, Any], bot_id: int, pagination_parameters: PaginationParameters
    ) -> list[dict[str, Any]]:
        """Questions the bot was unsure or lost on, most asked or latest first (any member)"""
        query = services.items_of(
            person_membership().organization_id,
            bot_id,
            LearningStatus(args["status"]),
            args["sort"],
        )
        return item_views(bot_id, paginate(query, pagination_parameters))


@blp.route("/bots/<int:bot_id>/learning/<int:item_id>/learn", parameters=[ORGANIZATION_PARAMETER])
class Learn(MethodView):
    decorators = [person_required, caller_required]

    @blp.arguments(LearnSchema)
    @blp.response(200, LearningItemSchema)
    @blp.alt_response(403, schema=ErrorSchema, description="`forbidden`: owners and admins only")
    @blp.alt_response(
        404,
        schema=ErrorSchema,
        description="`bot_not_found`, `learning_item_not_found` or `faq_entry_not_found`",
    )
    @blp.alt_response(409, schema=ErrorSchema, description="`already_learned`")
    @blp.doc(**PEOPLE_ONLY)
    def post(self, data: dict[str, Any], bot_id: int, item_id: int) -> dict[str, Any]:
        """Teach the bot the question: a similar question of an entry, or a new entry
        (owner or admin); the bot answers it from then on"""
        actor = person_membership()
        if "entry_id" in data:
            item = services.learn_as_similar(
                actor, bot_id, item_id, data["entry_id"], data.get("phrasing")
            )
        else:
            item = services.learn_as_entry(
                actor, bot_id, item_id, data["answer"], data.get("question")
            )
        db.session.commit()
        return item_views(bot_id, [item])[0]


@blp.route("/bots/<int:bot_id>/learning/<int:item_id>/dismiss", parameters=[ORGANIZATION_PARAMETER])
class Dismiss(MethodView):
    decorators = [person_required, caller_required]

    @blp.response(200, LearningItemSchema)
    @blp.alt_response(403, schema=ErrorSchema, description="`forbidden`: owners and admins only")
    @blp.alt_response(
        404, schema=ErrorSchema, description="`bot_not_found` or `learning_item_not_found`"
    )
    @blp.alt_response(409, schema=ErrorSchema, description="`already_learned`")
    @blp.doc(**PEOPLE_ONLY)
    def post(self, bot_id: int, item_id: int) -> dict[str, Any]:
        """Dismiss the question (owner or admin): off the list; asking it again only counts"""
        item = services.dismiss(person_membership(), bot_id, item_id)
        db.session.commit()
        return item_views(bot_id, [item])[0]
