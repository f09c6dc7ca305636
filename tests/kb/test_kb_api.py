"""/api/v1/bots/{bot_id}/faq and the answer preview."""

from __future__ import annotations

from typing import Any

from flask import Flask

from tests.api import add_member, assert_error
from tests.kb import add_entry, add_tea_faq, faq_path, offer_only_when_fairly_sure
from tests.usage.conftest import Tenant, key_headers
from webapp.bots.models import Bot
from webapp.extensions import db


def preview(tenant: Tenant, bot_id: int, question: str) -> dict[str, Any]:
    response = tenant.api.post(f"/api/v1/bots/{bot_id}/answer-preview", json={"question": question})
    assert response.status_code == 200, response.get_json()
    return dict(response.get_json())


def test_entries_are_created_listed_searched_changed_and_deleted(tenant: Tenant) -> None:
    bot_id = tenant.add_bot()
    first, second, _third = add_tea_faq(tenant.api, bot_id)
    assert first["similar_questions"] == ["什么时候发货", "几天发出"]
    assert first["is_enabled"] is True

    listed = tenant.api.get(faq_path(bot_id))
    assert [e["id"] for e in listed.get_json()] == [first["id"], second["id"], _third["id"]]
    found = tenant.api.get(faq_path(bot_id), query_string={"q": "退货"}).get_json()
    assert [e["id"] for e in found] == [second["id"]]
    by_phrasing = tenant.api.get(faq_path(bot_id), query_string={"q": "几天发出"}).get_json()
    assert [e["id"] for e in by_phrasing] == [first["id"]]

    changed = tenant.api.patch(
        f"{faq_path(bot_id)}/{first['id']}",
        json={
            "answer": "付款后24小时内发货。",
            "similar_questions": [" 几天发出 ", "几天发出", "下单后多久发货？"],
        },
    )
    assert changed.status_code == 200, changed.get_json()
    assert changed.get_json()["answer"] == "付款后24小时内发货。"
    assert changed.get_json()["similar_questions"] == ["几天发出"]

    assert tenant.api.delete(f"{faq_path(bot_id)}/{first['id']}").status_code == 204
    assert_error(tenant.api.get(f"{faq_path(bot_id)}/{first['id']}"), 404, "faq_entry_not_found")


def test_every_change_bumps_the_knowledge_version(app: Flask, tenant: Tenant) -> None:
    bot_id = tenant.add_bot()
    entry = add_entry(tenant.api, bot_id, "营业时间是几点？", "每天9点到21点。")
    tenant.api.patch(f"{faq_path(bot_id)}/{entry['id']}", json={"is_enabled": False})
    tenant.api.delete(f"{faq_path(bot_id)}/{entry['id']}")
    with app.app_context():
        bot = db.session.get(Bot, bot_id)
        assert bot is not None
        assert bot.knowledge_version == 3


def test_entries_are_validated(tenant: Tenant) -> None:
    bot_id = tenant.add_bot()
    path = faq_path(bot_id)
    assert_error(
        tenant.api.post(path, json={"question": "", "answer": "a"}), 422, "validation_error"
    )
    assert_error(tenant.api.post(path, json={"question": "q"}), 422, "validation_error")
    assert_error(
        tenant.api.post(path, json={"question": "  ", "answer": "a"}), 422, "validation_error"
    )
    too_many = {"question": "q", "answer": "a", "similar_questions": [str(i) for i in range(21)]}
    assert_error(tenant.api.post(path, json=too_many), 422, "validation_error")
    assert_error(
        tenant.api.post(path, json={"question": "q" * 501, "answer": "a"}), 422, "validation_error"
    )


def test_members_read_managers_write_keys_are_refused(
    app: Flask, tenant: Tenant, make_user: Any, make_api_client: Any
) -> None:
    bot_id = tenant.add_bot()
    entry = add_entry(tenant.api, bot_id, "支持哪些支付方式？", "支持微信支付和支付宝。")
    member = make_user()
    add_member(app, tenant.id, member)
    member_api = make_api_client(member)

    assert member_api.get(faq_path(bot_id)).status_code == 200
    assert_error(
        member_api.post(faq_path(bot_id), json={"question": "q", "answer": "a"}), 403, "forbidden"
    )
    assert_error(member_api.delete(f"{faq_path(bot_id)}/{entry['id']}"), 403, "forbidden")
    key = tenant.add_api_key()
    assert_error(
        tenant.api.client.get(faq_path(bot_id), headers=key_headers(key)),
        401,
        "api_key_not_allowed",
    )


def test_another_organizations_bot_and_entries_are_404(tenant: Tenant, make_tenant: Any) -> None:
    bot_id = tenant.add_bot()
    entry = add_entry(tenant.api, bot_id, "支持哪些支付方式？", "支持微信支付和支付宝。")
    stranger = make_tenant(name="别家公司")

    assert_error(stranger.api.get(faq_path(bot_id)), 404, "bot_not_found")
    assert_error(stranger.api.get(f"{faq_path(bot_id)}/{entry['id']}"), 404, "faq_entry_not_found")
    assert_error(
        stranger.api.patch(f"{faq_path(bot_id)}/{entry['id']}", json={"answer": "x"}),
        404,
        "faq_entry_not_found",
    )
    assert_error(
        stranger.api.post(f"/api/v1/bots/{bot_id}/answer-preview", json={"question": "q"}),
        404,
        "bot_not_found",
    )


def test_preview_answers_a_paraphrase_and_shows_why(tenant: Tenant) -> None:
    bot_id = tenant.add_bot()
    entries = add_tea_faq(tenant.api, bot_id)

    body = preview(tenant, bot_id, "我想退货，流程是怎样的")

    assert body["handoff"] is False
    assert body["entry_id"] == entries[1]["id"]
    assert body["answer"] == entries[1]["answer"]
    assert body["confidence"] >= body["threshold"]
    assert body["engine"] == "hybrid"
    assert body["matches"][0]["entry_id"] == entries[1]["id"]


def test_preview_falls_back_below_the_threshold(tenant: Tenant) -> None:
    bot_id = tenant.add_bot()
    add_tea_faq(tenant.api, bot_id)
    offer_only_when_fairly_sure(tenant.app, bot_id)
    tenant.api.patch(f"/api/v1/bots/{bot_id}", json={"fallback_text": "请稍等，人工客服马上来。"})

    body = preview(tenant, bot_id, "明天杭州天气怎么样")

    assert body["handoff"] is True
    assert body["entry_id"] is None
    assert body["answer"] == "请稍等，人工客服马上来。"
    assert body["confidence"] < body["threshold"]


def test_the_answer_follows_entry_changes(tenant: Tenant) -> None:
    bot_id = tenant.add_bot()
    assert preview(tenant, bot_id, "支持花呗分期吗")["handoff"] is True

    entry = add_entry(tenant.api, bot_id, "支持花呗分期吗？", "支持花呗分3期免息。")
    assert preview(tenant, bot_id, "支持花呗分期吗")["entry_id"] == entry["id"]

    tenant.api.patch(f"{faq_path(bot_id)}/{entry['id']}", json={"is_enabled": False})
    assert preview(tenant, bot_id, "支持花呗分期吗")["handoff"] is True
