"""Portal: a bot's "To learn" list (待学习), the questions it was unsure or lost on.

Any member reads the list; owners and admins add a question as a similar question of an
entry (pre-selected: the entry the customer picked, else the bot's closest), make a new
entry of it (pre-filled with an agent's reply from the inbox, if any), or dismiss it; a
crafted post by a member gets the 403 page. Another organization's bot or item is 404.
"""

from __future__ import annotations

from collections.abc import Callable

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import login_required
from werkzeug.wrappers import Response

from webapp.errors import AppError, NotFound
from webapp.extensions import db
from webapp.learning import services
from webapp.learning.forms import DismissForm, NewEntryForm, SimilarForm
from webapp.learning.models import LearningStatus
from webapp.portal import membership_and_bot, page_of

bp = Blueprint("learning", __name__)

ITEMS_PER_PAGE = 20


@bp.get("/bots/<int:bot_id>/learning")
@login_required
def index(bot_id: int) -> str:
    membership, bot = membership_and_bot(bot_id)
    status_value = request.args.get("status", "")
    status = LearningStatus(status_value) if status_value in set(LearningStatus) else None
    sort: services.Sort = "recent" if request.args.get("sort") == "recent" else "frequent"
    page = page_of(
        services.items_of(
            membership.organization_id, bot.id, status or LearningStatus.OPEN, sort=sort
        ),
        ITEMS_PER_PAGE,
    )
    questions = services.entry_questions(bot.id, page.items)
    return render_template(
        "learning/index.html",
        membership=membership,
        bot=bot,
        items=page,
        choices={item.id: services.choices(item, questions) for item in page.items},
        questions=questions,
        status=(status or LearningStatus.OPEN).value,
        sort=sort,
        open_count=services.open_count(bot.id),
    )


def _back(bot_id: int) -> Response:
    """The list as it was: same status, order and page."""
    args = request.args
    return redirect(
        url_for(
            "learning.index",
            bot_id=bot_id,
            status=args.get("status"),
            sort=args.get("sort"),
            page=args.get("page"),
        )
    )


def _invalid(form: SimilarForm | NewEntryForm | DismissForm, bot_id: int) -> Response:
    messages = [message for errors in form.errors.values() for message in errors]
    flash(" ".join(str(message) for message in messages), "danger")
    return _back(bot_id)


def _apply(bot_id: int, change: Callable[[], object], done: str, category: str) -> Response:
    """Make the change and say so; a broken rule (learned meanwhile, an entry full of
    phrasings) comes back as a message, a missing item or entry as the 404 page."""
    try:
        change()
    except AppError as exc:
        if isinstance(exc, NotFound):
            raise
        db.session.rollback()
        flash(exc.message, "danger")
        return _back(bot_id)
    db.session.commit()
    flash(done, category)
    return _back(bot_id)


@bp.post("/bots/<int:bot_id>/learning/<int:item_id>/similar")
@login_required
def learn_similar(bot_id: int, item_id: int) -> Response:
    membership, bot = membership_and_bot(bot_id)
    membership.require_manager()
    form = SimilarForm()
    if not form.validate_on_submit():
        return _invalid(form, bot.id)
    return _apply(
        bot.id,
        lambda: services.learn_as_similar(
            membership, bot.id, item_id, form.entry_id.data or 0, form.phrasing.data
        ),
        _("Added as a similar question; the bot answers it now."),
        "success",
    )


@bp.post("/bots/<int:bot_id>/learning/<int:item_id>/entry")
@login_required
def learn_entry(bot_id: int, item_id: int) -> Response:
    membership, bot = membership_and_bot(bot_id)
    membership.require_manager()
    form = NewEntryForm()
    if not form.validate_on_submit():
        return _invalid(form, bot.id)
    return _apply(
        bot.id,
        lambda: services.learn_as_entry(
            membership, bot.id, item_id, form.answer.data or "", form.question.data
        ),
        _("Entry added; the bot answers from it now."),
        "success",
    )


@bp.post("/bots/<int:bot_id>/learning/<int:item_id>/dismiss")
@login_required
def dismiss(bot_id: int, item_id: int) -> Response:
    membership, bot = membership_and_bot(bot_id)
    membership.require_manager()
    form = DismissForm()
    if not form.validate_on_submit():
        return _invalid(form, bot.id)
    return _apply(
        bot.id, lambda: services.dismiss(membership, bot.id, item_id), _("Dismissed."), "info"
    )
