"""Conversation messages under concurrency, on real PostgreSQL with real commits.

The quota holds across conversations (the usage counter is the one gate), and
retries of one message count, store and answer it once (the conversation row
lock orders them; the usage record's idempotency key decides).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import sqlalchemy as sa
from flask import Flask

from tests.conversations import messages_path, start
from tests.kb import add_tea_faq
from tests.usage.conftest import key_headers
from tests.usage.test_usage_concurrency import run_together
from webapp.billing.periods import month_start
from webapp.conversations.models import Message
from webapp.db import utcnow
from webapp.extensions import db
from webapp.usage.models import UsageCounter

WRITERS = 20
MESSAGES_EACH = 3
LEFT_IN_QUOTA = 10
RETRIES = 10


def messages_by_role(app: Flask, organization_id: int) -> Counter[str]:
    with app.app_context():
        rows = db.session.scalars(
            sa.select(Message.role).where(Message.organization_id == organization_id)
        )
        return Counter(rows)


def test_concurrent_conversations_never_exceed_the_quota(
    app: Flask, committed_db: None, make_tenant: Any
) -> None:
    tenant = make_tenant()  # free: 1,000 messages a month
    bot_id = tenant.add_bot()
    add_tea_faq(tenant.api, bot_id)
    key = tenant.add_api_key(bot_id)
    with app.app_context():
        db.session.add(
            UsageCounter(
                organization_id=tenant.id,
                period_start=month_start(utcnow()),
                used=1000 - LEFT_IN_QUOTA,
            )
        )
        db.session.commit()
    conversations = [start(app.test_client(), key_headers(key))["id"] for _ in range(WRITERS)]

    def customer(i: int) -> list[int]:
        client = app.test_client()
        return [
            client.post(
                messages_path(conversations[i]), json={"text": "多久发货"}, headers=key_headers(key)
            ).status_code
            for _ in range(MESSAGES_EACH)
        ]

    statuses = Counter(run_together(WRITERS, customer))

    assert statuses == {201: LEFT_IN_QUOTA, 429: WRITERS * MESSAGES_EACH - LEFT_IN_QUOTA}
    assert messages_by_role(app, tenant.id) == {"customer": LEFT_IN_QUOTA, "bot": LEFT_IN_QUOTA}
    assert tenant.counts() == (1000, LEFT_IN_QUOTA, LEFT_IN_QUOTA)


def test_concurrent_retries_of_one_message_count_store_and_answer_once(
    app: Flask, committed_db: None, make_tenant: Any
) -> None:
    tenant = make_tenant()
    bot_id = tenant.add_bot()
    add_tea_faq(tenant.api, bot_id)
    key = tenant.add_api_key(bot_id)
    conversation = start(app.test_client(), key_headers(key))

    def retry(i: int) -> list[tuple[int, dict[str, Any]]]:
        response = app.test_client().post(
            messages_path(conversation["id"]),
            json={"text": "怎么开发票", "idempotency_key": "wx-msg-42"},
            headers=key_headers(key),
        )
        return [(response.status_code, response.get_json())]

    results = run_together(RETRIES, retry)

    assert sorted(status for status, _body in results) == [200] * (RETRIES - 1) + [201]
    assert len({body["message"]["id"] for _status, body in results}) == 1
    assert len({body["reply"]["id"] for _status, body in results}) == 1
    assert messages_by_role(app, tenant.id) == {"customer": 1, "bot": 1}
    assert tenant.counts() == (1, 1, 1)
