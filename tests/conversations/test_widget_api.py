"""/api/v1/widget: publishable keys, origins, visitor tokens, branding, CORS, limits, quota."""

from __future__ import annotations

import io
import threading
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from tests.api import add_member, assert_error
from tests.conversations import WIDGET, embed, messages_path, start, widget_headers
from tests.conversations.test_conversations_api import stored_messages
from tests.kb import add_tea_faq, offer_only_when_fairly_sure
from tests.usage.conftest import Tenant, key_headers
from webapp.billing.periods import month_start
from webapp.bots.models import Bot
from webapp.conversations.models import Conversation
from webapp.core.security import token_digest
from webapp.db import utcnow
from webapp.extensions import db
from webapp.usage.models import UsageCounter

CONVERSATIONS = f"{WIDGET}/conversations"


def widget_messages(conversation_id: int) -> str:
    return f"{CONVERSATIONS}/{conversation_id}/messages"


def faq_widget(tenant: Tenant, origins: list[str] | None = None) -> tuple[int, str]:
    bot_id = tenant.add_bot()
    add_tea_faq(tenant.api, bot_id)
    return bot_id, embed(tenant, bot_id, origins)


def open_conversation(client: Any, key: str) -> tuple[int, str]:
    response = client.post(CONVERSATIONS, json={}, headers=widget_headers(key))
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    return body["id"], body["visitor_token"]


def say(client: Any, key: str, conversation_id: int, token: str, text: str) -> Any:
    return client.post(
        widget_messages(conversation_id), json={"text": text}, headers=widget_headers(key, token)
    )


def test_a_visitor_asks_and_the_bot_answers(app: Flask, tenant: Tenant) -> None:
    _bot_id, key = faq_widget(tenant)
    client = app.test_client()
    conversation_id, token = open_conversation(client, key)

    response = say(client, key, conversation_id, token, "我想退货，流程是怎样的")

    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert body["handoff"] is False
    assert body["reply"]["text"] == "在订单页申请退货，审核通过后寄回商品。"
    assert body["message"]["role"] == "customer" and body["reply"]["role"] == "bot"
    # The organization's quota and the bot's internals are not the visitor's business.
    assert "usage" not in body and "confidence" not in body["reply"]
    assert not any(name.startswith("X-Quota") for name, _value in response.headers.items())
    assert tenant.counts() == (1, 1, 1)
    with app.app_context():
        conversation = db.session.get(Conversation, conversation_id)
        assert conversation is not None
        assert conversation.channel == "widget"
        assert conversation.visitor_token_hash == token_digest(token)


def test_an_unanswerable_question_hands_off_and_the_agent_reply_is_polled(
    app: Flask, tenant: Tenant
) -> None:
    bot_id, key = faq_widget(tenant)
    offer_only_when_fairly_sure(app, bot_id)
    client = app.test_client()
    conversation_id, token = open_conversation(client, key)

    body = say(client, key, conversation_id, token, "你们老板叫什么名字").get_json()
    assert body["handoff"] is True
    first_reply_id = body["reply"]["id"]
    agent = tenant.api.post(
        f"/api/v1/conversations/{conversation_id}/replies", json={"text": "您好，我是小王。"}
    )
    assert agent.status_code == 201

    everything = client.get(widget_messages(conversation_id), headers=widget_headers(key, token))
    newer = client.get(
        widget_messages(conversation_id),
        query_string={"after": first_reply_id},
        headers=widget_headers(key, token),
    )

    assert everything.status_code == 200, everything.get_json()
    assert everything.get_json()["conversation"]["status"] == "needs_human"
    roles = [m["role"] for m in everything.get_json()["messages"]]
    assert roles == ["customer", "bot", "agent"]
    assert [(m["role"], m["text"]) for m in newer.get_json()["messages"]] == [
        ("agent", "您好，我是小王。")
    ]


def test_keys_must_be_valid_and_bots_enabled(app: Flask, tenant: Tenant) -> None:
    bot_id, key = faq_widget(tenant)
    client = app.test_client()

    assert client.get(f"{WIDGET}/config", headers=widget_headers(key)).status_code == 200
    for bad in ("pk_unknown", "", key + "x"):
        assert_error(
            client.get(f"{WIDGET}/config", headers=widget_headers(bad)), 401, "invalid_widget_key"
        )
    tenant.api.patch(f"/api/v1/bots/{bot_id}", json={"is_enabled": False})
    assert_error(
        client.post(CONVERSATIONS, json={}, headers=widget_headers(key)), 401, "invalid_widget_key"
    )


def test_only_the_bots_allowed_origins(app: Flask, tenant: Tenant) -> None:
    _bot_id, key = faq_widget(tenant, ["https://shop.example", "http://127.0.0.1:8080"])
    client = app.test_client()

    for origin in ("https://shop.example", "HTTPS://SHOP.EXAMPLE", "http://127.0.0.1:8080"):
        response = client.get(f"{WIDGET}/config", headers=widget_headers(key, origin=origin))
        assert response.status_code == 200, (origin, response.get_json())
    for origin in ("https://evil.example", "http://shop.example", "http://127.0.0.1:8081", "null"):
        refused = client.post(CONVERSATIONS, json={}, headers=widget_headers(key, origin=origin))
        assert_error(refused, 403, "origin_not_allowed")
    no_origin = client.post(CONVERSATIONS, json={}, headers={"X-Widget-Key": key})
    assert_error(no_origin, 403, "origin_not_allowed")
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Conversation)) == 0


def test_a_visitor_token_opens_only_its_own_conversation(app: Flask, tenant: Tenant) -> None:
    _bot_id, key = faq_widget(tenant)
    client = app.test_client()
    mine, my_token = open_conversation(client, key)
    theirs, their_token = open_conversation(client, key)
    say(client, key, theirs, their_token, "什么时候发货")

    for token in (my_token, "", "not-a-token"):
        assert_error(
            client.get(widget_messages(theirs), headers=widget_headers(key, token)),
            404,
            "conversation_not_found",
        )
        assert_error(say(client, key, theirs, token, "偷看"), 404, "conversation_not_found")
    no_token = client.get(widget_messages(theirs), headers=widget_headers(key))
    assert_error(no_token, 404, "conversation_not_found")
    assert [role for role, _text in stored_messages(app, theirs)] == ["customer", "bot"]
    assert stored_messages(app, mine) == []


def test_a_key_reaches_only_conversations_its_bot_started_by_widget(
    app: Flask, tenant: Tenant, make_tenant: Any
) -> None:
    tenant.set_plan("pro")  # two bots
    _bot_id, key = faq_widget(tenant)
    other_bot, other_key = faq_widget(tenant)
    stranger = make_tenant(name="别家公司")
    _stranger_bot, stranger_key = faq_widget(stranger)
    client = app.test_client()
    conversation_id, token = open_conversation(client, key)
    api_conversation = start(client, key_headers(tenant.add_api_key(other_bot)))

    for other in (other_key, stranger_key):
        response = client.get(
            widget_messages(conversation_id), headers=widget_headers(other, token)
        )
        assert_error(response, 404, "conversation_not_found")
        assert_error(
            say(client, other, conversation_id, token, "你好"), 404, "conversation_not_found"
        )
    # A conversation started with an API key has no visitor: no widget key reaches it.
    response = client.get(
        widget_messages(api_conversation["id"]), headers=widget_headers(other_key)
    )
    assert_error(response, 404, "conversation_not_found")
    assert stored_messages(app, conversation_id) == []


def test_a_closed_conversation_takes_no_more_messages(app: Flask, tenant: Tenant) -> None:
    _bot_id, key = faq_widget(tenant)
    client = app.test_client()
    conversation_id, token = open_conversation(client, key)
    tenant.api.post(f"/api/v1/conversations/{conversation_id}/close")

    assert_error(say(client, key, conversation_id, token, "还在吗"), 409, "conversation_closed")
    polled = client.get(widget_messages(conversation_id), headers=widget_headers(key, token))
    assert polled.get_json()["conversation"]["status"] == "closed"


def set_branding(app: Flask, bot_id: int) -> None:
    """Branding stored directly, as if set while on a plan that had it."""
    with app.app_context():
        bot = db.session.get(Bot, bot_id)
        assert bot is not None
        bot.widget_title = "小茶在线"
        bot.widget_color = "#aa3300"
        bot.widget_logo_url = "https://shop.example/logo.png"
        bot.show_powered_by = False
        bot.greeting = "欢迎光临！"
        db.session.commit()


def test_config_applies_branding_only_on_plans_with_it(app: Flask, tenant: Tenant) -> None:
    bot_id, key = faq_widget(tenant)
    set_branding(app, bot_id)
    client = app.test_client()

    free = client.get(f"{WIDGET}/config", headers=widget_headers(key)).get_json()
    tenant.set_plan("pro")
    pro = client.get(f"{WIDGET}/config", headers=widget_headers(key)).get_json()

    assert free == {
        "name": "客服机器人",
        "greeting": "欢迎光临！",
        "title": "",
        "color": "#1677ff",
        "logo_url": "",
        "show_powered_by": True,
        "uploads": [],
    }
    assert pro == {
        "name": "客服机器人",
        "greeting": "欢迎光临！",
        "title": "小茶在线",
        "color": "#aa3300",
        "logo_url": "https://shop.example/logo.png",
        "show_powered_by": False,
        "uploads": ["image", "voice"],
    }


def test_cors_lets_any_origin_reach_the_widget_api_only(app: Flask, tenant: Tenant) -> None:
    client = app.test_client()
    origin = "https://any-shop.example"
    preflight = client.options(
        CONVERSATIONS + "/1/messages",
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": (
                "x-widget-key, x-visitor-token, content-type, idempotency-key"
            ),
        },
    )
    assert preflight.status_code == 200
    assert preflight.headers["Access-Control-Allow-Origin"] in (origin, "*")
    allowed = {
        h.strip().lower() for h in preflight.headers["Access-Control-Allow-Headers"].split(",")
    }
    assert allowed >= {"x-widget-key", "x-visitor-token", "content-type", "idempotency-key"}
    assert "POST" in preflight.headers["Access-Control-Allow-Methods"]
    assert "Access-Control-Allow-Credentials" not in preflight.headers

    _bot_id, key = faq_widget(tenant)
    # The answer itself (even a refusal) is readable by the page, so the widget can react.
    refused = client.get(f"{WIDGET}/config", headers=widget_headers(key, origin=origin))
    assert refused.status_code == 403
    assert refused.headers["Access-Control-Allow-Origin"] in (origin, "*")

    elsewhere = client.options(
        "/api/v1/bots",
        headers={"Origin": origin, "Access-Control-Request-Method": "GET"},
    )
    assert "Access-Control-Allow-Origin" not in elsewhere.headers


def test_visitors_are_rate_limited(
    app: Flask, tenant: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(app.config, "WIDGET_RATELIMIT_VISITOR", "3 per minute")
    monkeypatch.setitem(app.config, "WIDGET_RATELIMIT_VISITOR_READS", "2 per minute")
    _bot_id, key = faq_widget(tenant)
    client = app.test_client()
    conversation_id, token = open_conversation(client, key)  # the IP's first
    other_id, other_token = open_conversation(client, key)  # and second

    for _ in range(3):
        assert say(client, key, conversation_id, token, "什么时候发货").status_code == 201
    limited = say(client, key, conversation_id, token, "什么时候发货")
    assert_error(limited, 429, "rate_limited")
    assert "Retry-After" in limited.headers
    assert len(stored_messages(app, conversation_id)) == 6
    assert say(client, key, other_id, other_token, "怎么开发票").status_code == 201  # own bucket
    # Before it has a token a visitor is its IP: two starts taken, one left.
    assert client.post(CONVERSATIONS, json={}, headers=widget_headers(key)).status_code == 201
    assert_error(
        client.post(CONVERSATIONS, json={}, headers=widget_headers(key)), 429, "rate_limited"
    )

    polls = [
        client.get(widget_messages(other_id), headers=widget_headers(key, other_token)).status_code
        for _ in range(3)
    ]
    assert polls == [200, 200, 429]


def test_a_key_is_rate_limited_across_visitors(
    app: Flask, tenant: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(app.config, "WIDGET_RATELIMIT_KEY", "4 per minute")
    tenant.set_plan("pro")  # two bots
    _bot_id, key = faq_widget(tenant)
    _other_bot, other_key = faq_widget(tenant)
    client = app.test_client()
    visitors = [open_conversation(client, key) for _ in range(2)]

    statuses = [
        say(client, key, conversation_id, token, "什么时候发货").status_code
        for conversation_id, token in visitors
        for _ in range(2)
    ]

    assert statuses == [201, 201, 429, 429]  # 2 starts + 2 messages = the key's 4
    assert open_conversation(client, other_key)[0] > 0  # another key has its own bucket


def test_over_quota_the_widget_gets_429_and_nothing_is_stored(app: Flask, tenant: Tenant) -> None:
    _bot_id, key = faq_widget(tenant)
    client = app.test_client()
    conversation_id, token = open_conversation(client, key)
    with app.app_context():
        db.session.add(
            UsageCounter(organization_id=tenant.id, period_start=month_start(utcnow()), used=1000)
        )
        db.session.commit()

    response = say(client, key, conversation_id, token, "什么时候发货")

    assert_error(response, 429, "quota_exceeded")
    assert stored_messages(app, conversation_id) == []
    assert tenant.counts()[1] == 0


def test_images_from_the_widget_need_a_plan_with_them(app: Flask, tenant: Tenant) -> None:
    _bot_id, key = faq_widget(tenant)
    client = app.test_client()
    conversation_id, token = open_conversation(client, key)

    def upload() -> Any:
        data = {"kind": "image", "file": (io.BytesIO(b"\x89PNG fake"), "photo.png", "image/png")}
        return client.post(
            widget_messages(conversation_id), data=data, headers=widget_headers(key, token)
        )

    assert_error(upload(), 403, "feature_not_in_plan")
    tenant.set_plan("pro")
    accepted = upload()
    assert accepted.status_code == 201, accepted.get_json()
    assert accepted.get_json()["message"]["kind"] == "image"
    assert accepted.get_json()["handoff"] is True
    download = tenant.api.get(
        f"{messages_path(conversation_id)}/{accepted.get_json()['message']['id']}/attachment"
    )
    assert download.data == b"\x89PNG fake"


def test_owners_and_admins_rotate_the_publishable_key(
    app: Flask, tenant: Tenant, make_tenant: Any, make_user: Any, make_api_client: Any
) -> None:
    bot_id, key = faq_widget(tenant)
    path = f"/api/v1/bots/{bot_id}/publishable-key"
    client = app.test_client()
    conversation_id, token = open_conversation(client, key)

    rotated = tenant.api.post(path)

    assert rotated.status_code == 200, rotated.get_json()
    new_key = rotated.get_json()["publishable_key"]
    assert new_key.startswith("pk_") and new_key != key
    assert_error(
        client.get(f"{WIDGET}/config", headers=widget_headers(key)), 401, "invalid_widget_key"
    )
    assert client.get(f"{WIDGET}/config", headers=widget_headers(new_key)).status_code == 200
    # The visitor's conversation goes on with the new key.
    assert say(client, new_key, conversation_id, token, "怎么开发票").status_code == 201

    member = make_user()
    add_member(app, tenant.id, member, "member")
    assert_error(make_api_client(member).post(path), 403, "forbidden")
    assert_error(
        client.post(path, headers=key_headers(tenant.add_api_key())), 401, "api_key_not_allowed"
    )
    assert_error(make_tenant(name="别家公司").api.post(path), 404, "bot_not_found")
    with app.app_context():
        bot = db.session.get(Bot, bot_id)
        assert bot is not None and bot.publishable_key == new_key


def test_a_wrong_visitor_token_never_waits_on_the_conversation(
    app: Flask, committed_db: None, tenant: Tenant
) -> None:
    """Posting to a conversation locks it, but only for its own visitor: anyone holding the
    public key and guessing ids is refused at once, even while its visitor's message is
    being answered (the row locked), instead of holding a worker until that commits."""
    _bot_id, key = faq_widget(tenant)
    client = app.test_client()
    conversation_id, _token = open_conversation(client, key)
    _other_id, other_token = open_conversation(client, key)
    engine = sa.create_engine(app.config["SQLALCHEMY_DATABASE_URI"], poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as answering:
            answering.execute(
                sa.text("SELECT id FROM conversations WHERE id = :id FOR UPDATE"),
                {"id": conversation_id},
            )
            responses: list[Any] = []
            guess = threading.Thread(
                target=lambda: responses.append(
                    say(app.test_client(), key, conversation_id, other_token, "什么时候发货")
                )
            )
            guess.start()
            guess.join(timeout=3)
            waited = guess.is_alive()
            answering.rollback()
            guess.join()
    finally:
        engine.dispose()

    assert not waited
    assert_error(responses[0], 404, "conversation_not_found")
