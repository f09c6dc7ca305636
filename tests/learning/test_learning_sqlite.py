"""The embedded default (`make run`, SQLite): an unsure answer, a pick and the learning item's
upsert work there too (ON CONFLICT and JSON columns spelled for SQLite)."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import sqlite_owner
from webapp.bots.services import create_bot, update_bot
from webapp.conversations import services as conversations
from webapp.extensions import db
from webapp.kb.services import create_entry
from webapp.learning import services as learning


def test_suggestions_and_learning_on_sqlite(tmp_path: Path) -> None:
    with sqlite_owner(tmp_path) as membership:
        organization_id = membership.organization_id
        bot = create_bot(membership, "机器人")
        # Never sure enough to answer (a one-entry bot is very sure of its entry).
        update_bot(membership, bot.id, answer_threshold=1.0, suggest_threshold=0.01)
        entry = create_entry(membership, bot.id, "退货流程是什么？", "在订单页申请退货。")
        conversation = conversations.start_conversation(organization_id, bot.id)

        for text in ("我想退货，要怎么弄", "我想退货 要怎么弄？"):
            offered = conversations.post_customer_message(conversation, text=text)
            assert offered.suggestions == [{"entry_id": entry.id, "question": entry.question}]
            picked = conversations.post_customer_message(conversation, entry_id=entry.id)
            assert picked.reply is not None and picked.reply.text == "在订单页申请退货。"
        db.session.commit()

        (item,) = db.session.scalars(learning.items_of(organization_id, bot.id))
        assert (item.text, item.count, item.proposed_entry_id) == (
            "我想退货 要怎么弄？",
            2,
            entry.id,
        )
        assert item.candidates == [entry.id]
