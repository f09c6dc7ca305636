"""What every portal blueprint shares: the organization picked in the switcher, where
someone without one goes, the page of a list, and the `bot` filter of the statistics pages.

Feature `views.py` modules import from here, never from one another.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from flask import abort, flash, redirect, request, session, url_for
from flask_babel import gettext as _
from flask_login import current_user
from flask_sqlalchemy.pagination import Pagination
from werkzeug.wrappers import Response

from webapp.bots.models import Bot
from webapp.bots.services import bot_of
from webapp.extensions import db
from webapp.orgs.models import OrganizationMember
from webapp.orgs.services import memberships_of

CURRENT_ORG_KEY = "org_id"  # in the session: the organization picked in the switcher


def current_membership() -> OrganizationMember | None:
    """The membership of the organization picked in the switcher (or the first one)."""
    memberships = db.session.scalars(memberships_of(current_user)).all()
    chosen = session.get(CURRENT_ORG_KEY)
    for membership in memberships:
        if membership.organization_id == chosen:
            return membership
    return memberships[0] if memberships else None


def membership_and_bot(bot_id: int) -> tuple[OrganizationMember, Bot]:
    """The current membership and its organization's bot, for a bot's pages; 404 for someone
    without an organization and for another organization's bot."""
    membership = current_membership()
    if membership is None:
        abort(404)
    return membership, bot_of(membership.organization_id, bot_id)


def no_organization() -> Response:
    """Where a page that needs an organization sends someone who has none yet."""
    flash(_("Create an organization first."), "info")
    return redirect(url_for("orgs.dashboard"))


def page_of(query: sa.Select[Any], per_page: int) -> Pagination:
    """The page of a list the `page` argument asks for (the first by default); a page past
    the end is empty rather than a 404."""
    return db.paginate(
        query, page=request.args.get("page", 1, type=int), per_page=per_page, error_out=False
    )


def bot_arg() -> int | None:
    """The `bot` filter: a bot id, or nothing (all bots); anything else is ignored."""
    raw = request.args.get("bot", "")
    return int(raw) if raw.isascii() and raw.isdigit() and len(raw) <= 9 else None
