"""POST /usage/record with an API key: one statement when it records, the general answer otherwise.

On PostgreSQL the key is checked and the usage recorded by one statement
(`webapp.usage.services.record_with_api_key`); every refusal and every replay
goes through the general path. These tests pin both: the fast path is taken,
and what it refuses is answered exactly as before, with nothing counted.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import sqlalchemy as sa

from tests.api import assert_error
from tests.usage.conftest import RECORD, Tenant, key_headers
from webapp.billing.models import Subscription
from webapp.bots.models import ApiKey
from webapp.db import utcnow
from webapp.extensions import db


@contextmanager
def statements() -> Iterator[list[str]]:
    """The SQL statements sent meanwhile (savepoints, the tests' stand-in for commits, aside)."""
    seen: list[str] = []

    def listen(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if not statement.startswith(("SAVEPOINT", "RELEASE SAVEPOINT", "ROLLBACK TO")):
            seen.append(statement)

    sa.event.listen(sa.engine.Engine, "before_cursor_execute", listen)
    try:
        yield seen
    finally:
        sa.event.remove(sa.engine.Engine, "before_cursor_execute", listen)


def test_a_record_by_key_is_one_statement(tenant: Tenant, client: Any) -> None:
    headers = key_headers(tenant.add_api_key())
    with statements() as first:  # the statement is prepared on first use by a connection
        assert client.post(RECORD, json={"kind": "message"}, headers=headers).status_code == 201
    with statements() as seen:
        response = client.post(RECORD, json={"kind": "message", "quantity": 3}, headers=headers)

    assert response.status_code == 201, response.get_json()
    assert (response.get_json()["used"], response.headers["X-Quota-Remaining"]) == (4, "996")
    assert len(first) <= 2 and len(seen) == 1 and seen[0].startswith("EXECUTE"), (first, seen)
    assert tenant.counts() == (4, 2, 4)
    with tenant.app.app_context():
        assert db.session.scalar(sa.select(ApiKey.last_used_at)) is not None


def test_a_replay_by_key_counts_once(tenant: Tenant, client: Any) -> None:
    headers = {**key_headers(tenant.add_api_key()), "Idempotency-Key": "bot-retry-7"}
    first = client.post(RECORD, json={"kind": "message", "quantity": 2}, headers=headers)
    again = client.post(RECORD, json={"kind": "message", "quantity": 2}, headers=headers)

    assert (first.status_code, again.status_code) == (201, 200)
    assert again.get_json() == first.get_json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert tenant.counts() == (2, 1, 2)


def test_over_quota_by_key_is_429_and_counts_nothing(tenant: Tenant, client: Any) -> None:
    headers = key_headers(tenant.add_api_key())
    assert client.post(RECORD, json={"kind": "message", "quantity": 998}, headers=headers)

    refused = client.post(
        RECORD, json={"kind": "message", "quantity": 3, "idempotency_key": "k"}, headers=headers
    )
    assert_error(refused, 429, "quota_exceeded")
    assert refused.headers["X-Quota-Remaining"] == "2"
    assert tenant.counts() == (998, 1, 998)
    # The refused key was not remembered: what fits is counted under it.
    fits = client.post(
        RECORD, json={"kind": "message", "quantity": 2, "idempotency_key": "k"}, headers=headers
    )
    assert fits.status_code == 201 and fits.get_json()["remaining"] == 0


def test_refusals_by_key(make_tenant: Any, client: Any) -> None:
    tenant, other = make_tenant(plan="pro"), make_tenant()
    bot, disabled = tenant.add_bot("前台"), tenant.add_bot("停用", enabled=False)
    their_bot, their_key = other.add_bot(), other.add_api_key()
    secret, bound = tenant.add_api_key(), tenant.add_api_key(bot_id=bot)

    def record(key: str, **payload: Any) -> Any:
        return client.post(RECORD, json={"kind": "message", **payload}, headers=key_headers(key))

    assert_error(record(their_key, kind="image"), 403, "feature_not_in_plan")
    assert_error(record(secret, bot_id=disabled), 403, "bot_disabled")
    assert_error(record(secret, bot_id=their_bot), 404, "bot_not_found")
    assert_error(record(bound, bot_id=disabled), 403, "bot_mismatch")
    assert_error(record(secret[:-1] + "x"), 401, "invalid_api_key")
    assert_error(record("sk_nope"), 401, "invalid_api_key")
    assert (tenant.counts(), other.counts()) == ((0, 0, 0), (0, 0, 0))

    assert tenant.api.delete(f"/api/v1/api-keys/{_key_id(tenant, secret)}").status_code == 204
    assert_error(record(secret), 401, "invalid_api_key")  # at once: no cache outlives it
    assert record(bound).status_code == 201
    assert tenant.counts() == (1, 1, 1)


def test_a_paid_period_that_ended_meters_on_the_plan_that_follows(
    tenant: Tenant, client: Any
) -> None:
    tenant.set_plan("pro")
    secret = tenant.add_api_key()
    assert client.post(RECORD, json={"kind": "image"}, headers=key_headers(secret)).status_code
    with tenant.app.app_context():
        subscription = db.session.scalar(
            sa.select(Subscription).where(Subscription.organization_id == tenant.id)
        )
        assert subscription is not None
        subscription.current_period_end = utcnow() - timedelta(minutes=1)
        db.session.commit()

    refused = client.post(RECORD, json={"kind": "image"}, headers=key_headers(secret))
    assert_error(refused, 403, "feature_not_in_plan")  # free follows: no images
    message = client.post(RECORD, json={"kind": "message"}, headers=key_headers(secret))
    assert message.status_code == 201 and message.get_json()["limit"] == 1000
    assert tenant.counts() == (2, 2, 2)


def _key_id(tenant: Tenant, secret: str) -> int:
    prefix = secret.split("_")[1]
    with tenant.app.app_context():
        key_id = db.session.scalar(sa.select(ApiKey.id).where(ApiKey.prefix == prefix))
    assert key_id is not None
    return key_id
