"""POST /usage/records: up to 500 events in one call, all or nothing against the quota."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask_migrate import upgrade

from tests.api import assert_error
from tests.usage.conftest import BATCH, HISTORY, RECORD, STATS, Tenant, key_headers
from tests.usage.test_usage_record_by_key import statements
from webapp import create_app
from webapp.auth.services import register_user
from webapp.billing.periods import month_start, next_month_start
from webapp.bots.services import create_api_key
from webapp.db import utcnow
from webapp.extensions import db, mail
from webapp.orgs.services import create_organization, membership_for
from webapp.usage.models import UsageDaily, UsageRecord


def events(count: int, prefix: str = "e", **fields: Any) -> list[dict[str, Any]]:
    """`count` message events with the keys `<prefix>-0`, `<prefix>-1`..."""
    return [{"kind": "message", "idempotency_key": f"{prefix}-{n}", **fields} for n in range(count)]


def send(client: Any, batch: list[dict[str, Any]], headers: dict[str, str]) -> Any:
    return client.post(BATCH, json={"events": batch}, headers=headers)


@pytest.fixture
def headers(tenant: Tenant) -> dict[str, str]:
    return key_headers(tenant.add_api_key())


def test_a_batch_counts_every_event_and_answers_with_the_quota(
    tenant: Tenant, client: Any, headers: dict[str, str]
) -> None:
    batch = [*events(3), {"kind": "message", "quantity": 7, "idempotency_key": "seven"}]

    response = send(client, batch, headers)

    assert response.status_code == 201, response.get_json()
    now = utcnow()
    assert response.get_json() == {
        "used": 10,
        "limit": 1000,
        "remaining": 990,
        "period_start": month_start(now).isoformat(),
        "period_end": next_month_start(now).isoformat(),
        "accepted": 4,
        "replayed": 0,
    }
    assert response.headers["X-Quota-Remaining"] == "990"
    assert "Idempotent-Replayed" not in response.headers
    assert tenant.counts() == (10, 4, 10)
    with tenant.app.app_context():
        used_after = set(db.session.scalars(sa.select(UsageRecord.used_after)))
    assert used_after == {10}  # each record answers a later replay of its key


def test_a_batch_retried_as_a_whole_answers_the_same_and_counts_once(
    tenant: Tenant, client: Any, headers: dict[str, str]
) -> None:
    batch = events(5)
    first = send(client, batch, headers)
    assert tenant.api.post(RECORD, json={"kind": "message"}).status_code == 201  # moves on

    again = send(client, batch, headers)

    assert (first.status_code, again.status_code) == (201, 200)
    assert again.headers["Idempotent-Replayed"] == "true"
    replay = again.get_json()
    assert (replay["accepted"], replay["replayed"]) == (0, 5)
    # The quota as the first call left it, as a single record's replay answers.
    assert {k: v for k, v in replay.items() if k not in ("accepted", "replayed")} == {
        k: v for k, v in first.get_json().items() if k not in ("accepted", "replayed")
    }
    assert replay["used"] == 5
    assert tenant.counts() == (6, 6, 6)


def test_a_batch_mixing_new_and_seen_keys_counts_only_the_new(
    tenant: Tenant, client: Any, headers: dict[str, str]
) -> None:
    assert send(client, events(3), headers).status_code == 201
    single = {"kind": "message", "quantity": 4, "idempotency_key": "single"}
    assert client.post(RECORD, json=single, headers=headers).status_code == 201

    mixed = send(client, [*events(5), {**single, "quantity": 1}], headers)

    assert mixed.status_code == 201, mixed.get_json()
    assert "Idempotent-Replayed" not in mixed.headers
    body = mixed.get_json()
    assert (body["accepted"], body["replayed"], body["used"]) == (2, 4, 9)
    assert tenant.counts() == (9, 6, 9)


def test_a_single_record_replays_a_key_a_batch_counted(
    tenant: Tenant, client: Any, headers: dict[str, str]
) -> None:
    assert send(client, events(2), headers).get_json()["used"] == 2

    replay = client.post(
        RECORD, json={"kind": "message", "idempotency_key": "e-1"}, headers=headers
    )

    assert replay.status_code == 200 and replay.headers["Idempotent-Replayed"] == "true"
    assert replay.get_json()["used"] == 2
    assert tenant.counts() == (2, 2, 2)


def test_a_batch_that_does_not_fit_counts_nothing(
    tenant: Tenant, client: Any, headers: dict[str, str]
) -> None:
    assert send(client, [{**events(1, "big")[0], "quantity": 998}], headers).status_code == 201

    refused = send(client, [*events(2), {**events(1, "x")[0], "quantity": 1}], headers)

    body = assert_error(refused, 429, "quota_exceeded")
    assert "3" in body["message"] and "2" in body["message"]
    assert refused.headers["X-Quota-Remaining"] == "2"
    assert int(refused.headers["Retry-After"]) > 0
    assert tenant.counts() == (998, 1, 998)
    # Nothing was remembered: the same keys count once they fit.
    fits = send(client, events(2), headers)
    assert fits.status_code == 201 and fits.get_json()["remaining"] == 0
    assert tenant.counts() == (1000, 3, 1000)
    # At the quota, a batch of events counted before is still a replay, not a 429...
    assert send(client, events(2), headers).status_code == 200
    # ...but one new event among them refuses the whole call.
    assert_error(send(client, events(3), headers), 429, "quota_exceeded")
    assert tenant.counts() == (1000, 3, 1000)


def test_plan_features_apply_per_event(
    tenant: Tenant, client: Any, headers: dict[str, str]
) -> None:
    batch = [*events(2), {"kind": "voice", "idempotency_key": "v"}, events(1, "i", kind="image")[0]]

    refused = send(client, batch, headers)

    body = assert_error(refused, 403, "feature_not_in_plan")
    assert body["errors"] == {"events": {"2": {"kind": [body["errors"]["events"]["2"]["kind"][0]]}}}
    assert "2" in body["message"]
    assert tenant.counts() == (0, 0, 0)
    tenant.set_plan("pro")
    assert send(client, batch, headers).get_json()["accepted"] == 4


def test_bots_are_checked_per_event(make_tenant: Any, client: Any) -> None:
    tenant, other = make_tenant(plan="pro"), make_tenant()
    front, back = tenant.add_bot("前台"), tenant.add_bot("售后")
    disabled, theirs = tenant.add_bot("停用", enabled=False), other.add_bot()
    key, bound = key_headers(tenant.add_api_key()), key_headers(tenant.add_api_key(front))

    def refused(headers: dict[str, str], bot_id: int, status: int, error: str) -> None:
        batch = [*events(1, "ok", bot_id=front), {**events(1)[0], "bot_id": bot_id}]
        body = assert_error(send(client, batch, headers), status, error)
        assert list(body["errors"]["events"]) == ["1"] and "bot_id" in body["errors"]["events"]["1"]

    refused(key, disabled, 403, "bot_disabled")
    refused(key, theirs, 404, "bot_not_found")
    refused(key, 2**31 - 1, 404, "bot_not_found")
    refused(bound, back, 403, "bot_mismatch")
    assert (tenant.counts(), other.counts()) == ((0, 0, 0), (0, 0, 0))

    by_bound = send(client, events(2, "bound"), bound)  # a bound key's events are its bot's
    mixed = send(client, [*events(2, "two", bot_id=back), *events(1, "none")], key)
    assert (by_bound.status_code, mixed.status_code) == (201, 201)
    with tenant.app.app_context():
        rollup = db.session.execute(
            sa.select(UsageDaily.bot_id, UsageDaily.kind, UsageDaily.quantity).where(
                UsageDaily.organization_id == tenant.id
            )
        ).all()
    assert sorted(rollup) == sorted(
        [(front, "message", 2), (back, "message", 2), (0, "message", 1)]
    )
    history = tenant.api.get(HISTORY, query_string={"bot_id": back}).get_json()
    assert history["series"][-1]["message"] == 2


def test_kinds_are_rolled_up_per_kind(make_tenant: Any, client: Any) -> None:
    tenant = make_tenant(plan="pro")
    headers = key_headers(tenant.add_api_key())
    batch = [
        *events(2, "m"),
        *events(3, "i", kind="image", quantity=2),
        *events(1, "v", kind="voice", quantity=5),
    ]
    assert send(client, batch, headers).get_json()["used"] == 13

    stats = client.get(STATS, headers=headers).get_json()
    assert (stats["used"], stats["by_kind"]) == (13, {"message": 2, "image": 6, "voice": 5})
    assert tenant.counts() == (13, 6, 13)


def test_people_send_batches_too(tenant: Tenant) -> None:
    response = tenant.api.post(BATCH, json={"events": events(2)})
    assert response.status_code == 201 and response.get_json()["used"] == 2
    with tenant.app.app_context():
        assert db.session.scalars(sa.select(UsageRecord.api_key_id)).all() == [None, None]


def test_a_batch_needs_credentials(client: Any) -> None:
    assert_error(client.post(BATCH, json={"events": events(1)}), 401, "authentication_required")
    assert_error(send(client, events(1), key_headers("sk_nope_nothing")), 401, "invalid_api_key")


def test_idempotency_keys_are_per_organization(make_tenant: Any, client: Any) -> None:
    tenant, other = make_tenant(), make_tenant()
    assert send(client, events(2), key_headers(tenant.add_api_key())).status_code == 201
    response = send(client, events(2), key_headers(other.add_api_key()))
    assert response.status_code == 201 and response.get_json()["accepted"] == 2
    assert (tenant.counts(), other.counts()) == ((2, 2, 2), (2, 2, 2))


def test_crossing_a_threshold_in_a_batch_mails_once(
    tenant: Tenant, client: Any, headers: dict[str, str]
) -> None:
    with mail.record_messages() as outbox:
        assert send(client, events(400, "a", quantity=2), headers).status_code == 201
    assert [("80%" in m.subject, m.recipients) for m in outbox] == [(True, [tenant.owner.email])]


def test_the_largest_batch_is_one_write_whatever_its_size(
    tenant: Tenant, client: Any, headers: dict[str, str]
) -> None:
    send(client, events(1, "warm"), headers)  # the first call of a connection prepares
    with statements() as small:
        assert send(client, events(2, "s"), headers).status_code == 201
    with statements() as large:
        response = send(client, events(500, "l", quantity=1), headers)

    assert response.status_code == 201 and response.get_json()["accepted"] == 500
    assert len(large) == len(small), (small, large)
    writes = [s for s in large if "usage_" in s or s.startswith("EXECUTE")]
    assert len(writes) == 1 and writes[0].startswith("EXECUTE usage_record_batch"), writes
    assert tenant.counts() == (503, 503, 503)


@pytest.mark.parametrize(
    ("body", "where"),
    [
        ({"events": []}, ["events"]),
        ({"events": events(501)}, ["events"]),
        ({}, ["events"]),
        ({"events": "message"}, ["events"]),
        ({"events": [*events(3), events(1)[0]]}, ["events", "3", "idempotency_key"]),
        ({"events": [*events(2), {"kind": "message"}]}, ["events", "2", "idempotency_key"]),
        ({"events": [*events(2), {"kind": "message", "idempotency_key": ""}]}, ["events", "2"]),
        ({"events": [*events(1), {"kind": "video", "idempotency_key": "v"}]}, ["events", "1"]),
        ({"events": [*events(1), {**events(1, "q")[0], "quantity": "2"}]}, ["events", "1"]),
        ({"events": [*events(1), {**events(1, "q")[0], "quantity": 0}]}, ["events", "1"]),
        ({"events": [*events(1), {**events(1, "q")[0], "quantity": 1001}]}, ["events", "1"]),
        ({"events": [*events(1), {**events(1, "q")[0], "bot_id": "7"}]}, ["events", "1"]),
        ({"events": [*events(1), {**events(1, "q")[0], "idempotency_key": 7}]}, ["events", "1"]),
        ({"events": [*events(1), {**events(1, "q")[0], "extra": 1}]}, ["events", "1", "extra"]),
        ({"events": [*events(1), "message"]}, ["events", "1"]),
        ({"events": [*events(1), {**events(1, "q")[0], "idempotency_key": "a\x00"}]}, ["events"]),
    ],
)
def test_bad_batches_are_422_with_the_event_index(
    tenant: Tenant, client: Any, headers: dict[str, str], body: dict[str, Any], where: list[str]
) -> None:
    response = client.post(BATCH, json=body, headers=headers)

    errors = assert_error(response, 422, "validation_error")["errors"]["json"]
    for key in where:
        assert key in errors, (where, errors)
        errors = errors[key]
    assert tenant.counts() == (0, 0, 0)


def test_a_huge_batch_is_refused_before_its_events_are_read(
    client: Any, headers: dict[str, str]
) -> None:
    body = {"events": [{"kind": 1}] * 20_000}  # every event wrong: reading them would list all
    errors = assert_error(client.post(BATCH, json=body, headers=headers), 422, "validation_error")
    assert errors["errors"]["json"] == {"events": ["Send from 1 to 500 events."]}


# --- SQLite (`make run`'s default) takes its own path, with the same answers --------


@pytest.fixture
def sqlite_client(tmp_path: Path) -> Iterator[tuple[Any, dict[str, str]]]:
    app = create_app("testing", SQLALCHEMY_DATABASE_URI=f"sqlite:///{tmp_path / 'usage.db'}")
    with app.app_context():
        upgrade()
        user = register_user("sqlite@example.com", "sqlite-password-123", "SQLite")
        organization = create_organization(user, "本地")
        issued = create_api_key(membership_for(user, organization.id), "key")
        db.session.commit()
        secret = issued.secret
    yield app.test_client(), key_headers(secret)
    with app.app_context():
        db.engine.dispose()


def test_sqlite_batches_have_the_same_semantics(sqlite_client: tuple[Any, dict[str, str]]) -> None:
    client, headers = sqlite_client

    first = send(client, events(3), headers)
    mixed = send(client, events(5), headers)
    replay = send(client, events(5), headers)
    too_many = send(client, [*events(2, "big", quantity=999), *events(1, "x")], headers)
    single = client.post(
        RECORD, json={"kind": "message", "idempotency_key": "e-4"}, headers=headers
    )

    assert (first.status_code, mixed.status_code, replay.status_code) == (201, 201, 200)
    assert (mixed.get_json()["accepted"], mixed.get_json()["replayed"]) == (2, 3)
    assert replay.get_json()["used"] == 5 and replay.headers["Idempotent-Replayed"] == "true"
    assert_error(too_many, 429, "quota_exceeded")
    assert too_many.headers["X-Quota-Remaining"] == "995"
    assert single.status_code == 200 and single.get_json()["used"] == 5
    stats = client.get(STATS, headers=headers).get_json()
    assert stats["used"] == 5 and stats["by_kind"]["message"] == 5
