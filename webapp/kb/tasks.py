"""Background jobs of the knowledge base (RQ, or in process without Redis)."""

from __future__ import annotations

import logging

import sqlalchemy as sa
from flask import current_app

from webapp.core.jobs import enqueue
from webapp.extensions import db
from webapp.kb import embedding
from webapp.kb.models import FaqEntry, FaqVector
from webapp.kb.services import knowledge_changed
from webapp.kb.vectors import entries_from, store_vectors

log = logging.getLogger(__name__)


def embed_bot(bot_id: int) -> int:
    """Store the vectors the bot's entries lack (after an import, or a new model version),
    a batch at a time, each batch committed: a stopped job keeps what it did, and the
    next run carries on. Then the bot's indexes reload, reading only the new vectors.
    Returns how many texts were embedded."""
    embedded = 0
    after = 0
    while batch := entries_from(bot_id, after):
        embedded += store_vectors(batch)
        after = batch[-1].id
        db.session.commit()
    if embedded:
        knowledge_changed(bot_id)
        db.session.commit()
    log.info("bot %s: %d texts embedded", bot_id, embedded)
    return embedded


def embed_missing() -> int:
    """Periodic: queue `embed_bot` for every bot with an entry that has no vector of the
    current model, so an embedding job that was killed (or lost with its worker) is
    finished without anyone running `flask kb reembed`. Returns how many bots."""
    if current_app.config["ANSWER_ENGINE"] != "hybrid":
        return 0  # the lexical engine stores no vectors
    has_vector = sa.exists().where(
        FaqVector.entry_id == FaqEntry.id, FaqVector.model == embedding.MODEL
    )
    bot_ids = list(
        db.session.scalars(
            sa.select(FaqEntry.bot_id).where(~has_vector).distinct().order_by(FaqEntry.bot_id)
        )
    )
    db.session.rollback()  # the jobs have their own sessions
    for bot_id in bot_ids:
        enqueue(embed_bot, bot_id)
    if bot_ids:
        log.info("queued the embedding of %d bot(s) with entries lacking vectors", len(bot_ids))
    return len(bot_ids)
