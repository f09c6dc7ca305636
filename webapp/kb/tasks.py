"""Background jobs of the knowledge base (RQ, or in process without Redis)."""

from __future__ import annotations

import logging

from webapp.extensions import db
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
