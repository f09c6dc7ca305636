"""/api/v1/bots and /api/v1/api-keys.

Who may do what:
- people (access JWT, organization from `X-Organization-ID` or their only one):
  any member lists and reads bots and lists the API keys (prefixes only);
  owners and admins create, change and delete bots, and create and revoke keys;
- bots (API key): may list and read their organization's bots (a key bound to
  one bot sees only that bot; others are 404) and nothing else here: creating,
  changing or deleting bots and listing, creating or revoking keys answer 401
  `api_key_not_allowed`, as every people's endpoint refuses a key with 401; so a
  leaked key cannot mint more keys or outlive its revocation.
Another organization's bot or key is 404.
"""

from __future__ import annotations

from typing import Any

from flask.views import MethodView
from flask_babel import gettext as _
from flask_smorest import Blueprint
from flask_smorest.pagination import PaginationParameters

from webapp.api import (
    BOTS_OR_PEOPLE,
    ORGANIZATION_PARAMETER,
    PEOPLE_DECORATORS,
    PEOPLE_ONLY,
    caller_required,
    current_caller,
    person_membership,
    person_required,
)
from webapp.bots import services
from webapp.bots.models import ApiKey, Bot
from webapp.bots.schemas import (
    ApiKeyCreatedSchema,
    ApiKeyCreateSchema,
    ApiKeyListArgsSchema,
    ApiKeySchema,
    BotCreateSchema,
    BotSchema,
    BotUpdateSchema,
)
from webapp.core.pagination import paginate
from webapp.errors import NotFound
from webapp.extensions import db

blp = Blueprint("bots_api", __name__, url_prefix="/api/v1", description="Bots and API keys")


def _visible_bot(bot_id: int) -> Bot:
    caller = current_caller()
    if caller.bot_id is not None and caller.bot_id != bot_id:
        raise NotFound(_("Bot not found."), error="bot_not_found")  # as for a stranger's bot
    return services.bot_of(caller.organization_id, bot_id)


@blp.route("/bots", parameters=[ORGANIZATION_PARAMETER])
class Bots(MethodView):
    decorators = [caller_required]

    @blp.response(200, BotSchema(many=True))
    @blp.paginate()
    @blp.doc(**BOTS_OR_PEOPLE)
    def get(self, pagination_parameters: PaginationParameters) -> list[Bot]:
        """The organization's bots (any member; an API key: its organization's, or its bot)"""
        caller = current_caller()
        return paginate(
            services.bots_of(caller.organization_id, caller.bot_id), pagination_parameters
        )

    @person_required
    @blp.arguments(BotCreateSchema)
    @blp.response(201, BotSchema)
    @blp.doc(**PEOPLE_ONLY)
    def post(self, data: dict[str, Any]) -> Bot:
        """Create a bot (owner or admin); beyond the plan's bot limit: 403 plan_limit_reached"""
        bot = services.create_bot(
            person_membership(), data["name"], data["description"], data["greeting"]
        )
        db.session.commit()
        return bot


@blp.route("/bots/<int:bot_id>", parameters=[ORGANIZATION_PARAMETER])
class BotDetail(MethodView):
    decorators = [caller_required]

    @blp.response(200, BotSchema)
    @blp.doc(**BOTS_OR_PEOPLE)
    def get(self, bot_id: int) -> Bot:
        """One bot (any member; an API key: of its organization, or its own bot)"""
        return _visible_bot(bot_id)

    @person_required
    @blp.arguments(BotUpdateSchema)
    @blp.response(200, BotSchema)
    @blp.doc(**PEOPLE_ONLY)
    def patch(self, data: dict[str, Any], bot_id: int) -> Bot:
        """Rename, configure, disable or enable a bot (owner or admin)"""
        bot = services.update_bot(person_membership(), bot_id, **data)
        db.session.commit()
        return bot

    @person_required
    @blp.response(204)
    @blp.doc(**PEOPLE_ONLY)
    def delete(self, bot_id: int) -> None:
        """Delete a bot and the API keys bound to it (owner or admin)"""
        services.delete_bot(person_membership(), bot_id)
        db.session.commit()


@blp.route("/bots/<int:bot_id>/publishable-key", parameters=[ORGANIZATION_PARAMETER])
class PublishableKey(MethodView):
    decorators = PEOPLE_DECORATORS

    @blp.response(200, BotSchema)
    @blp.doc(**PEOPLE_ONLY)
    def post(self, bot_id: int) -> Bot:
        """Give the web widget a new publishable key (owner or admin); the old one stops at once"""
        bot = services.rotate_publishable_key(person_membership(), bot_id)
        db.session.commit()
        return bot


def _api_key_view(api_key: ApiKey, secret: str | None = None) -> dict[str, Any]:
    view = {
        "id": api_key.id,
        "name": api_key.name,
        "prefix": api_key.prefix,
        "bot_id": api_key.bot_id,
        "created_at": api_key.created_at,
        "last_used_at": api_key.last_used_at,
        "revoked_at": api_key.revoked_at,
    }
    if secret is not None:
        view["key"] = secret
    return view


@blp.route("/api-keys", parameters=[ORGANIZATION_PARAMETER])
class ApiKeys(MethodView):
    decorators = [caller_required]

    @person_required
    @blp.arguments(ApiKeyListArgsSchema, location="query")
    @blp.response(200, ApiKeySchema(many=True))
    @blp.paginate()
    @blp.doc(**PEOPLE_ONLY)
    def get(
        self, args: dict[str, Any], pagination_parameters: PaginationParameters
    ) -> list[ApiKey]:
        """API keys, newest first, revoked ones included (any member; never the secret)"""
        membership = person_membership()
        return paginate(
            services.api_keys_of(membership.organization_id, args.get("bot_id")),
            pagination_parameters,
        )

    @person_required
    @blp.arguments(ApiKeyCreateSchema)
    @blp.response(201, ApiKeyCreatedSchema)
    @blp.doc(**PEOPLE_ONLY)
    def post(self, data: dict[str, Any]) -> dict[str, Any]:
        """Create an API key (owner or admin); `key` is in this answer only, store it now"""
        issued = services.create_api_key(person_membership(), data["name"], data["bot_id"])
        db.session.commit()
        return _api_key_view(issued.api_key, issued.secret)


@blp.route("/api-keys/<int:api_key_id>", parameters=[ORGANIZATION_PARAMETER])
class ApiKeyDetail(MethodView):
    decorators = [caller_required]

    @person_required
    @blp.response(204)
    @blp.doc(**PEOPLE_ONLY)
    def delete(self, api_key_id: int) -> None:
        """Revoke an API key at once (owner or admin); its next call gets 401 invalid_api_key"""
        services.revoke_api_key(person_membership(), api_key_id)
        db.session.commit()
