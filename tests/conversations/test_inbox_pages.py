"""The agents' inbox (/inbox) and the widget settings on the bot page (portal)."""

from __future__ import annotations

import io
from typing import Any

import sqlalchemy as sa
from flask import Flask
from markupsafe import escape

from tests.api import add_member
from tests.conversations import embed, messages_path, start, widget_headers
from tests.conversations.test_conversations_api import conversation_status, stored_messages
from tests.kb import add_tea_faq, offer_only_when_fairly_sure
from tests.portal.conftest import Portal, zh
from tests.usage.conftest import Tenant, key_headers
from webapp.bots.models import Bot
from webapp.extensions import db


def portal_of(app: Flask, user: Any) -> Portal:
    portal = Portal(app.test_client())
    assert portal.login(user.email).status_code == 302
    return portal


def member_portal(app: Flask, tenant: Tenant, make_user: Any, role: str = "member") -> Portal:
    member = make_user()
    add_member(app, tenant.id, member, role)
    return portal_of(app, member)


def chat(app: Flask, tenant: Tenant, bot_id: int, *texts: str) -> int:
    """A conversation with the bot (through a bound API key) in which the customer says `texts`."""
    key = tenant.add_api_key(bot_id)
    client = app.test_client()
    conversation = start(client, key_headers(key))
    for text in texts:
        response = client.post(
            messages_path(conversation["id"]), json={"text": text}, headers=key_headers(key)
        )
        assert response.status_code == 201, response.get_json()
    return int(conversation["id"])


def rows(html: str) -> list[int]:
    marker = 'data-conversation-id="'
    return [int(part.split('"', 1)[0]) for part in html.split(marker)[1:]]


def test_the_inbox_puts_conversations_needing_a_person_first(
    app: Flask, tenant: Tenant, make_tenant: Any
) -> None:
    tenant.set_plan("pro")
    shop, support = tenant.add_bot("售前"), tenant.add_bot("售后")
    add_tea_faq(tenant.api, shop)
    offer_only_when_fairly_sure(app, shop)
    answered = chat(app, tenant, shop, "什么时候发货")
    stuck = chat(app, tenant, shop, "你们老板叫什么名字")
    other_bot = chat(app, tenant, support, "在吗")
    stranger = make_tenant(name="别家公司")
    strangers = chat(app, stranger, stranger.add_bot(), "你好")
    portal = portal_of(app, tenant.owner)

    html = portal.page("/inbox")

    assert 'id="nav-inbox"' in html
    needing_a_person = {stuck, other_bot}  # 在吗: that bot has no FAQ
    assert set(rows(html)[:2]) == needing_a_person and rows(html)[2] == answered
    assert strangers not in rows(html)
    assert 'id="needs-human-count"' in html
    assert 'title="{}">2</span>'.format(zh(app, "Conversations waiting for a person")) in html
    assert "你们老板叫什么名字" in html  # the customer's question, then the bot's fallback
    assert rows(portal.page(f"/inbox?bot_id={shop}")) == [stuck, answered]
    assert set(rows(portal.page("/inbox?status=needs_human"))) == needing_a_person
    assert rows(portal.page("/inbox?status=open")) == [answered]
    assert set(rows(portal.page("/inbox?bot_id=999999&status=bogus"))) == {
        answered,
        stuck,
        other_bot,
    }


def test_a_transcript_shows_confidence_and_matched_entries(app: Flask, tenant: Tenant) -> None:
    bot_id = tenant.add_bot()
    add_tea_faq(tenant.api, bot_id)
    offer_only_when_fairly_sure(app, bot_id)
    conversation_id = chat(app, tenant, bot_id, "怎么开发票", "你们老板叫什么名字")
    portal = portal_of(app, tenant.owner)

    html = portal.page(f"/inbox/{conversation_id}")

    assert html.count('data-role="customer"') == 2 and html.count('data-role="bot"') == 2
    assert "可以开具电子普通发票，下单时填写抬头和税号。" in html
    assert f"{zh(app, 'Matched entry')}: {escape('可以开发票吗？')}" in html
    assert zh(app, "No matching entry (fallback)") in html
    assert zh(app, "Confidence") in html
    assert 'id="reply-form"' in html and 'id="close-conversation"' in html


def test_any_member_replies_and_the_widget_sees_it(
    app: Flask, tenant: Tenant, make_user: Any
) -> None:
    bot_id = tenant.add_bot()
    key = embed(tenant, bot_id)
    client = app.test_client()
    started = client.post("/api/v1/widget/conversations", json={}, headers=widget_headers(key))
    conversation_id, token = started.get_json()["id"], started.get_json()["visitor_token"]
    client.post(
        f"/api/v1/widget/conversations/{conversation_id}/messages",
        json={"text": "有人吗"},
        headers=widget_headers(key, token),
    )
    member = member_portal(app, tenant, make_user)
    page = f"/inbox/{conversation_id}"

    response = member.post(f"{page}/reply", {"text": "您好，我来帮您。"}, page=page)

    assert response.status_code == 302 and response.headers["Location"] == page
    assert stored_messages(app, conversation_id)[-1] == ("agent", "您好，我来帮您。")
    assert 'data-role="agent"' in member.page(page)
    polled = client.get(
        f"/api/v1/widget/conversations/{conversation_id}/messages",
        headers=widget_headers(key, token),
    ).get_json()
    assert polled["messages"][-1]["role"] == "agent"
    assert polled["messages"][-1]["text"] == "您好，我来帮您。"

    blank = member.post(f"{page}/reply", {"text": "  "}, page=page)
    assert blank.status_code == 200 and "is-invalid" in blank.get_data(as_text=True)
    assert stored_messages(app, conversation_id)[-1] == ("agent", "您好，我来帮您。")


def test_return_to_bot_and_close(app: Flask, tenant: Tenant) -> None:
    bot_id = tenant.add_bot()
    add_tea_faq(tenant.api, bot_id)
    conversation_id = chat(app, tenant, bot_id, "你们老板叫什么名字")
    portal = portal_of(app, tenant.owner)
    page = f"/inbox/{conversation_id}"
    portal.post(f"{page}/reply", {"text": "我来处理。"}, page=page)

    assert 'id="return-to-bot"' in portal.page(page)
    assert portal.post(f"{page}/return-to-bot", page=page).status_code == 302
    assert conversation_status(app, conversation_id) == "open"
    closed = portal.post(f"{page}/close", page=page)
    assert closed.status_code == 302 and closed.headers["Location"] == "/inbox"
    assert conversation_status(app, conversation_id) == "closed"

    html = portal.page(page)
    assert 'id="reply-form"' not in html and 'id="closed-note"' in html
    late = portal.post(f"{page}/reply", {"text": "还在吗"}, page="/inbox")
    assert late.status_code == 302
    assert stored_messages(app, conversation_id)[-1] == ("agent", "我来处理。")


def test_another_organizations_conversation_is_404(
    app: Flask, tenant: Tenant, make_tenant: Any
) -> None:
    stranger = make_tenant(name="别家公司")
    stranger.set_plan("pro")
    bot_id = stranger.add_bot()
    key = stranger.add_api_key(bot_id)
    client = app.test_client()
    conversation = start(client, key_headers(key))
    image = {"kind": "image", "file": (io.BytesIO(b"\x89PNG fake"), "p.png", "image/png")}
    sent = client.post(messages_path(conversation["id"]), data=image, headers=key_headers(key))
    message_id = sent.get_json()["message"]["id"]
    page = f"/inbox/{conversation['id']}"
    own = portal_of(app, stranger.owner)
    portal = portal_of(app, tenant.owner)

    download = own.get(f"{page}/messages/{message_id}/attachment")
    assert download.data == b"\x89PNG fake"
    # a customer's photo is part of the chat: never stored by a cache or the browser
    assert {"private", "no-store"} <= set(download.headers["Cache-Control"].split(", "))
    assert 'class="small attachment-link"' in own.page(page)
    assert portal.get(page).status_code == 404
    assert portal.get(f"{page}/messages/{message_id}/attachment").status_code == 404
    assert portal.post(f"{page}/reply", {"text": "乱入"}, page="/inbox").status_code == 404
    assert portal.post(f"{page}/close", page="/inbox").status_code == 404
    assert portal.post(f"{page}/return-to-bot", page="/inbox").status_code == 404
    assert conversation_status(app, conversation["id"]) == "needs_human"


def test_the_bot_page_shows_the_widget_key_and_edits_origins(app: Flask, tenant: Tenant) -> None:
    bot_id = tenant.add_bot()
    portal = portal_of(app, tenant.owner)
    page = f"/bots/{bot_id}"
    with app.app_context():
        key = db.session.get(Bot, bot_id).publishable_key  # type: ignore[union-attr]

    html = portal.page(page)
    assert f'value="{key}"' in html
    assert f'&lt;script src="http://localhost/widget.js" data-bot="{key}" defer&gt;' in html

    saved = portal.post(
        f"{page}/origins",
        {"origins": "https://Shop.example/\n\nhttp://127.0.0.1:8080\nhttps://shop.example"},
        page=page,
    )
    assert saved.status_code == 302
    with app.app_context():
        bot = db.session.get(Bot, bot_id)
        assert bot is not None
        assert bot.allowed_origins == ["https://shop.example", "http://127.0.0.1:8080"]

    refused = portal.post(f"{page}/origins", {"origins": "shop.example/path"}, page=page)
    assert refused.status_code == 200
    assert "is-invalid" in refused.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(sa.select(Bot.allowed_origins).where(Bot.id == bot_id)) == [
            "https://shop.example",
            "http://127.0.0.1:8080",
        ]

    assert portal.post(f"{page}/publishable-key", page=page).status_code == 302
    with app.app_context():
        new_key = db.session.scalar(sa.select(Bot.publishable_key).where(Bot.id == bot_id))
    assert new_key != key and f'value="{new_key}"' in portal.page(page)


def test_members_see_the_key_but_cannot_change_the_widget(
    app: Flask, tenant: Tenant, make_user: Any
) -> None:
    bot_id = tenant.add_bot()
    embed(tenant, bot_id, ["https://shop.example"])
    member = member_portal(app, tenant, make_user)
    page = f"/bots/{bot_id}"

    html = member.page(page)
    assert 'id="publishable-key"' in html and 'id="allowed-origins"' in html
    assert "https://shop.example" in html
    assert 'id="rotate-key"' not in html and 'id="origins-form"' not in html
    assert (
        member.post(f"{page}/origins", {"origins": "https://evil.example"}, page=page).status_code
        == 403
    )
    assert member.post(f"{page}/publishable-key", page=page).status_code == 403


def test_the_widget_script_is_served(app: Flask) -> None:
    response = app.test_client().get("/widget.js")

    assert response.status_code == 200
    assert response.mimetype == "text/javascript"
    assert "attachShadow" in response.get_data(as_text=True)
    assert response.cache_control.max_age == 300
