"""The agents' inbox (any member of the organization) and the widget's script.

Conversations needing a person come first; an agent reads the transcript with
the bot's confidence and matched entries, replies (the widget picks the reply up
by polling), closes the conversation or hands it back to the bot. Another
organization's conversation or attachment is 404.
"""

from __future__ import annotations

from io import BytesIO

import sqlalchemy as sa
from flask import (
    Blueprint,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    send_file,
    send_from_directory,
    url_for,
)
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import login_required
from werkzeug.wrappers import Response

from webapp.auth.models import User
from webapp.bots.services import bot_of, bots_of
from webapp.conversations import services
from webapp.conversations.forms import AgentReplyForm
from webapp.conversations.models import (
    Channel,
    Conversation,
    ConversationStatus,
    Message,
    MessageRole,
)
from webapp.core.headers import user_upload
from webapp.errors import AppError, Conflict
from webapp.extensions import db
from webapp.kb.models import FaqEntry
from webapp.orgs.models import OrganizationMember
from webapp.portal import current_membership, no_organization, page_of

bp = Blueprint("conversations", __name__)

CONVERSATIONS_PER_PAGE = 30
WIDGET_SCRIPT_MAX_AGE = 300  # seconds: a new release reaches embedding pages within minutes
STATUS_LABELS = {
    ConversationStatus.OPEN.value: _l("With the bot"),
    ConversationStatus.NEEDS_HUMAN.value: _l("Needs a person"),
    ConversationStatus.CLOSED.value: _l("Closed"),
}
ROLE_LABELS = {"customer": _l("Customer"), "bot": _l("Bot"), "agent": _l("Agent")}
CHANNEL_LABELS = {
    Channel.API.value: _l("API"),
    Channel.WIDGET.value: _l("Web widget"),
    Channel.WECHAT.value: _l("WeChat"),
    Channel.APP.value: _l("App"),
    Channel.OTHER.value: _l("Other"),
}


@bp.get("/widget.js")
def widget_script() -> Response:
    """The embeddable script, at a short stable URL for `<script src=".../widget.js">`."""
    response = send_from_directory(
        current_app.static_folder or "static", "widget.js", mimetype="text/javascript"
    )
    response.cache_control.public = True
    response.cache_control.max_age = WIDGET_SCRIPT_MAX_AGE
    return response


def _needs_human_count(organization_id: int) -> int:
    count = db.session.scalar(
        sa.select(sa.func.count())
        .select_from(Conversation)
        .where(
            Conversation.organization_id == organization_id,
            Conversation.status == ConversationStatus.NEEDS_HUMAN.value,
        )
    )
    return int(count or 0)


def _last_questions(conversation_ids: list[int]) -> dict[int, str]:
    """What each customer said last, in one query."""
    if not conversation_ids:
        return {}
    latest = (
        sa.select(sa.func.max(Message.id))
        .where(
            Message.conversation_id.in_(conversation_ids),
            Message.role == MessageRole.CUSTOMER.value,
        )
        .group_by(Message.conversation_id)
    )
    rows = db.session.execute(
        sa.select(Message.conversation_id, Message.text).where(Message.id.in_(latest))
    )
    return {conversation_id: text for conversation_id, text in rows}


@bp.get("/inbox")
@login_required
def inbox() -> Response | str:
    membership = current_membership()
    if membership is None:
        return no_organization()
    organization_id = membership.organization_id
    bots = db.session.scalars(bots_of(organization_id)).all()
    bot_id = request.args.get("bot_id", type=int)
    if bot_id not in {bot.id for bot in bots}:
        bot_id = None
    status_value = request.args.get("status", "")
    status = ConversationStatus(status_value) if status_value in STATUS_LABELS else None
    page = page_of(
        services.conversations_of(organization_id, bot_id=bot_id, status=status),
        CONVERSATIONS_PER_PAGE,
    )
    return render_template(
        "conversations/inbox.html",
        conversations=page,
        last_questions=_last_questions([c.id for c in page.items]),
        bots=bots,
        bot_names={bot.id: bot.name for bot in bots},
        bot_id=bot_id,
        status=status.value if status else "",
        needs_human=_needs_human_count(organization_id),
        status_labels=STATUS_LABELS,
        channel_labels=CHANNEL_LABELS,
    )


def _render_conversation(
    membership: OrganizationMember, conversation: Conversation, form: AgentReplyForm
) -> str:
    messages = db.session.scalars(services.messages_of(conversation.id)).all()
    entry_ids = {m.faq_entry_id for m in messages if m.faq_entry_id is not None}
    author_ids = {m.author_id for m in messages if m.author_id is not None}
    matched = db.session.execute(
        sa.select(FaqEntry.id, FaqEntry.question).where(FaqEntry.id.in_(entry_ids))
    )
    entries = {entry_id: question for entry_id, question in matched}
    users = db.session.scalars(sa.select(User).where(User.id.in_(author_ids)))
    authors = {user.id: user.display_name for user in users}
    bot = bot_of(membership.organization_id, conversation.bot_id)
    return render_template(
        "conversations/detail.html",
        conversation=conversation,
        bot=bot,
        messages=messages,
        entries=entries,
        authors=authors,
        form=form,
        status_labels=STATUS_LABELS,
        role_labels=ROLE_LABELS,
        channel_labels=CHANNEL_LABELS,
    )


@bp.get("/inbox/<int:conversation_id>")
@login_required
def conversation(conversation_id: int) -> Response | str:
    membership = current_membership()
    if membership is None:
        return no_organization()
    found = services.conversation_of(membership.organization_id, conversation_id)
    return _render_conversation(membership, found, AgentReplyForm())


@bp.post("/inbox/<int:conversation_id>/reply")
@login_required
def reply(conversation_id: int) -> Response | str:
    membership = current_membership()
    if membership is None:
        return no_organization()
    found = services.conversation_of(membership.organization_id, conversation_id)
    form = AgentReplyForm()
    if not form.validate_on_submit():
        return _render_conversation(membership, found, form)
    try:
        services.agent_reply(membership, conversation_id, form.text.data or "")
    except AppError as exc:  # closed meanwhile, or a reply of blanks
        flash(exc.message, "danger")
        return redirect(url_for("conversations.conversation", conversation_id=conversation_id))
    db.session.commit()
    flash(_("Reply sent."), "success")
    return redirect(url_for("conversations.conversation", conversation_id=conversation_id))


@bp.post("/inbox/<int:conversation_id>/close")
@login_required
def close(conversation_id: int) -> Response:
    membership = current_membership()
    if membership is None:
        return no_organization()
    services.close_conversation(membership, conversation_id)
    db.session.commit()
    flash(_("Conversation closed."), "info")
    return redirect(url_for("conversations.inbox"))


@bp.post("/inbox/<int:conversation_id>/return-to-bot")
@login_required
def return_to_bot(conversation_id: int) -> Response:
    membership = current_membership()
    if membership is None:
        return no_organization()
    try:
        services.return_to_bot(membership, conversation_id)
    except Conflict as exc:  # closed
        flash(exc.message, "danger")
    else:
        db.session.commit()
        flash(_("The bot answers this conversation again."), "info")
    return redirect(url_for("conversations.conversation", conversation_id=conversation_id))


@bp.get("/inbox/<int:conversation_id>/messages/<int:message_id>/attachment")
@user_upload
@login_required
def attachment(conversation_id: int, message_id: int) -> Response:
    membership = current_membership()
    if membership is None:
        return no_organization()
    stored = services.conversation_attachment(
        membership.organization_id, conversation_id, message_id
    )
    return send_file(
        BytesIO(stored.data),
        mimetype=stored.content_type,
        download_name=stored.filename or f"message-{message_id}",
    )
