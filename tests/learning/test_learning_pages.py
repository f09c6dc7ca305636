"""The portal's "To learn" list: pre-selected entries and answers, one-click teaching, roles."""

from __future__ import annotations

import re
from typing import Any

from flask import Flask

from tests.api import add_member
from tests.conversations.test_suggestions import LOST, RETURNS, UNSURE, Chat, unsure
from tests.kb import faq_path
from tests.kb.test_kb_pages import logged_in
from tests.learning.test_learning_api import listed, lost_question
from tests.portal.conftest import en
from tests.usage.conftest import Tenant


def item_html(html: str, item_id: int) -> str:
    return html.split(f'data-item-id="{item_id}"', 1)[1].split('class="card shadow-sm mb-3', 1)[0]


def selected_entry(html: str) -> int:
    match = re.search(r'<option value="(\d+)" selected>', html)
    assert match, "no entry selected"
    return int(match.group(1))


def test_the_list_preselects_the_picked_entry_and_adds_the_question_in_one_click(
    app: Flask, tenant: Tenant
) -> None:
    chat = Chat(app, tenant, UNSURE)
    unsure(chat)
    returns = chat.entry("退货流程是什么？")
    chat.pick(returns["id"])
    (item,) = listed(tenant, chat.bot_id)
    portal = logged_in(app, tenant.owner)
    page = f"/bots/{chat.bot_id}/learning"

    html = portal.page(page)

    assert f'href="{page}"' in portal.page(f"/bots/{chat.bot_id}")
    assert f'href="{page}"' in portal.page(f"/bots/{chat.bot_id}/faq")
    card = item_html(html, item["id"])
    assert (
        RETURNS in card
        and en("A customer picked: %(question)s", question=returns["question"]) in card
    )
    assert selected_entry(card) == returns["id"]

    response = portal.post(
        f"{page}/{item['id']}/similar",
        {"entry_id": str(returns["id"]), "phrasing": RETURNS},
        page=page,
    )

    assert response.status_code == 302 and response.headers["Location"].startswith(page)
    assert en("Added as a similar question; the bot answers it now.") in portal.page(page)
    entry = tenant.api.get(f"{faq_path(chat.bot_id)}/{returns['id']}").get_json()
    assert RETURNS in entry["similar_questions"]
    assert 'id="learning-empty"' in portal.page(page)
    learned = portal.page(f"{page}?status=learned")
    assert 'class="mb-0 small item-learned"' in learned and returns["question"] in learned


def test_a_new_entry_is_prefilled_with_the_agents_reply(app: Flask, tenant: Tenant) -> None:
    chat = Chat(app, tenant, LOST)
    chat.say("你们周末营业吗")
    tenant.api.post(
        f"/api/v1/conversations/{chat.id}/replies", json={"text": "周末照常营业，9点到18点。"}
    )
    (item,) = listed(tenant, chat.bot_id)
    portal = logged_in(app, tenant.owner)
    page = f"/bots/{chat.bot_id}/learning"

    card = item_html(portal.page(page), item["id"])

    assert '<details class="mb-2 learn-entry" open>' in card
    assert ">周末照常营业，9点到18点。</textarea>" in card
    response = portal.post(
        f"{page}/{item['id']}/entry",
        {"question": "你们周末营业吗", "answer": "周末照常营业，9点到18点。"},
        page=page,
    )
    assert response.status_code == 302
    entries = tenant.api.get(faq_path(chat.bot_id)).get_json()
    assert ("你们周末营业吗", "周末照常营业，9点到18点。") in [
        (e["question"], e["answer"]) for e in entries
    ]
    assert listed(tenant, chat.bot_id) == []


def test_dismiss_and_bad_posts(app: Flask, tenant: Tenant) -> None:
    chat, item = lost_question(app, tenant, "在吗")
    portal = logged_in(app, tenant.owner)
    page = f"/bots/{chat.bot_id}/learning"

    blank = portal.post(f"{page}/{item['id']}/entry", {"question": "在吗", "answer": ""}, page=page)
    assert blank.status_code == 302 and listed(tenant, chat.bot_id)[0]["status"] == "open"
    assert portal.post(f"{page}/{item['id']}/dismiss", {}, page=page).status_code == 302
    assert en("Dismissed.") in portal.page(page)
    assert listed(tenant, chat.bot_id) == []
    dismissed = portal.page(f"{page}?status=dismissed")
    assert f'data-item-id="{item["id"]}"' in dismissed
    assert portal.post(f"{page}/999999/dismiss", {}, page=page).status_code == 404


def test_members_read_the_list_but_cannot_teach(
    app: Flask, tenant: Tenant, make_user: Any, make_tenant: Any
) -> None:
    chat, item = lost_question(app, tenant)
    member = make_user()
    add_member(app, tenant.id, member)
    portal = logged_in(app, member)
    page = f"/bots/{chat.bot_id}/learning"

    card = item_html(portal.page(page), item["id"])

    assert "你们周末营业吗" in card and "<form" not in card
    assert portal.post(f"{page}/{item['id']}/dismiss", {}, page=page).status_code == 403
    stranger = make_tenant(name="别家公司")
    outsider = logged_in(app, stranger.owner)
    assert outsider.get(page).status_code == 404
    assert outsider.post(f"{page}/{item['id']}/dismiss", {}, page="/bots").status_code == 404
    assert listed(tenant, chat.bot_id)[0]["status"] == "open"
