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
