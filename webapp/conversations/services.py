"""Conversations: a customer's message is metered, stored, answered and the reply stored.

`post_customer_message` is one transaction, in this order: the conversation row
is locked (by the caller, with the lookup that finds it: messages of one
conversation are handled one at a time); a retry of
a message already stored answers with the first exchange; what the usage
service is sure to refuse (a kind the plan lacks, a quota already used up) is
refused; the engine answers; the message is metered atomically through the
usage service (over quota: the error propagates and the caller's rollback
leaves nothing stored, the answer unsent); the message and the reply are
stored. Metering comes after answering so that the organization's month
counter, locked from metering to commit, is never held during a slow answer.

The bot's answer has three bands (`webapp.kb.engines.decide`): confident, it answers;
unsure, it offers up to 3 questions ("您是不是想问") and keeps the conversation; lost, it
says its fallback text and asks for a person (status `needs_human`). It also asks for a
person after `HANDOFF_AFTER_MISSES` unsure or lost answers in a row, and when the customer
writes one of the bot's handoff words (`webapp.conversations.handoff`). The customer picks a
suggestion by its `entry_id`, one of those last offered (they are stored on the offering
reply); the bot answers with that entry. Questions the bot was unsure or lost on go to the
learning list (`webapp.learning`), with the pick or an agent's reply as a proposal.

Once an agent has replied, the bot stays quiet in that conversation until an
agent returns it to the bot; messages are still counted and stored for the agent.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from flask_babel import gettext as _

from webapp.bots.models import Bot
from webapp.bots.services import bot_of
from webapp.conversations.handoff import asks_for_person
from webapp.conversations.models import (
    HANDOFF_OUTCOMES,
    Attachment,
    Channel,
    Conversation,
    ConversationStatus,
    Message,
    MessageKind,
    MessageRole,
    Outcome,
)
from webapp.core.security import token_digest
from webapp.db import utcnow
from webapp.errors import AppError, Conflict, Forbidden, NotFound
from webapp.extensions import db
from webapp.kb.engines import Band, fallback_text
from webapp.kb.models import FaqEntry
from webapp.kb.services import answer_question
from webapp.learning import services as learning
from webapp.orgs.models import OrganizationMember
from webapp.usage.models import UsageKind
from webapp.usage.services import UsageResult, record_usage, refuse_early

IDEMPOTENCY_KEY_MAX_LENGTH = 200


def start_conversation(
    organization_id: int,
    bot_id: int,
    *,
    external_user_id: str | None = None,
    channel: Channel = Channel.API,
    visitor_token_hash: str | None = None,
) -> Conversation:
    bot = bot_of(organization_id, bot_id)
    if not bot.is_enabled:
        raise Forbidden(_("This bot is disabled."), error="bot_disabled")
    conversation = Conversation(
        organization_id=organization_id,
        bot_id=bot.id,
        external_user_id=(external_user_id or "").strip() or None,
        channel=channel.value,
        visitor_token_hash=visitor_token_hash,
    )
    db.session.add(conversation)
    db.session.flush()
    return conversation


def conversations_of(
    organization_id: int,
    *,
    bot_id: int | None = None,
    status: ConversationStatus | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
) -> sa.Select[Conversation]:
    """Those needing a person first, then the most recently active."""
    needs_human_first = sa.case((Conversation.status == ConversationStatus.NEEDS_HUMAN, 0), else_=1)
    query = (
        sa.select(Conversation)
        .where(Conversation.organization_id == organization_id)
        .order_by(needs_human_first, Conversation.last_message_at.desc(), Conversation.id.desc())
    )
    if bot_id is not None:
        query = query.where(Conversation.bot_id == bot_id)
    if status is not None:
        query = query.where(Conversation.status == status.value)
    if start is not None:
        query = query.where(Conversation.created_at >= start)
    if end is not None:
        query = query.where(Conversation.created_at < end)
    return query


def conversation_of(
    organization_id: int, conversation_id: int, *, for_update: bool = False
) -> Conversation:
    """A conversation of this organization, or 404 (also for another organization's)."""
    query = sa.select(Conversation).where(
        Conversation.id == conversation_id, Conversation.organization_id == organization_id
    )
    if for_update:
        query = query.with_for_update().execution_options(populate_existing=True)
    conversation = db.session.scalar(query)
    if conversation is None:
        raise NotFound(_("Conversation not found."), error="conversation_not_found")
    return conversation


def visitor_conversation(
    bot: Bot, conversation_id: int, visitor_token: str, *, for_update: bool = False
) -> Conversation:
    """A widget conversation of this bot whose visitor holds `visitor_token`, or 404 (as for
    any conversation the visitor did not start, another bot's or an API one).

    The token is matched in the query, so `for_update` locks the row for its own visitor
    only: a guess (anyone holding the public key) is refused at once, never waiting on a
    message being answered."""
    query = sa.select(Conversation).where(
        Conversation.id == conversation_id,
        Conversation.bot_id == bot.id,
        Conversation.visitor_token_hash == token_digest(visitor_token),
    )
    if for_update:
        query = query.with_for_update().execution_options(populate_existing=True)
    conversation = db.session.scalar(query)
    if conversation is None:
        raise NotFound(_("Conversation not found."), error="conversation_not_found")
    return conversation


def messages_of(conversation_id: int, after_id: int | None = None) -> sa.Select[Message]:
    """In order; `after_id` for polling (only the newer ones)."""
    query = (
        sa.select(Message).where(Message.conversation_id == conversation_id).order_by(Message.id)
    )
    return query if after_id is None else query.where(Message.id > after_id)


@dataclass(frozen=True)
class Upload:
    content_type: str
    filename: str
    data: bytes


HANDOFF_AFTER_MISSES = 2  # unsure or lost answers in a row, then a person takes over
# What the customer's message became, as the band of the bot's answer.
BAND_OF_OUTCOME = {
    Outcome.ANSWERED: Band.CONFIDENT,
    Outcome.PICKED: Band.CONFIDENT,
    Outcome.UNSURE: Band.UNSURE,
    Outcome.FALLBACK: Band.LOST,
    Outcome.ASKED_FOR_HUMAN: Band.LOST,
}


@dataclass(frozen=True)
class Exchange:
    """A customer's message and what came of it."""

    message: Message
    reply: Message | None  # the bot's reply; None while an agent has the conversation
    usage: UsageResult
    replayed: bool = False
    source_question: str | None = None  # the question of the reply's entry, when known

    @property
    def band(self) -> Band | None:
        """How the bot answered; None when it stayed quiet (an agent has the conversation)."""
        outcome = self.message.outcome
        return BAND_OF_OUTCOME.get(Outcome(outcome)) if self.reply and outcome else None

    @property
    def handoff(self) -> bool:
        """A person has been asked for, or already has the conversation."""
        return self.band is None or self.band is Band.LOST

    @property
    def suggestions(self) -> list[dict[str, Any]]:
        """What the bot offered, best first: `{entry_id, question}` (only when unsure)."""
        return list(self.reply.suggestions or []) if self.reply is not None else []


@dataclass(frozen=True)
class _Reply:
    """What the bot says to a message, before anything is stored."""

    outcome: Outcome
    text: str
    confidence: float | None = None
    entry_id: int | None = None
    suggestions: list[dict[str, Any]] | None = None
    misses: int = 0  # the conversation's unsure or lost answers in a row, with this one
    learn: bool = False  # a question for the learning list
    candidates: tuple[int, ...] = ()  # the bot's closest entries, for the learning list
    source_question: str | None = None  # the question of the entry answered from


@dataclass(frozen=True)
class _Pick:
    """A suggestion the customer picked: its entry, as offered, and the question it answered."""

    entry: FaqEntry
    question: str
    asked: str


_USAGE_KIND = {
    MessageKind.TEXT: UsageKind.MESSAGE,
    MessageKind.IMAGE: UsageKind.IMAGE,
    MessageKind.VOICE: UsageKind.VOICE,
}


def _open_for_messages(organization_id: int, conversation_id: int) -> Conversation:
    conversation = conversation_of(organization_id, conversation_id, for_update=True)
    _refuse_closed(conversation)
    return conversation


def _refuse_closed(conversation: Conversation) -> None:
    if conversation.status == ConversationStatus.CLOSED:
        raise Conflict(
            _("This conversation is closed; start a new one."), error="conversation_closed"
        )


def _validation_error(message: str, field: str | None = None) -> AppError:
    errors = {field: [message]} if field else None
    return AppError(message, error="validation_error", status=422, errors=errors)


def post_customer_message(
    conversation: Conversation,
    *,
    kind: MessageKind = MessageKind.TEXT,
    text: str = "",
    entry_id: int | None = None,
    upload: Upload | None = None,
    api_key_id: int | None = None,
    idempotency_key: str | None = None,
) -> Exchange:
    """The customer's message (text, an upload, or `entry_id`: a pick of the suggestions last
    offered), metered, stored, answered and the answer stored. The caller has locked the
    conversation (`conversation_of` or `visitor_conversation` with `for_update`)."""
    _refuse_closed(conversation)
    organization_id = conversation.organization_id
    text = text.strip()
    if entry_id is not None and (kind != MessageKind.TEXT or text or upload is not None):
        raise _validation_error(_("Send either text or the entry_id of a suggestion."))
    if kind == MessageKind.TEXT and not text and entry_id is None:
        raise _validation_error(_("A message needs text."))
    if kind != MessageKind.TEXT and upload is None:
        raise _validation_error(_("Attach the file."))
    if idempotency_key is not None and len(idempotency_key) > IDEMPOTENCY_KEY_MAX_LENGTH:
        raise _validation_error(
            _("An idempotency key has at most %(n)d characters.", n=IDEMPOTENCY_KEY_MAX_LENGTH)
        )
    usage_kind = _USAGE_KIND[kind]

    def meter() -> UsageResult:
        return record_usage(
            organization_id,
            usage_kind,
            bot_id=conversation.bot_id,
            api_key_id=api_key_id,
            idempotency_key=idempotency_key,
            idempotency_scope=f"conversation:{conversation.id}",  # never a usage API key's
        )

    if idempotency_key is not None and _message_with_key(conversation.id, idempotency_key):
        return _replayed_exchange(conversation, idempotency_key, meter())
    pick = _picked(conversation, entry_id) if entry_id is not None else None
    # Answering may be slow (an index rebuild, an LLM): refuse what is sure to be refused
    # first, then answer, then meter. Metering locks the organization's month counter until
    # the commit, so it comes last, where it holds the lock for a few statements only.
    refuse_early(organization_id, usage_kind)
    # Held until metering, which checks that the bot is enabled: it finds it in the session.
    bot = bot_of(organization_id, conversation.bot_id)
    answer = None
    if conversation.agent_joined_at is None:
        answer = _respond(conversation, bot, kind, text, pick)
    usage = meter()  # the atomic check: over quota now, and nothing is stored
    if usage.replayed:
        return _replayed_exchange(conversation, idempotency_key, usage)

    now = utcnow()
    message = Message(
        conversation_id=conversation.id,
        organization_id=organization_id,
        bot_id=conversation.bot_id,
        role=MessageRole.CUSTOMER.value,
        kind=kind.value,
        text=pick.question if pick is not None else text,
        faq_entry_id=pick.entry.id if pick is not None else None,
        idempotency_key=idempotency_key,
        created_at=now,
        outcome=Outcome.AGENT.value if answer is None else answer.outcome.value,
        attachment=None,  # known, so the response never reads it back
    )
    db.session.add(message)
    if upload is not None:
        message.attachment = Attachment(
            organization_id=organization_id,
            content_type=upload.content_type,
            filename=upload.filename,
            size=len(upload.data),
            data=upload.data,
        )
    db.session.flush()
    conversation.last_message_at = now
    if answer is None:  # an agent has the conversation
        db.session.flush()
        return Exchange(message, None, usage)

    reply = Message(
        conversation_id=conversation.id,
        organization_id=organization_id,
        bot_id=conversation.bot_id,
        role=MessageRole.BOT.value,
        text=answer.text,
        confidence=answer.confidence,
        faq_entry_id=answer.entry_id,
        reply_to_id=message.id,
        created_at=now,
        attachment=None,
    )
    if answer.suggestions:
        reply.suggestions = answer.suggestions
    db.session.add(reply)
    conversation.bot_misses = answer.misses
    if answer.outcome in HANDOFF_OUTCOMES and conversation.status == ConversationStatus.OPEN:
        conversation.status = ConversationStatus.NEEDS_HUMAN.value
        conversation.handoff_at = now
    db.session.flush()
    if answer.learn:
        learning.record_question(organization_id, conversation.bot_id, text, answer.candidates, now)
    if pick is not None:
        learning.propose_entry(conversation.bot_id, pick.asked, pick.entry.id)
    return Exchange(message, reply, usage, source_question=answer.source_question)


def _picked(conversation: Conversation, entry_id: int) -> _Pick:
    """The pick of `entry_id` from the suggestions last offered in the conversation, whose
    entry is still there to answer with; otherwise 422 `not_offered`."""
    offer = db.session.execute(
        sa.select(Message.suggestions, Message.reply_to_id)
        .where(
            Message.conversation_id == conversation.id,
            Message.role == MessageRole.BOT.value,
            Message.suggestions.is_not(None),
        )
        .order_by(Message.id.desc())
        .limit(1)
    ).first()
    offered = {s["entry_id"]: s["question"] for s in (offer.suggestions if offer else None) or []}
    entry = db.session.scalar(
        sa.select(FaqEntry).where(
            FaqEntry.id == entry_id,
            FaqEntry.bot_id == conversation.bot_id,
            FaqEntry.is_enabled.is_(True),
        )
    )
    if offer is None or entry_id not in offered or entry is None:
        message = _("Pick one of the questions the bot offered last.")
        raise AppError(message, error="not_offered", status=422, errors={"entry_id": [message]})
    asked = db.session.scalar(sa.select(Message.text).where(Message.id == offer.reply_to_id))
    return _Pick(entry, offered[entry_id], asked or "")


def _respond(
    conversation: Conversation, bot: Bot, kind: MessageKind, text: str, pick: _Pick | None
) -> _Reply:
    """The bot's reply: a picked entry's answer; a handoff when asked for a person; else the
    engine's answer, or suggestions, or (lost, or unsure once too often) a handoff."""
    if pick is not None:
        return _Reply(
            Outcome.PICKED,
            pick.entry.answer,
            entry_id=pick.entry.id,
            source_question=pick.entry.question,
        )
    misses = conversation.bot_misses + 1
    if kind != MessageKind.TEXT:  # the bot reads text only: an upload goes to a person
        return _Reply(Outcome.FALLBACK, fallback_text(bot), 0.0, misses=misses)
    if asks_for_person(text, bot.handoff_words):
        return _Reply(
            Outcome.ASKED_FOR_HUMAN,
            _("Sure, I've asked a colleague to help you; please wait a moment."),
            misses=conversation.bot_misses,
        )
    answer = answer_question(bot, text)
    if answer.band is Band.CONFIDENT:
        source = next((m.question for m in answer.matches if m.entry_id == answer.entry_id), None)
        return _Reply(
            Outcome.ANSWERED,
            answer.text,
            answer.confidence,
            answer.entry_id,
            source_question=source,
        )
    candidates = tuple(match.entry_id for match in answer.matches)
    if answer.band is Band.UNSURE and misses < HANDOFF_AFTER_MISSES:
        offered = [{"entry_id": m.entry_id, "question": m.question} for m in answer.suggestions]
        return _Reply(
            Outcome.UNSURE,
            answer.text,
            answer.confidence,
            suggestions=offered,
            misses=misses,
            learn=True,
            candidates=candidates,
        )
    return _Reply(
        Outcome.FALLBACK,
        fallback_text(bot),
        answer.confidence,
        misses=misses,
        learn=True,
        candidates=candidates,
    )


def _message_with_key(conversation_id: int, idempotency_key: str) -> bool:
    return (
        db.session.scalar(
            sa.select(Message.id).where(
                Message.conversation_id == conversation_id,
                Message.idempotency_key == idempotency_key,
            )
        )
        is not None
    )


def _replayed_exchange(
    conversation: Conversation, idempotency_key: str | None, usage: UsageResult
) -> Exchange:
    message = db.session.scalar(
        sa.select(Message).where(
            Message.conversation_id == conversation.id,
            Message.idempotency_key == idempotency_key,
        )
    )
    assert message is not None  # stored in the transaction that counted it
    reply = db.session.scalar(sa.select(Message).where(Message.reply_to_id == message.id))
    return Exchange(message, reply, usage, replayed=True)


# --- agents -----------------------------------------------------------------


def agent_reply(actor: OrganizationMember, conversation_id: int, text: str) -> Message:
    """Any member may answer; from then on the bot stays quiet in this conversation."""
    conversation = _open_for_messages(actor.organization_id, conversation_id)
    text = text.strip()
    if not text:
        raise AppError(_("A reply needs text."), error="validation_error", status=422)
    now = utcnow()
    message = Message(
        conversation_id=conversation.id,
        organization_id=conversation.organization_id,
        bot_id=conversation.bot_id,
        role=MessageRole.AGENT.value,
        text=text,
        author_id=actor.user_id,
        created_at=now,
    )
    db.session.add(message)
    conversation.agent_joined_at = conversation.agent_joined_at or now
    conversation.last_message_at = now
    db.session.flush()
    unanswered = db.session.scalar(
        sa.select(Message.text)
        .where(
            Message.conversation_id == conversation.id,
            Message.role == MessageRole.CUSTOMER.value,
            Message.kind == MessageKind.TEXT.value,
            Message.outcome.in_([Outcome.UNSURE.value, Outcome.FALLBACK.value]),
        )
        .order_by(Message.id.desc())
        .limit(1)
    )
    if unanswered is not None:  # the reply probably answers it: a new entry's answer
        learning.propose_answer(conversation.bot_id, unanswered, text)
    return message


def close_conversation(actor: OrganizationMember, conversation_id: int) -> Conversation:
    conversation = conversation_of(actor.organization_id, conversation_id, for_update=True)
    if conversation.status != ConversationStatus.CLOSED:
        conversation.status = ConversationStatus.CLOSED.value
        conversation.closed_at = utcnow()
    db.session.flush()
    return conversation


def return_to_bot(actor: OrganizationMember, conversation_id: int) -> Conversation:
    """The bot answers again; the conversation no longer waits for a person."""
    conversation = _open_for_messages(actor.organization_id, conversation_id)
    conversation.status = ConversationStatus.OPEN.value
    conversation.agent_joined_at = None
    conversation.bot_misses = 0
    db.session.flush()
    return conversation


def attachment_of(organization_id: int, message_id: int) -> Attachment:
    attachment = db.session.scalar(
        sa.select(Attachment).where(
            Attachment.message_id == message_id, Attachment.organization_id == organization_id
        )
    )
    if attachment is None:
        raise NotFound(_("Attachment not found."), error="attachment_not_found")
    return attachment


def conversation_attachment(
    organization_id: int, conversation_id: int, message_id: int
) -> Attachment:
    """The attachment of a message in this conversation of the organization, or 404."""
    conversation = conversation_of(organization_id, conversation_id)
    attachment = attachment_of(organization_id, message_id)
    if attachment.message.conversation_id != conversation.id:
        raise NotFound(_("Attachment not found."), error="attachment_not_found")
    return attachment
