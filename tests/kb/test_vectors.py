"""Sentence vectors: stored once per text when entries are saved or imported, read by each
process's hybrid index a change at a time, and never needed to answer."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import pytest
import sqlalchemy as sa
from flask import Flask

from tests.kb import TEA_FAQ, add_entry, add_tea_faq, faq_path
from tests.kb.test_kb_api import preview
from tests.kb.test_kb_import import TEA_ROWS, csv_bytes, upload
from tests.usage.conftest import Tenant
from webapp.bots.models import Bot
from webapp.extensions import db
from webapp.kb import embedding, hybrid, tasks
from webapp.kb.engines import IndexCache, IndexedEntry, KnowledgeIndex, lexical_probability
from webapp.kb.hybrid import HybridIndex
from webapp.kb.models import FaqEntry, FaqVector
from webapp.kb.services import add_similar_question, knowledge_changed, new_entry
from webapp.kb.vectors import store_vectors

SHIPPING = IndexedEntry(1, "下单后多久发货？", "付款后48小时内发货。")
RETURNS = IndexedEntry(2, "怎么申请退货？", "在订单页点“申请退货”，审核通过后寄回。")


def stored(app: Flask, bot_id: int) -> dict[bytes, tuple[int, str]]:
    """digest -> (row id, model) of the bot's stored vectors."""
    with app.app_context():
        rows = db.session.execute(
            sa.select(FaqVector.digest, FaqVector.id, FaqVector.model)
            .join(FaqEntry, FaqEntry.id == FaqVector.entry_id)
            .where(FaqEntry.bot_id == bot_id)
        )
        return {digest: (row_id, model) for digest, row_id, model in rows}


def digests(*texts: str) -> set[bytes]:
    return {embedding.digest(text) for text in texts}


@pytest.fixture
def embedded(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Every text the encoder is asked to embed, in order."""
    texts: list[str] = []
    real = embedding.embed

    def spy(batch: Sequence[str]) -> np.ndarray:
        texts.extend(batch)
        return real(batch)

    monkeypatch.setattr(embedding, "embed", spy)
    yield texts


def test_saving_an_entry_embeds_its_new_texts_once(
    app: Flask, tenant: Tenant, embedded: list[str]
) -> None:
    bot_id = tenant.add_bot()
    question, answer, similar = TEA_FAQ[0]
    entry = add_entry(tenant.api, bot_id, question, answer, similar)
    before = stored(app, bot_id)
    assert set(before) == digests(question, answer, *similar)
    assert {model for _row, model in before.values()} == {embedding.MODEL}

    embedded.clear()
    changed = tenant.api.patch(
        f"{faq_path(bot_id)}/{entry['id']}",
        json={"answer": "现货48小时内发货。", "similar_questions": [*similar, "几号能发"]},
    )

    assert changed.status_code == 200, changed.get_json()
    assert sorted(embedded) == sorted(["现货48小时内发货。", "几号能发"])  # the new texts only
    after = stored(app, bot_id)
    assert set(after) == digests(question, "现货48小时内发货。", *similar, "几号能发")
    assert after[embedding.digest(question)] == before[embedding.digest(question)]  # kept
    embedded.clear()
    tenant.api.patch(f"{faq_path(bot_id)}/{entry['id']}", json={"is_enabled": False})
    assert embedded == []


def test_an_import_embeds_in_its_job_and_the_bot_answers_at_once(
    app: Flask, tenant: Tenant, embedded: list[str]
) -> None:
    bot_id = tenant.add_bot()

    response = upload(tenant, bot_id, csv_bytes(TEA_ROWS))

    assert response.status_code == 201, response.get_json()
    texts = [
        *TEA_ROWS[1][:2],
        "什么时候发货",
        "几天发出",
        *TEA_ROWS[2][:2],
        "怎么开发票",
        "能开票吗",
    ]
    assert set(stored(app, bot_id)) == digests(*texts)
    assert sorted(embedded) == sorted(set(texts))
    embedded.clear()
    body = preview(tenant, bot_id, "请问下单以后几天能发出来")
    assert body["engine"] == "hybrid" and body["answer"] == TEA_ROWS[1][1]
    assert embedded == ["请问下单以后几天能发出来"]  # the question, never a stored text


def test_entries_without_vectors_yet_are_answered_by_their_words(
    app: Flask, tenant: Tenant, embedded: list[str]
) -> None:
    """An import whose job has not run yet: no 500, no wait, no embedding of the entries."""
    bot_id = tenant.add_bot()
    with app.app_context():
        bot = db.session.get(Bot, bot_id)
        assert bot is not None
        for question, answer, similar in TEA_FAQ:
            new_entry(bot, question, answer, similar)
        db.session.flush()
        knowledge_changed(bot_id)
        db.session.commit()
    assert stored(app, bot_id) == {}

    body = preview(tenant, bot_id, "什么时候发货")

    assert body["band"] == "confident" and body["answer"] == TEA_FAQ[0][1]
    assert body["confidence"] == pytest.approx(lexical_probability(1.0))
    assert embedded == []


def test_reembed_replaces_the_vectors_of_an_older_model(app: Flask, tenant: Tenant) -> None:
    bot_id = tenant.add_bot()
    add_tea_faq(tenant.api, bot_id)
    with app.app_context():
        entry_ids = select_entry_ids(bot_id)
        db.session.execute(
            sa.update(FaqVector).where(FaqVector.entry_id.in_(entry_ids)).values(model="old-0.1")
        )
        db.session.commit()
    assert preview(tenant, bot_id, "什么时候发货")["confidence"] == pytest.approx(
        lexical_probability(1.0)
    )  # no vector of the current model: words only

    result = app.test_cli_runner().invoke(args=["kb", "reembed", "--bot", str(bot_id)])

    assert result.exit_code == 0, result.output
    assert "Queued 1 bot(s)" in result.output
    texts = [text for q, a, similar in TEA_FAQ for text in (q, a, *similar)]
    assert {model for _row, model in stored(app, bot_id).values()} == {embedding.MODEL}
    assert set(stored(app, bot_id)) == digests(*texts)
    # a paraphrase without the entry's words, found by its vector (a three-entry bot's
    # cosine z-scores are small, so it is answered from a lower threshold than the default)
    tenant.api.patch(f"/api/v1/bots/{bot_id}", json={"answer_threshold": 0.5})
    assert preview(tenant, bot_id, "请问下单以后几天能发出来")["answer"] == TEA_FAQ[0][1]
    missing = app.test_cli_runner().invoke(args=["kb", "reembed", "--bot", "999999"])
    assert missing.exit_code != 0 and "There is no bot 999999" in missing.output


def select_entry_ids(bot_id: int) -> list[int]:
    return list(db.session.scalars(sa.select(FaqEntry.id).where(FaqEntry.bot_id == bot_id)))


def vectors_of(entries: Sequence[IndexedEntry]) -> dict[bytes, np.ndarray]:
    texts = [text for e in entries for text in (e.question, *e.similar_questions, e.answer)]
    return dict(zip([embedding.digest(t) for t in texts], embedding.embed(texts), strict=True))


def test_a_new_phrasing_needs_its_vector_only() -> None:
    before = HybridIndex([SHIPPING, RETURNS], vectors_of([SHIPPING, RETURNS]))
    learned = IndexedEntry(2, RETURNS.question, RETURNS.answer, ("东西不想要了能寄回去吗",))
    new_vector = vectors_of([IndexedEntry(0, "东西不想要了能寄回去吗", "")])

    assert before.unseen([SHIPPING, learned]) == [2]
    after = HybridIndex([SHIPPING, learned], new_vector, before)

    assert after.phrasings == [SHIPPING.question, RETURNS.question, "东西不想要了能寄回去吗"]
    assert np.array_equal(after.phrasing_matrix[:2], before.phrasing_matrix)
    assert np.array_equal(after.answer_matrix, before.answer_matrix)
    question = "东西不想要了能寄回去吗"
    best = after.search(question, embedding.embed([question])[0])[0]
    assert (best.entry_id, best.matched_phrasing) == (2, question)
    assert best.confidence > before.search(question, embedding.embed([question])[0])[0].confidence


def test_an_entry_missing_a_vector_is_found_by_words_only() -> None:
    vectors = vectors_of([SHIPPING])
    index = HybridIndex([SHIPPING, RETURNS], vectors)

    assert index.entry_ids == [1] and index.unseen([SHIPPING, RETURNS]) == [2]
    question = "怎么申请退货"
    matches = index.search(question, embedding.embed([question])[0])
    raw = KnowledgeIndex([SHIPPING, RETURNS]).search(question)[0]
    assert matches[0].entry_id == 2
    assert matches[0].confidence == pytest.approx(lexical_probability(raw.confidence))


def test_the_index_cache_keeps_the_recent_indexes_within_an_entry_budget() -> None:
    built: list[int] = []

    def build(bot: Any, previous: KnowledgeIndex | None) -> KnowledgeIndex:
        built.append(bot.id)
        return KnowledgeIndex([SHIPPING, RETURNS][: bot.id])

    cache = IndexCache(build, max_indexes=10, max_entries=3)
    small, large = (
        Bot(id=1, knowledge_version=0, created_at=None),
        Bot(id=2, knowledge_version=0, created_at=None),
    )
    cache.get(small)
    cache.get(large)  # 1 + 2 entries: both kept
    cache.get(small)
    assert built == [1, 2]
    large.knowledge_version = 1
    cache.get(large)  # rebuilt in place of its old version
    assert built == [1, 2, 2]
    cache.max_entries = 2
    cache.get(Bot(id=1, knowledge_version=1, created_at=None))  # 1 + 2 > 2: the oldest goes
    cache.get(large)
    assert built == [1, 2, 2, 1, 2]


def test_a_large_index_shortlists_in_a_projection_and_ranks_exactly(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(hybrid, "COARSE_FROM", 100)
    monkeypatch.setattr(hybrid, "SHORTLIST", 20)
    rng = np.random.default_rng(7)
    space = rng.standard_normal((embedding.DIMENSIONS, 64))  # vectors of a 64-d subspace

    def unit(count: int) -> np.ndarray:
        vectors = (space @ rng.standard_normal((64, count))).T.astype(np.float32)
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)

    entries = [IndexedEntry(n, f"问题{n}", f"答案{n}", (f"问法{n}",)) for n in range(1, 301)]
    texts = [text for e in entries for text in (e.question, *e.similar_questions, e.answer)]
    vectors = dict(zip([embedding.digest(t) for t in texts], unit(len(texts)), strict=True))
    large = HybridIndex(entries, vectors)
    everything = HybridIndex(entries, vectors)
    everything.basis = None  # the exact products over every entry
    assert large.basis is not None and large.basis.shape == (embedding.DIMENSIONS, 128)

    for question in unit(20):
        rows, spread, answer_spread = large._closest(question)
        exact_rows, exact_spread, exact_answer_spread = everything._closest(question)
        assert list(rows) == list(exact_rows)
        # the z-scores' spreads, from the projected cosines: the vectors lie in 64 of the
        # projection's 128 directions, so they are the exact ones here
        assert spread.mean == pytest.approx(exact_spread.mean, abs=1e-4)
        assert spread.std == pytest.approx(exact_spread.std, abs=1e-4)
        assert answer_spread.mean == pytest.approx(exact_answer_spread.mean, abs=1e-4)
        assert answer_spread.std == pytest.approx(exact_answer_spread.std, abs=1e-4)


def test_a_learned_phrasing_is_embedded_alone_and_answers_at_once(
    app: Flask, tenant: Tenant, embedded: list[str]
) -> None:
    bot_id = tenant.add_bot()
    returns = add_tea_faq(tenant.api, bot_id)[1]
    question = "东西不想要了能寄回去吗"
    before = preview(tenant, bot_id, question)
    embedded.clear()

    with app.app_context():
        add_similar_question(tenant._owner_membership(), bot_id, returns["id"], question)
        db.session.commit()

    assert embedded == [question]
    assert embedding.digest(question) in stored(app, bot_id)
    after = preview(tenant, bot_id, question)
    assert after["band"] == "confident" and after["entry_id"] == returns["id"]
    assert after["matches"][0]["matched_phrasing"] == question
    assert after["confidence"] > before["confidence"]


def test_a_stopped_embedding_is_finished_by_the_periodic_catch_up(
    app: Flask, tenant: Tenant
) -> None:
    """An import's job killed half way leaves entries without vectors: `embed_missing`
    (every 10 minutes in the worker) queues the bot again, and the texts another job
    stored meanwhile are not stored twice."""
    bot_id = tenant.add_bot()
    add_tea_faq(tenant.api, bot_id)
    texts = [text for q, a, similar in TEA_FAQ for text in (q, a, *similar)]
    with app.app_context():
        entry_ids = sorted(select_entry_ids(bot_id))
        db.session.execute(sa.delete(FaqVector).where(FaqVector.entry_id.in_(entry_ids[1:])))
        db.session.commit()
        half_done = set(stored(app, bot_id))
        assert half_done and half_done < digests(*texts)
        store_vectors([db.session.get_one(FaqEntry, entry_ids[2])])  # another job was there

        db.session.commit()

        assert tasks.embed_missing() >= 1

        assert set(stored(app, bot_id)) == digests(*texts)
        assert tasks.embed_missing() == 0  # nothing left to do, for any bot
