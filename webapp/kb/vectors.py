"""Stored sentence vectors: computed once per text, when an entry is saved or imported.

Every text of an entry (its question, each similar question, its answer) has one row in
`faq_vectors` per model, keyed by the text's digest. Saving a few entries embeds their
new texts in the request (`store_vectors`, a few milliseconds per text); an import
queues `webapp.kb.tasks.embed_bot`, which embeds whatever the bot's entries still lack;
until then those entries are answered by words only (`webapp.kb.hybrid`). Each
process's index reads the vectors (`load_vectors`): the first question of a bot reads
them all, a later rebuild only those of the entries whose texts it does not hold yet.
Nothing on the question path ever embeds a stored text.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Protocol

import numpy as np
import sqlalchemy as sa

from webapp.core.sql import upsert_insert
from webapp.extensions import db
from webapp.kb import embedding
from webapp.kb.models import FaqEntry, FaqVector

BATCH_ENTRIES = 500  # entries embedded and stored together by an embedding job


class HasTexts(Protocol):
    @property
    def question(self) -> str: ...
    @property
    def similar_questions(self) -> Sequence[str]: ...
    @property
    def answer(self) -> str: ...


def entry_texts(entry: HasTexts) -> list[str]:
    """Every text of an entry that has a vector: its phrasings, then its answer."""
    return [entry.question, *entry.similar_questions, entry.answer]


def store_vectors(entries: Sequence[FaqEntry]) -> int:
    """Embed the entries' texts that have no vector yet, and drop the vectors of texts they
    no longer have. Returns how many texts were embedded. The caller commits."""
    if not entries:
        return 0
    ids = [entry.id for entry in entries]
    stored: dict[int, set[bytes]] = {entry_id: set() for entry_id in ids}
    stale: list[int] = []
    wanted = {
        entry.id: {embedding.digest(text) for text in entry_texts(entry)} for entry in entries
    }
    for row_id, entry_id, model, digest in db.session.execute(
        sa.select(FaqVector.id, FaqVector.entry_id, FaqVector.model, FaqVector.digest).where(
            FaqVector.entry_id.in_(ids)
        )
    ):
        if model == embedding.MODEL and digest in wanted[entry_id]:
            stored[entry_id].add(digest)
        else:
            stale.append(row_id)
    if stale:
        db.session.execute(sa.delete(FaqVector).where(FaqVector.id.in_(stale)))
    missing: dict[tuple[int, bytes], str] = {}
    for entry in entries:
        for text in entry_texts(entry):
            digest = embedding.digest(text)
            if digest not in stored[entry.id]:
                missing[(entry.id, digest)] = text
    if missing:
        vectors = embedding.embed(list(missing.values()))
        # Another job may be embedding the same entries (an import's job and the periodic
        # catch-up): the first row of a text wins, the other is skipped.
        db.session.execute(
            upsert_insert(FaqVector).on_conflict_do_nothing(
                index_elements=["entry_id", "model", "digest"]
            ),
            [
                {
                    "entry_id": entry_id,
                    "model": embedding.MODEL,
                    "digest": digest,
                    "vector": embedding.to_bytes(vector),
                }
                for (entry_id, digest), vector in zip(missing, vectors, strict=True)
            ],
        )
    return len(missing)


def entries_from(bot_id: int, after: int, limit: int = BATCH_ENTRIES) -> list[FaqEntry]:
    """The bot's next `limit` entries after id `after`, in id order."""
    return list(
        db.session.scalars(
            sa.select(FaqEntry)
            .where(FaqEntry.bot_id == bot_id, FaqEntry.id > after)
            .order_by(FaqEntry.id)
            .limit(limit)
        )
    )


def load_vectors(bot_id: int, entry_ids: Iterable[int] | None = None) -> dict[bytes, np.ndarray]:
    """Digest -> vector of the bot's texts under the current model (of `entry_ids` only,
    when given)."""
    query = (
        sa.select(FaqVector.digest, FaqVector.vector)
        .join(FaqEntry, FaqEntry.id == FaqVector.entry_id)
        .where(FaqEntry.bot_id == bot_id, FaqVector.model == embedding.MODEL)
    )
    if entry_ids is None:
        return {
            digest: embedding.from_bytes(vector) for digest, vector in db.session.execute(query)
        }
    vectors: dict[bytes, np.ndarray] = {}
    wanted = list(entry_ids)
    for start in range(0, len(wanted), BATCH_ENTRIES):
        chunk = wanted[start : start + BATCH_ENTRIES]
        for digest, vector in db.session.execute(query.where(FaqVector.entry_id.in_(chunk))):
            vectors[digest] = embedding.from_bytes(vector)
    return vectors
