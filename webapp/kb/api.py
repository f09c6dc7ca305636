"""/api/v1/bots/{bot_id}/faq: a bot's knowledge base (people only).

Any member lists and reads entries and tries questions; owners and admins
create, change and delete them. API keys get 401 `api_key_not_allowed`.
Another organization's bot or entry is 404.
"""

from __future__ import annotations

from typing import Any

from flask.views import MethodView
from flask_smorest import Blueprint
from flask_smorest.pagination import PaginationParameters

from webapp.bots.api import ORGANIZATION_PARAMETER, PEOPLE_ONLY
from webapp.bots.auth import caller_required, person_membership, person_required
from webapp.bots.services import bot_of
from webapp.core.pagination import paginate
from webapp.extensions import db
from webapp.kb import services
from webapp.kb.models import FaqEntry
from webapp.kb.schemas import (
    AnswerPreviewArgsSchema,
    AnswerPreviewSchema,
    FaqEntryCreateSchema,
    FaqEntrySchema,
    FaqEntryUpdateSchema,
    FaqListArgsSchema,
)

blp = Blueprint("kb_api", __name__, url_prefix="/api/v1", description="Knowledge base")


@blp.route("/bots/<int:bot_id>/faq", parameters=[ORGANIZATION_PARAMETER])
class FaqEntries(MethodView):
    decorators = [person_required, caller_required]

    @blp.arguments(FaqListArgsSchema, location="query")
    @blp.response(200, FaqEntrySchema(many=True))
    @blp.paginate()
    @blp.doc(**PEOPLE_ONLY)
    def get(
        self, args: dict[str, Any], bot_id: int, pagination_parameters: PaginationParameters
    ) -> list[FaqEntry]:
        """A bot's FAQ entries, oldest first (any member)"""
        bot = bot_of(person_membership().organization_id, bot_id)
        return paginate(services.entries_of(bot.id, args.get("q")), pagination_parameters)

    @blp.arguments(FaqEntryCreateSchema)
    @blp.response(201, FaqEntrySchema)
    @blp.doc(**PEOPLE_ONLY)
    def post(self, data: dict[str, Any], bot_id: int) -> FaqEntry:
        """Add an entry (owner or admin); the bot answers from it at once"""
        entry = services.create_entry(
            person_membership(),
            bot_id,
            data["question"],
            data["answer"],
            data["similar_questions"],
            data["is_enabled"],
        )
        db.session.commit()
        return entry


@blp.route("/bots/<int:bot_id>/faq/<int:entry_id>", parameters=[ORGANIZATION_PARAMETER])
class FaqEntryDetail(MethodView):
    decorators = [person_required, caller_required]

    @blp.response(200, FaqEntrySchema)
    @blp.doc(**PEOPLE_ONLY)
    def get(self, bot_id: int, entry_id: int) -> FaqEntry:
        """One entry (any member)"""
        return services.entry_of(person_membership().organization_id, bot_id, entry_id)

    @blp.arguments(FaqEntryUpdateSchema)
    @blp.response(200, FaqEntrySchema)
    @blp.doc(**PEOPLE_ONLY)
    def patch(self, data: dict[str, Any], bot_id: int, entry_id: int) -> FaqEntry:
        """Change an entry (owner or admin)"""
        entry = services.update_entry(person_membership(), bot_id, entry_id, **data)
        db.session.commit()
        return entry

    @blp.response(204)
    @blp.doc(**PEOPLE_ONLY)
    def delete(self, bot_id: int, entry_id: int) -> None:
        """Delete an entry (owner or admin)"""
        services.delete_entry(person_membership(), bot_id, entry_id)
        db.session.commit()


@blp.route("/bots/<int:bot_id>/answer-preview", parameters=[ORGANIZATION_PARAMETER])
class AnswerPreview(MethodView):
    decorators = [person_required, caller_required]

    @blp.arguments(AnswerPreviewArgsSchema)
    @blp.response(200, AnswerPreviewSchema)
    @blp.doc(**PEOPLE_ONLY)
    def post(self, data: dict[str, Any], bot_id: int) -> dict[str, Any]:
        """What the bot would answer, and why: the best matches with their confidence

        Nothing is stored and nothing is counted against the quota (any member).
        """
        bot = bot_of(person_membership().organization_id, bot_id)
        answer = services.answer_question(bot, data["question"])
        return {**answer.__dict__, "threshold": bot.answer_threshold}
