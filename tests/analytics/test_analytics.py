"""Analytics: numbers on known data, Shanghai day and hour boundaries, filters, the plan gate."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from tests.conftest import sqlite_owner
from tests.conversations import start
from tests.conversations.test_conversations_api import bot_with_faq, say
from tests.kb import offer_only_when_fairly_sure
from tests.usage.conftest import Tenant, key_headers
from webapp.analytics import services
from webapp.analytics.services import Analytics, UnansweredQuestion
from webapp.billing.models import Subscription
from webapp.billing.periods import SHANGHAI
from webapp.billing.services import plan_by_code
from webapp.bots.services import create_bot
from webapp.conversations.models import Conversation, Message, Outcome
from webapp.db import utcnow
from webapp.errors import AppError
from webapp.extensions import db

MARCH_1, MARCH_3 = date(2026, 3, 1), date(2026, 3, 3)
NO_OUTCOMES = {outcome.value: 0 for outcome in Outcome}


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


def add_conversation(
    organization_id: int, bot_id: int, at: datetime, *, handed_off: bool = False
) -> int:
    """A conversation started at `at` (call inside an app context; the caller commits)."""
    conversation = Conversation(
        organization_id=organization_id,
        bot_id=bot_id,
        created_at=at,
        last_message_at=at,
        handoff_at=at if handed_off else None,
        status="needs_human" if handed_off else "open",
    )
    db.session.add(conversation)
    db.session.flush()
    return conversation.id


def add_message(
    conversation_id: int,
    at: datetime,
    outcome: str | None = "answered",
    text: str = "你好",
    *,
    role: str = "customer",
    kind: str = "text",
) -> None:
    conversation = db.session.get(Conversation, conversation_id)
    assert conversation is not None
    db.session.add(
        Message(
            conversation_id=conversation_id,
            organization_id=conversation.organization_id,
            bot_id=conversation.bot_id,
            role=role,
            kind=kind,
            text=text,
            outcome=outcome,
            created_at=at,
        )
    )
    db.session.flush()


def numbers(
    app: Flask, organization_id: int, start: date, end: date, bot_id: int | None = None
) -> Analytics:
    with app.app_context():
        return services.analytics(organization_id, start, end, bot_id)


def test_days_and_hours_are_shanghai_ones_with_zero_days(app: Flask, make_tenant: Any) -> None:
    tenant = make_tenant(plan="pro")
    bot_id = tenant.add_bot()
    with app.app_context():
        conversation = add_conversation(tenant.id, bot_id, utc(2026, 2, 28, 12))
        add_message(conversation, utc(2026, 2, 28, 15, 59, 59))  # Feb 28 23:59:59: before
        add_message(conversation, utc(2026, 2, 28, 16))  # Mar 1 00:00, the first instant
        add_message(conversation, utc(2026, 3, 1, 15, 59, 59), "fallback", "能便宜点吗")  # 23:59
        add_message(conversation, utc(2026, 3, 1, 15, 59, 59), None, "机器人回复", role="bot")
        add_message(conversation, utc(2026, 3, 3, 2, 30), "agent")  # Mar 3 10:30
        add_message(conversation, utc(2026, 3, 3, 16))  # Mar 4 00:00: after
        db.session.commit()

    result = numbers(app, tenant.id, MARCH_1, MARCH_3)

    assert [(d.day, d.messages, d.answered) for d in result.days] == [
        (date(2026, 3, 1), 2, 1),
        (date(2026, 3, 2), 0, 0),
        (date(2026, 3, 3), 1, 0),
    ]
    assert result.outcomes == {**NO_OUTCOMES, "answered": 1, "fallback": 1, "agent": 1}
    assert result.messages == 3
    assert result.answered_share == pytest.approx(1 / 3)
    assert len(result.hours) == 24 and sum(result.hours) == 3
    assert (result.hours[0], result.hours[10], result.hours[23]) == (1, 1, 1)
    assert result.unanswered == [UnansweredQuestion("能便宜点吗", 1)]


def test_handoff_rate_counts_the_conversations_started_in_the_range(
    app: Flask, make_tenant: Any
) -> None:
    tenant = make_tenant(plan="enterprise")
    bot_id = tenant.add_bot()
    with app.app_context():
        add_conversation(tenant.id, bot_id, utc(2026, 2, 28, 15), handed_off=True)  # Feb 28
        add_conversation(tenant.id, bot_id, utc(2026, 2, 28, 16), handed_off=True)
        for hour in (1, 2, 3):
            add_conversation(tenant.id, bot_id, utc(2026, 3, 2, hour))
        add_conversation(tenant.id, bot_id, utc(2026, 3, 3, 16), handed_off=True)  # Mar 4
        db.session.commit()

    result = numbers(app, tenant.id, MARCH_1, MARCH_3)

    assert (result.conversations, result.handoffs) == (4, 1)
    assert result.handoff_rate == pytest.approx(0.25)
    assert result.messages == 0 and result.answered_share is None
    assert [d.messages for d in result.days] == [0, 0, 0]
    empty = numbers(app, tenant.id, date(2026, 1, 1), date(2026, 1, 1))
    assert empty.handoff_rate is None and empty.conversations == 0


def test_resolution_pick_and_handoff_rates_per_day(app: Flask, make_tenant: Any) -> None:
    tenant = make_tenant(plan="pro")
    bot_id = tenant.add_bot()
    with app.app_context():
        first = add_conversation(tenant.id, bot_id, utc(2026, 3, 1, 2))
        for outcome in ("answered", "unsure", "picked", "unsure", "fallback", "agent"):
            add_message(first, utc(2026, 3, 1, 3), outcome)
        second = add_conversation(tenant.id, bot_id, utc(2026, 3, 1, 4), handed_off=True)
        add_message(second, utc(2026, 3, 1, 4), "asked_for_human")
        third = add_conversation(tenant.id, bot_id, utc(2026, 3, 3, 4))
        for outcome in ("unsure", "picked", "picked"):  # two picks from one offer
            add_message(third, utc(2026, 3, 3, 4), outcome)
        db.session.commit()

    result = numbers(app, tenant.id, MARCH_1, MARCH_3)

    march_1, march_2, march_3 = result.days
    # Questions: answered, unsure x2, fallback, asked_for_human (picks answer earlier ones).
    assert (march_1.questions, march_1.resolved, march_1.unsure, march_1.picked) == (5, 2, 2, 1)
    assert march_1.resolution_rate == pytest.approx(2 / 5)
    assert march_1.pick_rate == pytest.approx(1 / 2)
    assert (march_1.conversations, march_1.handoffs) == (2, 1)
    assert march_1.handoff_rate == pytest.approx(1 / 2)
    assert (march_2.resolution_rate, march_2.pick_rate, march_2.handoff_rate) == (None,) * 3
    assert (march_3.resolution_rate, march_3.pick_rate, march_3.handoff_rate) == (1, 1, 0)
    assert result.questions == 6
    assert result.resolution_rate == pytest.approx(4 / 6)  # answered 1, picked 3
    assert result.pick_rate == pytest.approx(3 / 3)
    assert result.outcomes["asked_for_human"] == 1


def test_top_unanswered_questions_are_grouped_by_normalised_text(
    app: Flask, make_tenant: Any
) -> None:
    tenant = make_tenant(plan="pro")
    bot_id = tenant.add_bot()
    at = utc(2026, 3, 2, 4)
    with app.app_context():
        conversation = add_conversation(tenant.id, bot_id, at)
        for text in ("怎么退款？", "怎么退款?", " 怎么 退款 ", "怎么退款"):
            add_message(conversation, at, "fallback", text)
        for text in ("Where is my ORDER?", "where is my order"):
            add_message(conversation, at, "fallback", text)
        for i in range(12):  # twelve more questions, asked once each
            add_message(conversation, at, "fallback", f"问题{i:02d}")
        add_message(conversation, at, "answered", "怎么退款")  # answered: not counted
        add_message(conversation, at, "fallback", "", kind="image")  # no text to show
        db.session.commit()

    unanswered = numbers(app, tenant.id, MARCH_1, MARCH_3).unanswered

    assert len(unanswered) == services.TOP_UNANSWERED
    assert unanswered[0].count == 4 and unanswered[0].text.replace(" ", "")[:4] == "怎么退款"
    assert unanswered[1].count == 2 and unanswered[1].text.lower().startswith("where is my order")
    assert [q.count for q in unanswered[2:]] == [1] * 8
    assert [q.text for q in unanswered[2:]] == [f"问题{i:02d}" for i in range(8)]


def test_per_bot_filter_and_tenant_isolation(app: Flask, make_tenant: Any) -> None:
    tenant, stranger = make_tenant(plan="pro"), make_tenant(plan="pro")
    front, back = tenant.add_bot("前台"), tenant.add_bot("售后")
    their_bot = stranger.add_bot()
    at = utc(2026, 3, 2, 4)
    with app.app_context():
        for bot_id, count in ((front, 2), (back, 3)):
            conversation = add_conversation(tenant.id, bot_id, at, handed_off=bot_id == back)
            for _ in range(count):
                add_message(conversation, at, "fallback", "有优惠吗")
        theirs = add_conversation(stranger.id, their_bot, at, handed_off=True)
        for _ in range(7):
            add_message(theirs, at, "fallback", "有优惠吗")
        db.session.commit()

    everything = numbers(app, tenant.id, MARCH_1, MARCH_3)
    only_front = numbers(app, tenant.id, MARCH_1, MARCH_3, front)

    assert everything.messages == 5 and everything.unanswered[0].count == 5
    assert (everything.conversations, everything.handoffs) == (2, 1)
    assert only_front.messages == 2 and only_front.unanswered[0].count == 2
    assert (only_front.conversations, only_front.handoffs) == (1, 0)
    assert numbers(app, stranger.id, MARCH_1, MARCH_3).messages == 7
    with pytest.raises(AppError) as not_found:
        numbers(app, tenant.id, MARCH_1, MARCH_3, their_bot)
    assert not_found.value.status == 404


def test_free_plan_has_no_analytics(app: Flask, tenant: Tenant) -> None:
    with pytest.raises(AppError) as refused:
        numbers(app, tenant.id, MARCH_1, MARCH_3)
    assert (refused.value.status, refused.value.error) == (403, "feature_not_in_plan")


def test_ranges_must_be_forwards_and_at_most_a_year(app: Flask, make_tenant: Any) -> None:
    tenant = make_tenant(plan="pro")
    for first, last in ((MARCH_3, MARCH_1), (date(2025, 3, 1), date(2026, 3, 2))):
        with pytest.raises(AppError) as refused:
            numbers(app, tenant.id, first, last)
        assert (refused.value.status, refused.value.error) == (422, "validation_error")
    assert len(numbers(app, tenant.id, date(2025, 3, 2), date(2026, 3, 2)).days) == 366


def test_default_range_is_the_last_30_shanghai_days() -> None:
    assert services.default_range(date(2026, 3, 1)) == (date(2026, 1, 31), date(2026, 3, 1))
    today = utcnow().astimezone(SHANGHAI).date()
    assert services.default_range() == (today - timedelta(days=29), today)


def test_numbers_of_real_conversations(app: Flask, make_tenant: Any) -> None:
    tenant = make_tenant(plan="pro")
    bot_id, key, _entries = bot_with_faq(tenant)
    offer_only_when_fairly_sure(app, bot_id)
    client = app.test_client()
    answered = start(client, key_headers(key))
    assert say(client, answered["id"], "我想退货，流程是怎样的", key).status_code == 201
    handed_off = start(client, key_headers(key))
    response = say(client, handed_off["id"], "你们的总部在哪个城市", key)
    assert response.get_json()["handoff"] is True
    today = utcnow().astimezone(SHANGHAI).date()

    result = numbers(app, tenant.id, today, today, bot_id)

    assert result.outcomes == {**NO_OUTCOMES, "answered": 1, "fallback": 1}
    assert result.answered_share == pytest.approx(0.5)
    assert (result.conversations, result.handoffs) == (2, 1)
    assert result.unanswered == [UnansweredQuestion("你们的总部在哪个城市", 1)]
    assert result.days[0].messages == 2 and sum(result.hours) == 2


def test_the_same_numbers_on_sqlite(tmp_path: Path) -> None:
    """The embedded default (`make run`): Shanghai buckets from SQLite's naive UTC text."""
    with sqlite_owner(tmp_path) as membership:
        subscription = db.session.scalar(
            sa.select(Subscription).where(
                Subscription.organization_id == membership.organization_id
            )
        )
        assert subscription is not None
        subscription.plan_id = plan_by_code("pro").id
        bot_id = create_bot(membership, "机器人").id
        conversation = add_conversation(membership.organization_id, bot_id, utc(2026, 2, 28, 16))
        add_message(conversation, utc(2026, 2, 28, 15, 59, 59))
        add_message(conversation, utc(2026, 2, 28, 16, 0, 0, 1), "fallback", "发票？")
        add_message(conversation, utc(2026, 3, 3, 15, 30), "fallback", "发票?")
        add_message(conversation, utc(2026, 3, 3, 16))
        db.session.commit()

        result = services.analytics(membership.organization_id, MARCH_1, MARCH_3)

    assert [(d.day, d.messages) for d in result.days] == [
        (date(2026, 3, 1), 1),
        (date(2026, 3, 2), 0),
        (date(2026, 3, 3), 1),
    ]
    assert (result.hours[0], result.hours[23], sum(result.hours)) == (1, 1, 2)
    assert result.unanswered[0].count == 2 and len(result.unanswered) == 1
    assert (result.conversations, result.handoffs) == (1, 0)
