"""/api/v1/bots/{bot_id}/learning: what is recorded, teaching the bot, roles and tenants."""

from __future__ import annotations

from typing import Any

from flask import Flask

from tests.api import add_member, assert_error
from tests.conversations.test_suggestions import (
    CONFIDENT,
    LOST,
    RETURNS,
    UNRELATED,
    UNSURE,
    Chat,
    unsure,
)
from tests.kb import add_entry, faq_path
from tests.learning import learning_path
from tests.usage.conftest import Tenant, key_headers
from webapp.bots.models import Bot
from webapp.extensions import db


def listed(tenant: Tenant, bot_id: int, **query: str) -> list[dict[str, Any]]:
    response = tenant.api.get(learning_path(bot_id), query_string=query)
    assert response.status_code == 200, response.get_json()
    return list(response.get_json())


def learn(tenant: Tenant, bot_id: int, item_id: int, **body: Any) -> Any:
    return tenant.api.post(f"{learning_path(bot_id)}/{item_id}/learn", json=body)


def lost_question(app: Flask, tenant: Tenant, text: str = "你们周末营业吗") -> tuple[Chat, Any]:
    """A conversation in which the bot was lost on `text`, and the item that made."""
    chat = Chat(app, tenant, LOST)
    chat.say(text)
    (item,) = listed(tenant, chat.bot_id)
    return chat, item


def knowledge_version(app: Flask, bot_id: int) -> int:
    with app.app_context():
        bot = db.session.get(Bot, bot_id)
        assert bot is not None
        return bot.knowledge_version


def test_questions_the_bot_was_unsure_or_lost_on_are_counted_by_wording(
    app: Flask, tenant: Tenant
) -> None:
    chat = Chat(app, tenant, LOST)
    chat.say(UNRELATED)  # lost
    chat.thresholds(CONFIDENT)
    chat.say("下单后多久发货？")  # answered: nothing to learn
    chat.say("转人工")  # asked for a person: nothing to learn
    chat.thresholds(UNSURE)
    unsure(chat)
    chat.pick(chat.entry("退货流程是什么？")["id"])
    unsure(chat, RETURNS.replace("，", " ") + "？")  # the same question, other punctuation

    items = listed(tenant, chat.bot_id)

    assert [(item["text"], item["count"]) for item in items] == [
        (RETURNS.replace("，", " ") + "？", 2),
        (UNRELATED, 1),
    ]
    returns = items[0]
    assert returns["status"] == "open" and returns["first_seen_at"] <= returns["last_seen_at"]
    assert returns["proposed_entry"] == {
        "entry_id": chat.entry("退货流程是什么？")["id"],
        "question": "退货流程是什么？",
    }
    assert chat.entry("退货流程是什么？")["id"] in [c["entry_id"] for c in returns["candidates"]]
    assert items[1]["proposed_entry"] is None
    recent = listed(tenant, chat.bot_id, sort="recent")
    assert [item["text"] for item in recent] == [item["text"] for item in items]


def test_an_agents_reply_is_proposed_as_the_answer(app: Flask, tenant: Tenant) -> None:
    chat = Chat(app, tenant, LOST)
    chat.say("你们周末营业吗")
    path = f"/api/v1/conversations/{chat.id}/replies"

    assert tenant.api.post(path, json={"text": "周末照常营业，9点到18点。"}).status_code == 201

    (item,) = listed(tenant, chat.bot_id)
    assert item["proposed_answer"] == "周末照常营业，9点到18点。"


def test_learning_a_similar_question_teaches_the_entry(app: Flask, tenant: Tenant) -> None:
    chat = Chat(app, tenant, UNSURE)
    unsure(chat)
    (item,) = listed(tenant, chat.bot_id)
    returns = chat.entry("退货流程是什么？")
    version = knowledge_version(app, chat.bot_id)

    response = learn(tenant, chat.bot_id, item["id"], entry_id=returns["id"])

    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert (body["status"], body["learned_entry_id"]) == ("learned", returns["id"])
    assert body["resolved_at"] is not None
    entry = tenant.api.get(f"{faq_path(chat.bot_id)}/{returns['id']}").get_json()
    assert entry["similar_questions"] == [*returns["similar_questions"], RETURNS]
    assert knowledge_version(app, chat.bot_id) == version + 1
    assert listed(tenant, chat.bot_id) == []
    assert [i["id"] for i in listed(tenant, chat.bot_id, status="learned")] == [item["id"]]
    preview = tenant.api.post(
        f"/api/v1/bots/{chat.bot_id}/answer-preview", json={"question": RETURNS}
    ).get_json()
    assert preview["matches"][0]["entry_id"] == returns["id"]
    assert_error(
        learn(tenant, chat.bot_id, item["id"], entry_id=returns["id"]), 409, "already_learned"
    )
    dismiss = tenant.api.post(f"{learning_path(chat.bot_id)}/{item['id']}/dismiss")
    assert_error(dismiss, 409, "already_learned")


def test_learning_a_new_entry_and_an_edited_phrasing(app: Flask, tenant: Tenant) -> None:
    chat = Chat(app, tenant, LOST)
    chat.say("你们周末营业吗")
    chat.say("可以用花呗吗")
    weekend, huabei = sorted(listed(tenant, chat.bot_id), key=lambda item: item["id"])

    made = learn(tenant, chat.bot_id, weekend["id"], answer=" 周末照常营业。 ").get_json()
    edited = learn(
        tenant,
        chat.bot_id,
        huabei["id"],
        entry_id=chat.entry("可以开发票吗？")["id"],
        phrasing="支持花呗分期吗",
    ).get_json()

    created = tenant.api.get(f"{faq_path(chat.bot_id)}/{made['learned_entry_id']}").get_json()
    assert (created["question"], created["answer"]) == ("你们周末营业吗", "周末照常营业。")
    assert made["status"] == edited["status"] == "learned"
    invoice = tenant.api.get(f"{faq_path(chat.bot_id)}/{edited['learned_entry_id']}").get_json()
    assert invoice["similar_questions"][-1] == "支持花呗分期吗"


def test_dismissed_questions_stay_dismissed_and_learned_ones_come_back(
    app: Flask, tenant: Tenant
) -> None:
    chat = Chat(app, tenant, LOST)
    chat.say("在吗")
    chat.say("你们周末营业吗")
    hello, weekend = sorted(listed(tenant, chat.bot_id), key=lambda item: item["id"])

    dismissed = tenant.api.post(f"{learning_path(chat.bot_id)}/{hello['id']}/dismiss")
    assert dismissed.status_code == 200 and dismissed.get_json()["status"] == "dismissed"
    learned = learn(tenant, chat.bot_id, weekend["id"], answer="周末照常营业。").get_json()
    tenant.api.delete(f"{faq_path(chat.bot_id)}/{learned['learned_entry_id']}")
    chat.say("在吗？")
    chat.say("你们周末营业吗")

    assert [(i["text"], i["count"]) for i in listed(tenant, chat.bot_id)] == [("你们周末营业吗", 2)]
    (still,) = listed(tenant, chat.bot_id, status="dismissed")
    assert (still["text"], still["count"]) == ("在吗？", 2)


def test_learn_requests_are_validated(app: Flask, tenant: Tenant) -> None:
    tenant.set_plan("pro")
    chat, item = lost_question(app, tenant)
    other_bot = tenant.add_bot("另一个机器人")
    foreign = add_entry(tenant.api, other_bot, "别的问题", "别的答案")

    for body in (
        {},
        {"entry_id": chat.entries[0]["id"], "answer": "答案"},
        {"entry_id": chat.entries[0]["id"], "question": "问题"},
        {"answer": "答案", "phrasing": "问法"},
        {"answer": ""},
        {"answer": "   "},
        {"entry_id": "1"},
        {"entry_id": 0},
        {"entry_id": chat.entries[0]["id"], "phrasing": "长" * 501},
    ):
        response = learn(tenant, chat.bot_id, item["id"], **body)
        assert response.status_code == 422, (body, response.get_json())
    assert_error(
        learn(tenant, chat.bot_id, item["id"], entry_id=foreign["id"]), 404, "faq_entry_not_found"
    )
    assert_error(
        learn(tenant, other_bot, item["id"], answer="答案"), 404, "learning_item_not_found"
    )
    assert_error(
        tenant.api.get(learning_path(chat.bot_id), query_string={"status": "gone"}),
        422,
        "validation_error",
    )
    assert listed(tenant, chat.bot_id)[0]["status"] == "open"


def test_members_read_managers_teach_keys_are_refused(
    app: Flask, tenant: Tenant, make_user: Any, make_api_client: Any
) -> None:
    chat, item = lost_question(app, tenant)
    member = make_user()
    add_member(app, tenant.id, member)
    member_api = make_api_client(member)
    path = f"{learning_path(chat.bot_id)}/{item['id']}"

    assert [i["id"] for i in member_api.get(learning_path(chat.bot_id)).get_json()] == [item["id"]]
    assert_error(member_api.post(f"{path}/learn", json={"answer": "答案"}), 403, "forbidden")
    assert_error(member_api.post(f"{path}/dismiss"), 403, "forbidden")
    assert_error(
        tenant.api.client.get(learning_path(chat.bot_id), headers=key_headers(chat.key)),
        401,
        "api_key_not_allowed",
    )
    admin = make_user()
    add_member(app, tenant.id, admin, "admin")
    assert make_api_client(admin).post(f"{path}/dismiss").status_code == 200


def test_another_organizations_questions_are_404(
    app: Flask, tenant: Tenant, make_tenant: Any
) -> None:
    chat, item = lost_question(app, tenant)
    stranger = make_tenant(name="别家公司")
    stranger_bot = stranger.add_bot()
    path = f"{learning_path(chat.bot_id)}/{item['id']}"

    assert_error(stranger.api.get(learning_path(chat.bot_id)), 404, "bot_not_found")
    assert_error(stranger.api.post(f"{path}/learn", json={"answer": "偷"}), 404, "bot_not_found")
    assert_error(stranger.api.post(f"{path}/dismiss"), 404, "bot_not_found")
    assert_error(
        stranger.api.post(f"{learning_path(stranger_bot)}/{item['id']}/dismiss"),
        404,
        "learning_item_not_found",
    )
    assert listed(tenant, chat.bot_id)[0]["status"] == "open"
