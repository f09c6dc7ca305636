"""KnowledgeIndex on its own: what a rebuild keeps from the previous index, and what not."""

from __future__ import annotations

from webapp.kb.engines import IndexedEntry, KnowledgeIndex

SHIPPING = IndexedEntry(1, "下单后多久发货？", "付款后48小时内发货。", ("什么时候发货",))
RETURNS = IndexedEntry(2, "退货流程是什么？", "在订单页申请退货。", ("怎么申请退货",))


def test_a_rebuild_answers_from_the_changed_entries_only() -> None:
    before = KnowledgeIndex([SHIPPING, RETURNS])
    assert before.search("退货怎么申请")[0].entry_id == 2

    invoices = IndexedEntry(2, "可以开发票吗？", "可以开电子发票。", ("怎么开发票",))
    after = KnowledgeIndex([SHIPPING, invoices], before)

    gone = after.search("退货流程是什么")
    assert RETURNS.answer not in [m.answer for m in gone]
    assert max(m.confidence for m in gone) < 0.2  # only a shared character (货) is left
    best = after.search("能开发票吗")[0]
    assert (best.entry_id, best.answer) == (2, "可以开电子发票。")
    assert after.search("什么时候发货")[0].entry_id == 1
    assert set(after.tokens) == {
        SHIPPING.question,
        SHIPPING.answer,
        *SHIPPING.similar_questions,
        invoices.question,
        invoices.answer,
        *invoices.similar_questions,
    }


def test_the_same_words_are_full_confidence_and_unknown_words_none() -> None:
    index = KnowledgeIndex([SHIPPING, RETURNS])

    assert index.search("下单后多久发货")[0].confidence == 1.0
    assert index.search("明天杭州天气") == []
    assert KnowledgeIndex([]).search("下单后多久发货") == []
