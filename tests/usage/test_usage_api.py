"""POST /usage/record, GET /usage/stats and GET /usage/history."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from tests.api import add_member, assert_error
from tests.usage.conftest import HISTORY, RECORD, STATS, Tenant, key_headers
from webapp.billing.periods import SHANGHAI, month_start, next_month_start
from webapp.db import utcnow
from webapp.extensions import db, mail
from webapp.usage.models import UsageRecord


def today() -> date:
    return utcnow().astimezone(SHANGHAI).date()


def shanghai_noon(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, 12, tzinfo=SHANGHAI).astimezone(UTC)


# --- recording --------------------------------------------------------------


def test_record_counts_and_answers_with_the_quota(tenant: Tenant) -> None:
    response = tenant.api.post(RECORD, json={"kind": "message"})

    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    now = utcnow()
    assert body == {
        "used": 1,
        "limit": 1000,
        "remaining": 999,
        "period_start": month_start(now).isoformat(),
        "period_end": next_month_start(now).isoformat(),
    }
    assert response.headers["X-Quota-Limit"] == "1000"
    assert response.headers["X-Quota-Remaining"] == "999"
    reset = datetime.fromisoformat(response.headers["X-Quota-Reset"].replace("Z", "+00:00"))
    assert reset == next_month_start(now)
    assert response.headers["X-Quota-Reset"].endswith("Z")
    assert reset.astimezone(SHANGHAI).day == 1 and reset.astimezone(SHANGHAI).hour == 0
    assert "Idempotent-Replayed" not in response.headers

    second = tenant.api.post(RECORD, json={"kind": "message", "quantity": 5})
    assert second.status_code == 201
    assert (second.get_json()["used"], second.headers["X-Quota-Remaining"]) == (6, "994")
    assert tenant.counts() == (6, 2, 6)


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"kind": "message", "quantity": 0}, "quantity"),
        ({"kind": "message", "quantity": 1001}, "quantity"),
        ({"kind": "message", "quantity": -1}, "quantity"),
        ({"kind": "message", "quantity": "x"}, "quantity"),
        ({"kind": "message", "quantity": "5"}, "quantity"),
        ({"kind": "message", "quantity": 1.5}, "quantity"),
        ({"kind": "message", "quantity": None}, "quantity"),
        ({"kind": "video"}, "kind"),
        ({"kind": ""}, "kind"),
        ({}, "kind"),
        ({"kind": "message", "unexpected": 1}, "unexpected"),
        ({"kind": "message", "bot_id": "abc"}, "bot_id"),
        ({"kind": "message", "bot_id": 0}, "bot_id"),
        ({"kind": "message", "bot_id": 2**40}, "bot_id"),
        ({"kind": "message", "idempotency_key": ""}, "idempotency_key"),
        ({"kind": "message", "idempotency_key": "k" * 256}, "idempotency_key"),
        ({"kind": "message", "idempotency_key": "a\x00b"}, "idempotency_key"),
    ],
)
def test_record_refuses_invalid_input(tenant: Tenant, payload: dict[str, Any], field: str) -> None:
    body = assert_error(tenant.api.post(RECORD, json=payload), 422, "validation_error")
    assert field in body["errors"]["json"], body
    assert tenant.counts() == (0, 0, 0)


def test_record_accepts_the_largest_quantity(tenant: Tenant) -> None:
    response = tenant.api.post(RECORD, json={"kind": "message", "quantity": 1000})
    assert response.status_code == 201
    assert response.get_json()["remaining"] == 0


def test_over_quota_is_429_and_records_nothing(tenant: Tenant) -> None:
    assert tenant.api.post(RECORD, json={"kind": "message", "quantity": 995}).status_code == 201

    refused = tenant.api.post(RECORD, json={"kind": "message", "quantity": 6})
    body = assert_error(refused, 429, "quota_exceeded")
    assert "1000" in body["message"]
    assert refused.headers["X-Quota-Limit"] == "1000"
    assert refused.headers["X-Quota-Remaining"] == "5"
    assert refused.headers["X-Quota-Reset"] == next_month_start(utcnow()).strftime(
        "%Y-%m-%dT%H:%M:%SZ"
    )
    assert 0 < int(refused.headers["Retry-After"]) <= 31 * 24 * 3600
    assert tenant.counts() == (995, 1, 995)

    # What still fits is taken; then nothing more.
    fits = tenant.api.post(RECORD, json={"kind": "message", "quantity": 5})
    assert fits.status_code == 201 and fits.get_json()["remaining"] == 0
    assert_error(tenant.api.post(RECORD, json={"kind": "message"}), 429, "quota_exceeded")
    assert tenant.counts() == (1000, 2, 1000)


def test_quota_is_per_calendar_month(tenant: Tenant) -> None:
    last_month = month_start(utcnow()) - timedelta(days=3)
    tenant.record(quantity=1000, at=last_month)
    response = tenant.api.post(RECORD, json={"kind": "message"})
    assert response.status_code == 201
    assert response.get_json()["used"] == 1


@pytest.mark.parametrize("kind", ["image", "voice"])
def test_kinds_outside_the_plan_are_403(tenant: Tenant, kind: str) -> None:
    assert_error(tenant.api.post(RECORD, json={"kind": kind}), 403, "feature_not_in_plan")
    assert tenant.counts() == (0, 0, 0)

    tenant.set_plan("pro")
    response = tenant.api.post(RECORD, json={"kind": kind, "quantity": 2})
    assert response.status_code == 201
    assert response.get_json()["limit"] == 50000


def test_unlimited_plan_records_everything(make_tenant: Any) -> None:
    tenant = make_tenant(plan="enterprise")
    for _ in range(3):
        response = tenant.api.post(RECORD, json={"kind": "voice", "quantity": 1000})
        assert response.status_code == 201
    body = response.get_json()
    assert (body["used"], body["limit"], body["remaining"]) == (3000, None, None)
    assert response.headers["X-Quota-Limit"] == "unlimited"
    assert response.headers["X-Quota-Remaining"] == "unlimited"
    assert response.headers["X-Quota-Reset"].endswith("Z")
    assert tenant.counts() == (3000, 3, 3000)

    stats = tenant.api.get(STATS).get_json()
    assert (stats["used"], stats["limit"], stats["remaining"], stats["percent_used"]) == (
        3000,
        None,
        None,
        None,
    )
    assert stats["by_kind"]["voice"] == 3000
    assert stats["bots"]["limit"] is None


# --- idempotency ------------------------------------------------------------


def test_idempotency_key_in_the_body_counts_once(tenant: Tenant) -> None:
    payload = {"kind": "message", "quantity": 3, "idempotency_key": "msg-42"}
    first = tenant.api.post(RECORD, json=payload)
    assert first.status_code == 201
    assert tenant.api.post(RECORD, json={"kind": "message"}).status_code == 201

    again = tenant.api.post(RECORD, json=payload)

    assert again.status_code == 200
    assert again.get_json() == first.get_json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.headers["X-Quota-Remaining"] == first.headers["X-Quota-Remaining"] == "997"
    assert tenant.counts() == (4, 2, 4)


def test_idempotency_key_header_counts_once(tenant: Tenant) -> None:
    headers = {"Idempotency-Key": "b7c1e1c2-2f7e-4a43-9a55-0b0b1c1d2e3f"}
    first = tenant.api.post(RECORD, json={"kind": "message"}, headers=headers)
    again = tenant.api.post(RECORD, json={"kind": "message"}, headers=headers)
    # The header and the body name the same key.
    body_key = tenant.api.post(
        RECORD, json={"kind": "message", "idempotency_key": headers["Idempotency-Key"]}
    )

    assert (first.status_code, again.status_code, body_key.status_code) == (201, 200, 200)
    assert first.get_json() == again.get_json() == body_key.get_json()
    assert tenant.counts() == (1, 1, 1)
    with tenant.app.app_context():
        key = db.session.scalar(sa.select(UsageRecord.idempotency_key))
    assert key == headers["Idempotency-Key"]


def test_idempotency_key_header_and_body_must_agree(tenant: Tenant) -> None:
    response = tenant.api.post(
        RECORD,
        json={"kind": "message", "idempotency_key": "a"},
        headers={"Idempotency-Key": "b"},
    )
    assert_error(response, 422, "validation_error")
    same = tenant.api.post(
        RECORD, json={"kind": "message", "idempotency_key": "a"}, headers={"Idempotency-Key": "a"}
    )
    assert same.status_code == 201
    assert_error(
        tenant.api.post(RECORD, json={"kind": "message"}, headers={"Idempotency-Key": ""}),
        422,
        "validation_error",
    )


def test_a_refused_call_is_not_remembered_by_its_key(tenant: Tenant) -> None:
    tenant.api.post(RECORD, json={"kind": "message", "quantity": 999})
    payload = {"kind": "message", "quantity": 2, "idempotency_key": "retry-me"}
    assert_error(tenant.api.post(RECORD, json=payload), 429, "quota_exceeded")

    retried = tenant.api.post(RECORD, json={**payload, "quantity": 1})
    assert retried.status_code == 201
    assert retried.get_json()["used"] == 1000


def test_idempotency_keys_are_per_organization(make_tenant: Any) -> None:
    one, other = make_tenant(), make_tenant()
    payload = {"kind": "message", "idempotency_key": "same-key"}
    assert one.api.post(RECORD, json=payload).status_code == 201
    assert other.api.post(RECORD, json=payload).status_code == 201
    assert one.counts() == other.counts() == (1, 1, 1)


# --- who is calling ---------------------------------------------------------


def test_api_key_records_for_its_organization(tenant: Tenant, client: Any) -> None:
    secret = tenant.add_api_key()
    bearer = client.post(RECORD, json={"kind": "message"}, headers=key_headers(secret))
    x_api_key = client.post(RECORD, json={"kind": "message"}, headers={"X-API-Key": secret})

    assert (bearer.status_code, x_api_key.status_code) == (201, 201)
    assert x_api_key.get_json()["used"] == 2
    stats = client.get(STATS, headers={"X-API-Key": secret})
    assert stats.status_code == 200 and stats.get_json()["used"] == 2
    with tenant.app.app_context():
        assert db.session.scalars(sa.select(UsageRecord.api_key_id)).all() != [None, None]


def test_authentication_is_required(client: Any) -> None:
    for method, path in (("POST", RECORD), ("GET", STATS), ("GET", HISTORY)):
        response = client.open(path, method=method, json={"kind": "message"})
        assert response.status_code == 401, path
    bad_key = client.post(RECORD, json={"kind": "message"}, headers=key_headers("sk_nope_nope"))
    assert_error(bad_key, 401, "invalid_api_key")


def test_jwt_caller_picks_the_organization(app: Flask, make_tenant: Any, make_user: Any) -> None:
    person = make_user()
    first, second = make_tenant(owner=person), make_tenant(owner=person)
    api = first.api  # logged in as `person`, who owns both

    ambiguous = api.post(RECORD, json={"kind": "message"})
    assert_error(ambiguous, 400, "organization_required")

    response = api.post(
        RECORD, json={"kind": "message"}, headers={"X-Organization-ID": str(second.id)}
    )
    assert response.status_code == 201
    assert (first.counts(), second.counts()) == ((0, 0, 0), (1, 1, 1))
    by_query = api.get(f"{STATS}?organization_id={second.id}")
    assert by_query.get_json()["used"] == 1

    stranger = make_tenant()
    assert_error(api.get(STATS, headers={"X-Organization-ID": str(stranger.id)}), 404, "not_found")
    assert_error(api.get(STATS, headers={"X-Organization-ID": "abc"}), 422, "validation_error")

    # Any member may record and read, not only managers.
    member = make_user()
    add_member(app, first.id, member, "member")
    from tests.conftest import ApiClient

    member_api = ApiClient(app.test_client()).login(member.email)
    assert member_api.post(RECORD, json={"kind": "message"}).status_code == 201
    assert member_api.get(STATS).get_json()["used"] == 1


def test_bot_bound_key_implies_its_bot(make_tenant: Any, client: Any) -> None:
    tenant = make_tenant(plan="pro")
    bot, other_bot = tenant.add_bot("前台"), tenant.add_bot("售后")
    secret = tenant.add_api_key(bot_id=bot)

    implied = client.post(RECORD, json={"kind": "message"}, headers=key_headers(secret))
    explicit = client.post(
        RECORD, json={"kind": "message", "bot_id": bot}, headers=key_headers(secret)
    )
    assert (implied.status_code, explicit.status_code) == (201, 201)
    with tenant.app.app_context():
        assert db.session.scalars(sa.select(UsageRecord.bot_id)).all() == [bot, bot]

    mismatch = client.post(
        RECORD, json={"kind": "message", "bot_id": other_bot}, headers=key_headers(secret)
    )
    assert_error(mismatch, 403, "bot_mismatch")
    assert_error(
        client.get(f"{HISTORY}?bot_id={other_bot}", headers=key_headers(secret)),
        403,
        "bot_mismatch",
    )
    history = client.get(HISTORY, headers=key_headers(secret)).get_json()
    assert history["bot_id"] == bot and history["series"][-1]["total"] == 2
    assert tenant.counts() == (2, 2, 2)


def test_disabled_bot_is_refused(make_tenant: Any) -> None:
    tenant = make_tenant(plan="pro")
    bot = tenant.add_bot(enabled=False)
    assert_error(
        tenant.api.post(RECORD, json={"kind": "message", "bot_id": bot}), 403, "bot_disabled"
    )
    assert tenant.counts() == (0, 0, 0)


# --- tenant isolation -------------------------------------------------------


def test_organizations_never_see_each_other(make_tenant: Any, client: Any) -> None:
    mine, theirs = make_tenant(), make_tenant()
    their_bot = theirs.add_bot()
    their_key = theirs.add_api_key()
    my_key = mine.add_api_key()
    assert (
        client.post(
            RECORD, json={"kind": "message", "quantity": 7}, headers=key_headers(their_key)
        ).status_code
        == 201
    )

    stats = client.get(STATS, headers=key_headers(my_key)).get_json()
    assert stats["used"] == 0 and stats["bots"]["used"] == 0
    history = client.get(HISTORY, headers=key_headers(my_key)).get_json()
    assert sum(point["total"] for point in history["series"]) == 0

    for response in (
        client.post(
            RECORD, json={"kind": "message", "bot_id": their_bot}, headers=key_headers(my_key)
        ),
        client.get(f"{HISTORY}?bot_id={their_bot}", headers=key_headers(my_key)),
        mine.api.get(f"{HISTORY}?bot_id={their_bot}"),
    ):
        assert_error(response, 404, "bot_not_found")
    # A key never reaches another organization, whatever header it sends.
    crossed = client.get(
        STATS, headers={**key_headers(my_key), "X-Organization-ID": str(theirs.id)}
    )
    assert crossed.get_json()["used"] == 0
    assert mine.counts() == (0, 0, 0) and theirs.counts() == (7, 1, 7)


# --- stats ------------------------------------------------------------------


def test_stats_by_kind_with_bots(make_tenant: Any) -> None:
    tenant = make_tenant(plan="pro")
    bot = tenant.add_bot()
    tenant.add_bot("第二个")
    for kind, quantity in (("message", 3), ("image", 2), ("voice", 1), ("message", 4)):
        response = tenant.api.post(RECORD, json={"kind": kind, "quantity": quantity, "bot_id": bot})
        assert response.status_code == 201
    tenant.record(quantity=50, at=month_start(utcnow()) - timedelta(days=1))  # last month

    stats = tenant.api.get(STATS).get_json()

    now = utcnow()
    assert stats == {
        "plan": {"code": "pro", "name": stats["plan"]["name"], "name_en": "Pro"},
        "period_start": month_start(now).isoformat(),
        "period_end": next_month_start(now).isoformat(),
        "used": 10,
        "limit": 50000,
        "remaining": 49990,
        "percent_used": 0,
        "by_kind": {"message": 7, "image": 2, "voice": 1},
        "kinds_in_plan": ["message", "image", "voice"],
        "bots": {"used": 2, "limit": 10},
    }


def test_stats_of_a_new_free_organization(tenant: Tenant) -> None:
    stats = tenant.api.get(STATS).get_json()
    assert stats["plan"]["code"] == "free"
    assert (stats["used"], stats["limit"], stats["remaining"], stats["percent_used"]) == (
        0,
        1000,
        1000,
        0,
    )
    assert stats["by_kind"] == {"message": 0, "image": 0, "voice": 0}
    assert stats["kinds_in_plan"] == ["message"]
    assert stats["bots"] == {"used": 0, "limit": 1}


# --- history ----------------------------------------------------------------


def test_history_fills_missing_days_with_zeros(make_tenant: Any) -> None:
    tenant = make_tenant(plan="pro")
    end = today()
    start = end - timedelta(days=6)
    tenant.record("message", 4, at=shanghai_noon(start))
    tenant.record("image", 2, at=shanghai_noon(start + timedelta(days=2)))
    assert tenant.api.post(RECORD, json={"kind": "voice"}).status_code == 201

    response = tenant.api.get(HISTORY, query_string={"from": str(start), "to": str(end)})

    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert (body["from"], body["to"], body["granularity"], body["bot_id"]) == (
        str(start),
        str(end),
        "day",
        None,
    )
    series = body["series"]
    assert [point["period"] for point in series] == [
        str(start + timedelta(days=i)) for i in range(7)
    ]
    assert series[0] == {"period": str(start), "message": 4, "image": 0, "voice": 0, "total": 4}
    assert series[2]["image"] == 2 and series[2]["total"] == 2
    assert series[-1]["voice"] == 1
    assert [point["total"] for point in series] == [4, 0, 2, 0, 0, 0, 1]


def test_history_by_month_and_by_bot(make_tenant: Any) -> None:
    tenant = make_tenant(plan="pro")
    bot = tenant.add_bot()
    tenant.record("message", 10, at=datetime(2025, 1, 15, 4, tzinfo=UTC))
    tenant.record("message", 5, at=datetime(2025, 1, 31, 17, tzinfo=UTC), bot_id=bot)  # Feb 1st
    tenant.record("image", 3, at=datetime(2025, 3, 2, tzinfo=UTC), bot_id=bot)

    months = tenant.api.get(
        HISTORY, query_string={"from": "2024-12-20", "to": "2025-04-10", "granularity": "month"}
    ).get_json()
    assert months["from"] == "2024-12-01" and months["granularity"] == "month"
    assert [(p["period"], p["message"], p["image"], p["total"]) for p in months["series"]] == [
        ("2024-12-01", 0, 0, 0),
        ("2025-01-01", 10, 0, 10),
        ("2025-02-01", 5, 0, 5),  # 17:00 UTC on Jan 31st is February 1st in Shanghai
        ("2025-03-01", 0, 3, 3),
        ("2025-04-01", 0, 0, 0),
    ]

    only_bot = tenant.api.get(
        HISTORY,
        query_string={
            "from": "2025-01-01",
            "to": "2025-03-31",
            "granularity": "month",
            "bot_id": bot,
        },
    ).get_json()
    assert only_bot["bot_id"] == bot
    assert [p["total"] for p in only_bot["series"]] == [0, 5, 3]


def test_history_defaults_to_the_last_30_days_or_12_months(tenant: Tenant) -> None:
    days = tenant.api.get(HISTORY).get_json()
    assert len(days["series"]) == 30
    assert days["to"] == str(today()) and days["series"][-1]["period"] == str(today())

    months = tenant.api.get(HISTORY, query_string={"granularity": "month"}).get_json()
    assert len(months["series"]) == 12
    assert months["series"][-1]["period"] == str(today().replace(day=1))


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"from": "2025-13-01"}, "from"),
        ({"to": "yesterday"}, "to"),
        ({"from": "2025-02-30"}, "from"),
        ({"granularity": "week"}, "granularity"),
        ({"bot_id": "x"}, "bot_id"),
        ({"bot_id": "0"}, "bot_id"),
    ],
)
def test_history_refuses_bad_parameters(tenant: Tenant, query: dict[str, str], field: str) -> None:
    body = assert_error(tenant.api.get(HISTORY, query_string=query), 422, "validation_error")
    assert field in body["errors"]["query"], body


@pytest.mark.parametrize(
    "query",
    [
        {"from": "2025-03-02", "to": "2025-03-01"},
        {"from": "2024-01-01", "to": "2025-02-04"},  # 401 days
        {"from": "2022-01-01", "to": "2025-01-01", "granularity": "month"},  # 37 months
    ],
)
def test_history_refuses_bad_ranges(tenant: Tenant, query: dict[str, str]) -> None:
    assert_error(tenant.api.get(HISTORY, query_string=query), 422, "validation_error")


@pytest.mark.parametrize(
    "query",
    [
        {"from": "2024-01-01", "to": "2025-02-03"},  # 400 days
        {"from": "2022-02-01", "to": "2025-01-31", "granularity": "month"},  # 36 months
        {"from": "9999-12-01", "to": "9999-12-31", "granularity": "month"},
        {"from": "9999-12-01", "to": "9999-12-31"},
        {"to": "0001-01-05"},
        {"to": "0001-03-05", "granularity": "month"},
    ],
)
def test_history_accepts_the_edges(tenant: Tenant, query: dict[str, str]) -> None:
    response = tenant.api.get(HISTORY, query_string=query)
    assert response.status_code == 200, response.get_json()


# --- quota mails ------------------------------------------------------------


def test_quota_mails_at_80_and_100_percent_once_each(
    app: Flask, tenant: Tenant, make_user: Any
) -> None:
    admin, member = make_user(), make_user()
    add_member(app, tenant.id, admin, "admin")
    add_member(app, tenant.id, member, "member")

    def record(quantity: int) -> list[Any]:
        with mail.record_messages() as outbox:
            response = tenant.api.post(RECORD, json={"kind": "message", "quantity": quantity})
            assert response.status_code in (201, 429)
        return list(outbox)

    assert record(799) == []
    crossed = record(1)  # 800: 80%
    assert sorted(m.recipients[0] for m in crossed) == sorted([tenant.owner.email, admin.email])
    assert all("80%" in m.subject for m in crossed)
    assert "800" in crossed[0].body and "1000" in crossed[0].body
    assert "/plans" in crossed[0].body
    assert record(100) == []  # still above 80%, below 100%: nothing new

    full = record(100)  # 1000: 100%
    assert sorted(m.recipients[0] for m in full) == sorted([tenant.owner.email, admin.email])
    assert all("100%" in m.subject for m in full)
    assert record(1) == []  # refused (429): no mail either


def test_one_call_crossing_both_thresholds_sends_both(tenant: Tenant) -> None:
    with mail.record_messages() as outbox:
        assert (
            tenant.api.post(RECORD, json={"kind": "message", "quantity": 1000}).status_code == 201
        )
    subjects = [message.subject for message in outbox]
    assert len(subjects) == 2
    assert any("80%" in s for s in subjects) and any("100%" in s for s in subjects)


def test_refused_calls_send_no_mail(tenant: Tenant) -> None:
    tenant.api.post(RECORD, json={"kind": "message", "quantity": 700})
    with mail.record_messages() as outbox:
        assert_error(
            tenant.api.post(RECORD, json={"kind": "message", "quantity": 400}),
            429,
            "quota_exceeded",
        )
    assert outbox == []
