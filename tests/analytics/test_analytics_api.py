"""GET /api/v1/analytics/summary: the page's numbers, for people on plans with `analytics`."""

from __future__ import annotations

from typing import Any

from flask import Flask

from tests.analytics.test_analytics import add_conversation, add_message, utc
from tests.api import assert_error
from tests.usage.conftest import Tenant, key_headers
from webapp.extensions import db

SUMMARY = "/api/v1/analytics/summary"


def test_summary_of_a_range(app: Flask, make_tenant: Any) -> None:
    tenant = make_tenant(plan="pro")
    bot_id = tenant.add_bot()
    with app.app_context():
        conversation = add_conversation(tenant.id, bot_id, utc(2026, 2, 28, 16), handed_off=True)
        add_message(conversation, utc(2026, 2, 28, 16))  # 2026-03-01 00:00 in Shanghai
        add_message(conversation, utc(2026, 3, 2, 13, 30), "fallback", "能开专票吗？")  # 21:30
        add_message(conversation, utc(2026, 3, 2, 13, 31), "unsure", "发票怎么开")
        add_message(conversation, utc(2026, 3, 2, 13, 32), "picked", "可以开发票吗？")
        db.session.commit()

    response = tenant.api.get(SUMMARY, query_string={"from": "2026-03-01", "to": "2026-03-02"})

    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert (body["from"], body["to"], body["bot_id"]) == ("2026-03-01", "2026-03-02", None)
    assert body["messages"] == 4
    assert body["outcomes"] == {
        "answered": 1,
        "unsure": 1,
        "picked": 1,
        "fallback": 1,
        "asked_for_human": 0,
        "agent": 0,
    }
    assert body["answered_share"] == 0.25
    assert (body["questions"], body["resolution_rate"], body["pick_rate"]) == (3, 2 / 3, 1.0)
    assert (body["conversations"], body["handoffs"], body["handoff_rate"]) == (1, 1, 1.0)
    assert body["days"] == [
        {
            "day": "2026-03-01",
            "messages": 1,
            "answered": 1,
            "questions": 1,
            "unsure": 0,
            "picked": 0,
            "resolved": 1,
            "resolution_rate": 1.0,
            "pick_rate": None,
            "conversations": 1,
            "handoffs": 1,
            "handoff_rate": 1.0,
        },
        {
            "day": "2026-03-02",
            "messages": 3,
            "answered": 0,
            "questions": 2,
            "unsure": 1,
            "picked": 1,
            "resolved": 1,
            "resolution_rate": 0.5,
            "pick_rate": 1.0,
            "conversations": 0,
            "handoffs": 0,
            "handoff_rate": None,
        },
    ]
    assert len(body["hours"]) == 24 and body["hours"][0] == 1 and body["hours"][21] == 3
    assert body["unanswered"] == [{"text": "能开专票吗？", "count": 1}]
    only_bot = tenant.api.get(
        SUMMARY, query_string={"from": "2026-03-01", "to": "2026-03-01", "bot_id": bot_id}
    ).get_json()
    assert only_bot["bot_id"] == bot_id and only_bot["messages"] == 1


def test_summary_defaults_to_the_last_30_days(app: Flask, make_tenant: Any) -> None:
    tenant = make_tenant(plan="enterprise")
    body = tenant.api.get(SUMMARY).get_json()
    assert len(body["days"]) == 30 and body["messages"] == 0
    assert body["answered_share"] is None and body["handoff_rate"] is None
    assert body["resolution_rate"] is None and body["pick_rate"] is None
    week = tenant.api.get(SUMMARY, query_string={"to": "2026-03-07"}).get_json()
    assert (week["from"], week["to"]) == ("2026-02-06", "2026-03-07")


def test_summary_refusals(app: Flask, tenant: Tenant, make_tenant: Any) -> None:
    assert_error(tenant.api.get(SUMMARY), 403, "feature_not_in_plan")

    tenant.set_plan("pro")
    backwards = tenant.api.get(SUMMARY, query_string={"from": "2026-03-02", "to": "2026-03-01"})
    assert_error(backwards, 422, "validation_error")
    too_long = tenant.api.get(SUMMARY, query_string={"from": "2025-01-01", "to": "2026-03-01"})
    assert_error(too_long, 422, "validation_error")
    ancient = tenant.api.get(SUMMARY, query_string={"to": "0001-01-01"})
    assert_error(ancient, 422, "validation_error")

    stranger = make_tenant(plan="pro")
    their_bot = stranger.add_bot()
    assert_error(tenant.api.get(SUMMARY, query_string={"bot_id": their_bot}), 404, "bot_not_found")

    key = tenant.add_api_key()
    assert_error(
        app.test_client().get(SUMMARY, headers=key_headers(key)), 401, "api_key_not_allowed"
    )
