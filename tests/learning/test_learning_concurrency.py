"""Customers asking the same question at once, on real PostgreSQL with real commits: the
learning item counts every one of them (one upsert per message, no lost update)."""

from __future__ import annotations

from typing import Any

from flask import Flask

from tests.conversations import messages_path, start
from tests.kb import add_tea_faq
from tests.learning import learning_path
from tests.usage.conftest import key_headers
from tests.usage.test_usage_concurrency import run_together

CUSTOMERS = 12
QUESTIONS_EACH = 2


def test_concurrent_askers_are_all_counted(
    app: Flask, committed_db: None, make_tenant: Any
) -> None:
    tenant = make_tenant()
    bot_id = tenant.add_bot()
    add_tea_faq(tenant.api, bot_id)
    tenant.api.patch(f"/api/v1/bots/{bot_id}", json={"answer_threshold": 1, "suggest_threshold": 1})
    key = tenant.add_api_key(bot_id)
    conversations = [start(app.test_client(), key_headers(key))["id"] for _ in range(CUSTOMERS)]

    def customer(i: int) -> list[int]:
        client = app.test_client()
        return [
            client.post(
                messages_path(conversations[i]),
                json={"text": "你们周末营业吗" + "？" * n},
                headers=key_headers(key),
            ).status_code
            for n in range(QUESTIONS_EACH)
        ]

    assert run_together(CUSTOMERS, customer) == [201] * CUSTOMERS * QUESTIONS_EACH
    (item,) = tenant.api.get(learning_path(bot_id)).get_json()
    assert item["count"] == CUSTOMERS * QUESTIONS_EACH


def test_concurrent_learns_into_one_entry_keep_every_phrasing(
    app: Flask, committed_db: None, make_tenant: Any
) -> None:
    """Owners teaching one entry several questions at once: each learned item's phrasing is
    on the entry (the entry is locked while its list grows, so no append overwrites another)."""
    tenant = make_tenant()
    bot_id = tenant.add_bot()
    entry_id = add_tea_faq(tenant.api, bot_id)[0]["id"]
    tenant.api.patch(f"/api/v1/bots/{bot_id}", json={"answer_threshold": 1, "suggest_threshold": 1})
    key = tenant.add_api_key(bot_id)
    client = app.test_client()
    for word in ("周末", "晚上", "节假日", "春节", "国庆", "中秋"):
        conversation = start(client, key_headers(key))["id"]
        reply = client.post(
            messages_path(conversation),
            json={"text": f"你们{word}营业吗"},
            headers=key_headers(key),
        )
        assert reply.status_code == 201
    items = tenant.api.get(learning_path(bot_id)).get_json()
    assert len(items) == 6
    token = tenant.api.token

    def owner(i: int) -> list[int]:
        response = app.test_client().post(
            f"{learning_path(bot_id)}/{items[i]['id']}/learn",
            json={"entry_id": entry_id},
            headers={"Authorization": f"Bearer {token}"},
        )
        return [response.status_code]

    assert run_together(len(items), owner) == [200] * len(items)
    entry = tenant.api.get(f"/api/v1/bots/{bot_id}/faq/{entry_id}").get_json()
    assert {item["text"] for item in items} <= set(entry["similar_questions"])
