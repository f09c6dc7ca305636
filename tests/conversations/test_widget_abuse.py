"""The public widget cannot burn an organization's quota (issue 12, item 6).

A client IP is limited across the visitor tokens it opens (they are free to get),
and each bot takes at most its daily cap of widget messages (the owner's, or 20%
of the plan's monthly quota), checked and counted atomically.
"""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from tests.api import assert_error
from tests.conversations import widget_headers
from tests.conversations.test_conversations_api import stored_messages
from tests.conversations.test_widget_api import CONVERSATIONS, faq_widget, say
from tests.portal.conftest import Portal, zh
from tests.usage.conftest import Tenant
from webapp.conversations.models import Message, WidgetDailyCount
from webapp.extensions import db


def open_from(client: Any, key: str, ip: str | None = None, forwarded: str | None = None) -> Any:
    headers = widget_headers(key)
    if forwarded is not None:
        headers["X-Forwarded-For"] = forwarded
    environ = {"REMOTE_ADDR": ip} if ip else {}
    return client.post(CONVERSATIONS, json={}, headers=headers, environ_base=environ)


def test_one_ip_is_limited_across_visitor_tokens(
    app: Flask, tenant: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(app.config, "WIDGET_RATELIMIT_IP", "6 per minute")
    _bot_id, key = faq_widget(tenant)
    client = app.test_client()
    statuses = []
    for _ in range(4):  # each visitor: a new token, a start and a message
        started = open_from(client, key, "203.0.113.5")
        if started.status_code != 201:
            statuses.append(started.status_code)
            continue
        body = started.get_json()
        sent = client.post(
            f"{CONVERSATIONS}/{body['id']}/messages",
            json={"text": "什么时候发货"},
            headers=widget_headers(key, body["visitor_token"]),
            environ_base={"REMOTE_ADDR": "203.0.113.5"},
        )
        statuses += [201, sent.status_code]
    assert statuses == [201, 201, 201, 201, 201, 201, 429], statuses
    assert_error(open_from(client, key, "203.0.113.5"), 429, "rate_limited")
    assert open_from(client, key, "198.51.100.5").status_code == 201  # another address


def test_the_ip_is_the_one_proxy_fix_gives(
    app: Flask, tenant: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Behind one trusted proxy (PROXY_FIX_HOPS=1) visitors are told apart by
    X-Forwarded-For, not by the proxy's own address."""
    monkeypatch.setitem(app.config, "WIDGET_RATELIMIT_IP", "2 per minute")
    monkeypatch.setattr(app, "wsgi_app", ProxyFix(app.wsgi_app, x_for=1))
    _bot_id, key = faq_widget(tenant)
    client = app.test_client()
    proxy = "10.0.0.2"
    for _ in range(2):
        assert open_from(client, key, proxy, forwarded="203.0.113.9").status_code == 201
    assert_error(open_from(client, key, proxy, forwarded="203.0.113.9"), 429, "rate_limited")
    assert open_from(client, key, proxy, forwarded="198.51.100.77").status_code == 201


def set_cap(tenant: Tenant, bot_id: int, cap: int | None) -> dict[str, Any]:
    response = tenant.api.patch(f"/api/v1/bots/{bot_id}", json={"widget_daily_cap": cap})
    assert response.status_code == 200, response.get_json()
    return dict(response.get_json())


def test_owners_set_the_daily_cap_and_see_the_default(tenant: Tenant) -> None:
    bot_id, _key = faq_widget(tenant)
    bot = tenant.api.get(f"/api/v1/bots/{bot_id}").get_json()
    assert (bot["widget_daily_cap"], bot["widget_daily_limit"]) == (None, 200)  # 20% of 1,000
    assert set_cap(tenant, bot_id, 50)["widget_daily_limit"] == 50
    assert set_cap(tenant, bot_id, None)["widget_daily_limit"] == 200
    for bad in (0, -1, 10**12, "many", 2.5):
        response = tenant.api.patch(f"/api/v1/bots/{bot_id}", json={"widget_daily_cap": bad})
        assert_error(response, 422, "validation_error")
    tenant.set_plan("enterprise")  # unlimited messages: no cap unless set
    assert tenant.api.get(f"/api/v1/bots/{bot_id}").get_json()["widget_daily_limit"] is None
    assert set_cap(tenant, bot_id, 1000)["widget_daily_limit"] == 1000
    tenant.set_plan("pro")
    assert set_cap(tenant, bot_id, None)["widget_daily_limit"] == 10_000  # 20% of 50,000


def test_the_daily_cap_refuses_more_widget_messages_and_stores_nothing(
    app: Flask, tenant: Tenant
) -> None:
    bot_id, key = faq_widget(tenant)
    set_cap(tenant, bot_id, 2)
    client = app.test_client()
    started = open_from(client, key).get_json()
    conversation_id, token = started["id"], started["visitor_token"]
    assert say(client, key, conversation_id, token, "什么时候发货").status_code == 201
    assert say(client, key, conversation_id, token, "怎么开发票").status_code == 201
    used_before = tenant.counts()

    refused = say(client, key, conversation_id, token, "退货流程是什么")

    body = assert_error(refused, 429, "widget_daily_cap_reached")
    assert 0 < int(refused.headers["Retry-After"]) <= 86_400
    assert body["message"]
    assert tenant.counts() == used_before  # nothing metered
    assert len(stored_messages(app, conversation_id)) == 4  # two exchanges, not a third
    # The API (the owner's own integration) is not the widget: no cap there.
    api_key = tenant.add_api_key(bot_id)
    created = client.post(
        "/api/v1/conversations", json={}, headers={"Authorization": f"Bearer {api_key}"}
    )
    sent = client.post(
        f"/api/v1/conversations/{created.get_json()['id']}/messages",
        json={"text": "什么时候发货"},
        headers={"Authorization": f"Bearer {api_key}"},
    )
    assert sent.status_code == 201


def test_the_daily_cap_holds_under_concurrency(
    app: Flask, committed_db: None, make_tenant: Any
) -> None:
    tenant = make_tenant()
    bot_id, key = faq_widget(tenant)
    set_cap(tenant, bot_id, 5)
    client = app.test_client()
    visitors = []
    for n in range(20):  # each from its own address: only the cap stands in the way
        body = open_from(client, key, f"198.18.0.{n + 1}").get_json()
        visitors.append((n, body["id"], body["visitor_token"]))
    barrier = threading.Barrier(len(visitors))
    outcomes: Counter[str] = Counter()
    lock = threading.Lock()

    def post(n: int, conversation_id: int, token: str) -> None:
        own = app.test_client()
        barrier.wait()
        response = own.post(
            f"{CONVERSATIONS}/{conversation_id}/messages",
            json={"text": "什么时候发货"},
            headers=widget_headers(key, token),
            environ_base={"REMOTE_ADDR": f"198.18.0.{n + 1}"},
        )
        error = (response.get_json() or {}).get("error", "")
        with lock:
            outcomes[f"{response.status_code}:{error}"] += 1

    threads = [threading.Thread(target=post, args=visitor) for visitor in visitors]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert outcomes == Counter({"201:": 5, "429:widget_daily_cap_reached": 15}), outcomes
    with app.app_context():
        counted = db.session.scalar(
            sa.select(WidgetDailyCount.used).where(WidgetDailyCount.bot_id == bot_id)
        )
        customer_messages = db.session.scalar(
            sa.select(sa.func.count())
            .select_from(Message)
            .where(Message.bot_id == bot_id, Message.role == "customer")
        )
    assert (counted, customer_messages) == (5, 5)
    assert tenant.counts()[0] == 5


def test_the_portal_shows_and_sets_the_cap(app: Flask, tenant: Tenant) -> None:
    bot_id, _key = faq_widget(tenant)
    portal = Portal(app.test_client())
    portal.login(tenant.owner.email)
    page = f"/bots/{bot_id}"
    today = zh(app, "Widget messages today: %(used)d of %(limit)d.", used=0, limit=200)
    assert today in portal.page(page)

    saved = portal.post(f"{page}/widget-cap", {"widget_daily_cap": "30"}, page=page)
    assert saved.status_code == 302
    assert tenant.api.get(f"/api/v1/bots/{bot_id}").get_json()["widget_daily_cap"] == 30
    assert zh(app, "Widget messages today: %(used)d of %(limit)d.", used=0, limit=30) in (
        portal.page(page)
    )
    cleared = portal.post(f"{page}/widget-cap", {"widget_daily_cap": ""}, page=page)
    assert cleared.status_code == 302
    assert tenant.api.get(f"/api/v1/bots/{bot_id}").get_json()["widget_daily_cap"] is None
    refused = portal.post(f"{page}/widget-cap", {"widget_daily_cap": "0"}, page=page)
    assert refused.status_code == 200 and "is-invalid" in refused.get_data(as_text=True)
