"""Answer bands in conversations: an unsure bot offers suggestions and keeps the chat, the
customer picks one by entry_id, and the bot hands off after two misses in a row or when
asked for a person.

The bands are driven by the bot's thresholds, not by what an engine scores a question:
answer 0.99 and suggest 0.01 make a paraphrase unsure; answer and suggest 0 make any
question with a match confident; 1 and 1 make an unrelated question lost.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from flask import Flask

from tests.api import assert_error
from tests.conversations import messages_path, start, widget_headers
from tests.conversations.test_conversations_api import conversation_status, say
from tests.conversations.test_widget_api import faq_widget, open_conversation, widget_messages
from tests.conversations.test_widget_api import say as widget_say
from tests.kb import add_entry, add_tea_faq
from tests.kb.test_kb_pages import logged_in
from tests.portal.conftest import en
from tests.usage.conftest import Tenant, key_headers
from webapp.conversations.models import Conversation, Message, MessageRole
from webapp.extensions import db

UNSURE = {"answer_threshold": 0.99, "suggest_threshold": 0.01}
CONFIDENT = {"answer_threshold": 0.0, "suggest_threshold": 0.0}
LOST = {"answer_threshold": 1.0, "suggest_threshold": 1.0}
RETURNS = "我想把买的东西退回去，要怎么弄"  # a paraphrase of 退货流程是什么？
UNRELATED = "你们老板叫什么名字"


class Chat:
    """One API conversation with a bot of the tea shop's FAQ, through its bound key."""

    def __init__(self, app: Flask, tenant: Tenant, thresholds: dict[str, float]) -> None:
        self.app, self.tenant = app, tenant
        self.bot_id = tenant.add_bot()
        self.entries = add_tea_faq(tenant.api, self.bot_id)
        self.key = tenant.add_api_key(self.bot_id)
        self.client = app.test_client()
        self.id = start(self.client, key_headers(self.key))["id"]
        self.thresholds(thresholds)

    def thresholds(self, values: dict[str, float]) -> None:
        response = self.tenant.api.patch(f"/api/v1/bots/{self.bot_id}", json=values)
        assert response.status_code == 200, response.get_json()

    def say(self, text: str, **extra: Any) -> Any:
        return say(self.client, self.id, text, self.key, **extra)

    def pick(self, entry_id: Any, **extra: Any) -> Any:
        return self.client.post(
            messages_path(self.id),
            json={"entry_id": entry_id, **extra},
            headers=key_headers(self.key),
        )

    def entry(self, question: str) -> dict[str, Any]:
        return next(entry for entry in self.entries if entry["question"] == question)

    def stored(self) -> list[tuple[str, str, str | None]]:
        with self.app.app_context():
            rows = db.session.execute(
                sa.select(Message.role, Message.text, Message.outcome)
                .where(Message.conversation_id == self.id)
                .order_by(Message.id)
            )
            return [(role, text, outcome) for role, text, outcome in rows]


def unsure(chat: Chat, text: str = RETURNS) -> dict[str, Any]:
    response = chat.say(text)
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert body["band"] == "unsure", body
    return dict(body)


def test_an_unsure_bot_offers_suggestions_and_keeps_the_conversation(
    app: Flask, tenant: Tenant
) -> None:
    chat = Chat(app, tenant, UNSURE)

    body = unsure(chat)

    assert body["handoff"] is False and body["source_entry"] is None
    assert body["message"]["outcome"] == "unsure"
    suggestions = body["suggestions"]
    assert 1 <= len(suggestions) <= 3
    by_id = {entry["id"]: entry["question"] for entry in chat.entries}
    assert all(by_id[s["entry_id"]] == s["question"] for s in suggestions)
    returns = chat.entry("退货流程是什么？")
    assert returns["id"] in [s["entry_id"] for s in suggestions]
    lines = body["reply"]["text"].splitlines()
    assert lines[1:] == [f"{n}. {s['question']}" for n, s in enumerate(suggestions, 1)]
    assert body["reply"]["suggestions"] == suggestions
    assert conversation_status(app, chat.id) == "open"
    listed = tenant.api.get(messages_path(chat.id)).get_json()
    assert listed[1]["suggestions"] == suggestions and listed[0]["suggestions"] is None


def test_the_customer_picks_a_suggestion_and_the_bot_answers_with_its_entry(
    app: Flask, tenant: Tenant
) -> None:
    chat = Chat(app, tenant, UNSURE)
    unsure(chat)
    returns = chat.entry("退货流程是什么？")

    response = chat.pick(returns["id"])

    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert (body["band"], body["handoff"], body["suggestions"]) == ("confident", False, [])
    assert body["reply"]["text"] == returns["answer"]
    assert body["source_entry"] == {"id": returns["id"], "question": returns["question"]}
    assert body["message"]["outcome"] == "picked"
    assert body["message"]["faq_entry_id"] == returns["id"]
    assert body["usage"]["used"] == 2  # metered like any message
    assert tenant.counts() == (2, 2, 2)
    assert chat.stored()[2:] == [
        ("customer", returns["question"], "picked"),
        ("bot", returns["answer"], None),
    ]
    # A pick answers: the next unsure answer is the first in a row again, not a handoff.
    assert unsure(chat)["handoff"] is False
    assert conversation_status(app, chat.id) == "open"


def test_a_retried_pick_counts_and_answers_once(app: Flask, tenant: Tenant) -> None:
    chat = Chat(app, tenant, UNSURE)
    offered = unsure(chat)["suggestions"][0]

    first = chat.pick(offered["entry_id"], idempotency_key="pick-1")
    again = chat.pick(offered["entry_id"], idempotency_key="pick-1")

    assert (first.status_code, again.status_code) == (201, 200)
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.get_json()["band"] == "confident"
    assert again.get_json()["reply"] == first.get_json()["reply"]
    assert tenant.counts() == (2, 2, 2)
    assert len(chat.stored()) == 4


def test_only_a_suggestion_last_offered_can_be_picked(app: Flask, tenant: Tenant) -> None:
    tenant.set_plan("pro")
    chat = Chat(app, tenant, UNSURE)
    extra = add_entry(tenant.api, chat.bot_id, "营业时间是几点？", "每天9点到18点。")
    other_bot = tenant.add_bot("另一个机器人")
    stranger_entry = add_entry(tenant.api, other_bot, "退货流程是什么？", "别的店的答案")

    assert_error(chat.pick(chat.entries[0]["id"]), 422, "not_offered")  # nothing offered yet
    offered = [s["entry_id"] for s in unsure(chat)["suggestions"]]
    not_offered = next(
        e["id"] for e in [*chat.entries, extra] if e["id"] not in offered
    )  # 4 entries, at most 3 offered
    for entry_id in (not_offered, stranger_entry["id"], 2**31 - 1):
        response = chat.pick(entry_id)
        assert_error(response, 422, "not_offered")
        assert response.get_json()["errors"] == {"entry_id": [response.get_json()["message"]]}
    # A later offer replaces the earlier one.
    with app.app_context():
        db.session.add(
            Message(
                conversation_id=chat.id,
                organization_id=tenant.id,
                bot_id=chat.bot_id,
                role=MessageRole.BOT.value,
                text="您是不是想问：\n1. 营业时间是几点？",
                suggestions=[{"entry_id": extra["id"], "question": extra["question"]}],
            )
        )
        db.session.commit()
    if extra["id"] not in offered:
        assert_error(chat.pick(offered[0]), 422, "not_offered")
    assert chat.pick(extra["id"]).status_code == 201
    # An offered entry that was disabled meanwhile cannot answer.
    tenant.api.patch(f"/api/v1/bots/{chat.bot_id}/faq/{extra['id']}", json={"is_enabled": False})
    assert_error(chat.pick(extra["id"]), 422, "not_offered")
    assert tenant.counts()[0] == 2  # the unsure question and the one pick


def test_text_or_a_pick_but_not_both_nor_neither(app: Flask, tenant: Tenant) -> None:
    chat = Chat(app, tenant, UNSURE)
    offered = unsure(chat)["suggestions"][0]["entry_id"]

    for body in (
        {},
        {"text": ""},
        {"text": "退货", "entry_id": offered},
        {"entry_id": "1"},
        {"entry_id": 0},
        {"entry_id": None},
        {"entry_id": True},
    ):
        response = chat.client.post(
            messages_path(chat.id), json=body, headers=key_headers(chat.key)
        )
        assert_error(response, 422, "validation_error")
    assert tenant.counts()[0] == 1


def test_two_unsure_answers_in_a_row_hand_off(app: Flask, tenant: Tenant) -> None:
    chat = Chat(app, tenant, UNSURE)
    unsure(chat)

    body = chat.say("发票怎么弄呢").get_json()

    assert (body["band"], body["handoff"], body["suggestions"]) == ("lost", True, [])
    assert body["message"]["outcome"] == "fallback"
    assert "人工" in body["reply"]["text"] or "colleague" in body["reply"]["text"]
    assert body["reply"]["suggestions"] is None
    assert conversation_status(app, chat.id) == "needs_human"


def test_a_lost_answer_then_an_unsure_one_hand_off_and_a_return_to_the_bot_starts_afresh(
    app: Flask, tenant: Tenant
) -> None:
    chat = Chat(app, tenant, LOST)
    lost = chat.say(UNRELATED).get_json()
    assert (lost["band"], lost["handoff"], lost["message"]["outcome"]) == ("lost", True, "fallback")
    chat.thresholds(UNSURE)

    assert chat.say(RETURNS).get_json()["band"] == "lost"

    path = f"/api/v1/conversations/{chat.id}"
    assert tenant.api.post(f"{path}/return-to-bot").status_code == 200
    assert unsure(chat)["handoff"] is False
    assert conversation_status(app, chat.id) == "open"


def test_a_confident_answer_breaks_the_run(app: Flask, tenant: Tenant) -> None:
    chat = Chat(app, tenant, UNSURE)
    unsure(chat)
    chat.thresholds(CONFIDENT)
    answered = chat.say("下单后多久发货？").get_json()
    assert (answered["band"], answered["message"]["outcome"]) == ("confident", "answered")
    chat.thresholds(UNSURE)

    assert unsure(chat)["handoff"] is False


def test_a_customer_who_asks_for_a_person_is_handed_off(app: Flask, tenant: Tenant) -> None:
    chat = Chat(app, tenant, CONFIDENT)

    not_asked = chat.say("不要人工，我自己看看发货时间").get_json()
    assert not_asked["message"]["outcome"] != "asked_for_human"
    assert conversation_status(app, chat.id) == "open"

    body = chat.say("我要转人工！").get_json()

    assert (body["band"], body["handoff"], body["suggestions"]) == ("lost", True, [])
    assert body["message"]["outcome"] == "asked_for_human"
    assert body["confidence"] is None and body["source_entry"] is None
    assert conversation_status(app, chat.id) == "needs_human"


def test_handoff_words_are_the_bots_own(app: Flask, tenant: Tenant) -> None:
    chat = Chat(app, tenant, CONFIDENT)
    tenant.api.patch(f"/api/v1/bots/{chat.bot_id}", json={"handoff_words": ["投诉"]})

    assert chat.say("转人工").get_json()["message"]["outcome"] != "asked_for_human"
    assert chat.say("我要投诉").get_json()["message"]["outcome"] == "asked_for_human"
    assert conversation_status(app, chat.id) == "needs_human"


def test_while_an_agent_has_the_conversation_a_pick_waits_for_the_agent(
    app: Flask, tenant: Tenant
) -> None:
    chat = Chat(app, tenant, UNSURE)
    offered = unsure(chat)["suggestions"][0]
    path = f"/api/v1/conversations/{chat.id}"
    assert tenant.api.post(f"{path}/replies", json={"text": "您好，我来帮您。"}).status_code == 201

    body = chat.pick(offered["entry_id"]).get_json()

    assert (body["reply"], body["band"], body["handoff"], body["suggestions"]) == (
        None,
        None,
        True,
        [],
    )
    assert body["message"]["outcome"] == "agent"
    assert body["message"]["text"] == offered["question"]


def test_misses_are_counted_on_the_conversation(app: Flask, tenant: Tenant) -> None:
    chat = Chat(app, tenant, UNSURE)

    def misses() -> int:
        with app.app_context():
            conversation = db.session.get(Conversation, chat.id)
            assert conversation is not None
            return conversation.bot_misses

    unsure(chat)
    assert misses() == 1
    chat.pick(chat.entry("退货流程是什么？")["id"])
    assert misses() == 0


def test_a_visitor_picks_a_suggestion_in_the_widget(app: Flask, tenant: Tenant) -> None:
    bot_id, key = faq_widget(tenant)
    tenant.api.patch(f"/api/v1/bots/{bot_id}", json=UNSURE)
    client = app.test_client()
    conversation_id, token = open_conversation(client, key)
    headers = widget_headers(key, token)

    offered = widget_say(client, key, conversation_id, token, RETURNS).get_json()
    assert (offered["band"], offered["handoff"]) == ("unsure", False)
    assert offered["reply"]["suggestions"] == offered["suggestions"] != []
    assert "confidence" not in offered["reply"]
    pick = offered["suggestions"][0]

    assert_error(
        client.post(
            widget_messages(conversation_id), json={"entry_id": 2**31 - 1}, headers=headers
        ),
        422,
        "not_offered",
    )
    picked = client.post(
        widget_messages(conversation_id), json={"entry_id": pick["entry_id"]}, headers=headers
    )

    assert picked.status_code == 201, picked.get_json()
    body = picked.get_json()
    assert (body["band"], body["handoff"], body["suggestions"]) == ("confident", False, [])
    assert body["message"]["text"] == pick["question"]
    polled = client.get(widget_messages(conversation_id), headers=headers).get_json()["messages"]
    assert [m["suggestions"] for m in polled] == [None, offered["suggestions"], None, None]
    assert tenant.counts()[0] == 2


def test_the_inbox_shows_what_was_offered_and_picked(app: Flask, tenant: Tenant) -> None:
    chat = Chat(app, tenant, UNSURE)
    offered = unsure(chat)["suggestions"]
    chat.pick(offered[0]["entry_id"])
    chat.say("转人工")
    portal = logged_in(app, tenant.owner)

    html = portal.page(f"/inbox/{chat.id}")

    questions = " / ".join(s["question"] for s in offered)
    assert en("Offered: %(questions)s", questions=questions) in html
    assert en("Picked from the suggestions") in html
    assert en("Asked for a person") in html
