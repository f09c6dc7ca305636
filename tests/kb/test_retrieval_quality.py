"""Retrieval quality on the labelled set (tests/data/kb_eval), through the real engine.

The entries go into the database as a bot's FAQ, at the default threshold; every
question is then answered by the configured engine, as a customer's message would be.
The floors sit a little below the figures measured when the threshold was chosen (see
`bench/kb_eval.py` and the README), so that a change that makes the bot worse fails.
"""

from __future__ import annotations

from flask import Flask

from bench.kb_eval import load_entries, load_questions, run, score
from tests.usage.conftest import Tenant
from webapp.bots.models import DEFAULT_ANSWER_THRESHOLD, Bot
from webapp.extensions import db
from webapp.kb.answering import answer_engine
from webapp.kb.engines import Band
from webapp.kb.services import knowledge_changed, new_entry


def test_the_engine_answers_the_labelled_questions_well_enough(app: Flask, tenant: Tenant) -> None:
    bot_id = tenant.add_bot()
    with app.app_context():
        bot = db.session.get(Bot, bot_id)
        assert bot is not None
        assert bot.answer_threshold == DEFAULT_ANSWER_THRESHOLD
        stored = {
            labelled.id: new_entry(
                bot, labelled.question, labelled.answer, labelled.similar_questions
            )
            for labelled in load_entries()
        }
        db.session.flush()
        csv_id = {entry.id: labelled_id for labelled_id, entry in stored.items()}
        knowledge_changed(bot_id)
        db.session.commit()
        bot = db.session.get(Bot, bot_id)
        assert bot is not None
        engine = answer_engine()
        answered: list[bool] = []

        def best(question: str) -> tuple[int | None, float]:
            answer = engine.answer(bot, question)
            answered.append(answer.band is Band.CONFIDENT)
            if not answer.matches:
                return None, 0.0
            top = answer.matches[0]
            assert answered[-1] == (top.confidence >= DEFAULT_ANSWER_THRESHOLD)
            assert not answered[-1] or answer.entry_id == top.entry_id
            return csv_id[top.entry_id], top.confidence

        outcomes = run(load_questions(), best)

    scores = score(outcomes, DEFAULT_ANSWER_THRESHOLD)
    assert scores.answerable >= 180 and scores.unanswerable >= 60
    assert sum(answered) == round(scores.answer_rate * len(answered))
    # Measured: top-1 80.5%, answered correctly 47.0%, answer rate 37.3%, false 2.8% (7 of 252).
    assert scores.top1 >= 0.78
    assert scores.answered_correctly >= 0.44
    assert scores.answer_rate >= 0.34
    assert scores.false_answers <= 0.035
