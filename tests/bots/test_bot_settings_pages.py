"""The bot page's answering and branding forms (POST /bots/<id>/answering, /branding)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from flask import Flask

from tests.bots import set_plan
from tests.bots.test_bot_pages import bot_id_by_name, create_bot, member_portal
from tests.portal.conftest import Portal, org_id_by_name, zh
from webapp.bots.models import (
    DEFAULT_ANSWER_THRESHOLD,
    DEFAULT_HANDOFF_WORDS,
    DEFAULT_SUGGEST_THRESHOLD,
    DEFAULT_WIDGET_COLOR,
    Bot,
)
from webapp.extensions import db

BRANDING = {
    "widget_title": "茶叶小铺客服",
    "widget_color": "#AA3300",
    "widget_logo_url": "https://cdn.example.com/logo.png",
    "show_powered_by": "",  # unchecked: the browser sends nothing (an empty value is false)
}


@dataclass
class OwnBot:
    owner: Portal  # logged in, owner of the organization
    org_id: int
    bot_id: int


@pytest.fixture
def own(app: Flask, logged_in: Portal) -> OwnBot:
    logged_in.create_org("测试公司")
    org_id = org_id_by_name(app, "测试公司")
    assert create_bot(logged_in, "售前客服").status_code == 302
    return OwnBot(logged_in, org_id, bot_id_by_name(app, org_id, "售前客服"))


def stored(app: Flask, bot_id: int) -> Bot:
    with app.app_context():
        bot = db.session.get(Bot, bot_id)
        assert bot is not None
        db.session.expunge(bot)
        return bot


def test_owner_saves_the_answering_settings(app: Flask, own: OwnBot) -> None:
    owner, bot_id = own.owner, own.bot_id
    page = f"/bots/{bot_id}"
    html = owner.page(page)
    assert 'id="answering-form"' in html and 'name="answer_threshold"' in html
    assert 'name="suggest_threshold"' in html
    assert 'value="人工，转人工，找客服"' in html  # the default handoff words

    response = owner.post(
        f"{page}/answering",
        {
            "answer_threshold": "0.72",
            "suggest_threshold": "0.4",
            "fallback_text": " 请稍等，人工客服马上到。 ",
            "handoff_words": "人工、 投诉,找店长，人工",
        },
        page=page,
    )

    assert response.status_code == 302 and response.headers["Location"] == page
    bot = stored(app, bot_id)
    assert bot.answer_threshold == 0.72 and bot.fallback_text == "请稍等，人工客服马上到。"
    assert bot.suggest_threshold == 0.4
    assert bot.handoff_words == ["人工", "投诉", "找店长"]
    html = owner.page(page)
    assert zh(app, "Answering settings saved.") in html
    assert 'value="0.72"' in html and 'value="0.4"' in html
    assert 'value="人工，投诉，找店长"' in html


def test_the_suggest_threshold_stays_at_or_below_the_answer_threshold(
    app: Flask, own: OwnBot
) -> None:
    owner, bot_id = own.owner, own.bot_id
    page = f"/bots/{bot_id}"
    form = {"answer_threshold": "0.5", "suggest_threshold": "0.6", "handoff_words": ""}

    html = owner.post(f"{page}/answering", form, page=page).get_data(as_text=True)

    assert zh(app, "The suggest threshold must not be above the answer threshold.") in html
    bot = stored(app, bot_id)
    assert (bot.answer_threshold, bot.suggest_threshold) == (
        DEFAULT_ANSWER_THRESHOLD,
        DEFAULT_SUGGEST_THRESHOLD,
    )
    assert bot.handoff_words == list(DEFAULT_HANDOFF_WORDS)


def test_handoff_words_are_bounded(app: Flask, own: OwnBot) -> None:
    owner, bot_id = own.owner, own.bot_id
    page = f"/bots/{bot_id}"
    form = {"answer_threshold": "0.5", "suggest_threshold": "0.2"}
    for words in ("一二三四五六七八九十一", ",".join(f"词{n}" for n in range(21))):
        response = owner.post(f"{page}/answering", {**form, "handoff_words": words}, page=page)
        assert response.status_code == 200 and "is-invalid" in response.get_data(as_text=True)
    assert stored(app, bot_id).handoff_words == list(DEFAULT_HANDOFF_WORDS)

    assert (
        owner.post(f"{page}/answering", {**form, "handoff_words": ""}, page=page).status_code == 302
    )
    assert stored(app, bot_id).handoff_words == []


def test_answering_settings_are_validated(app: Flask, own: OwnBot) -> None:
    owner, bot_id = own.owner, own.bot_id
    page = f"/bots/{bot_id}"
    for threshold in ("1.5", "-0.1", "很高", ""):
        for field, other in (
            ("answer_threshold", "suggest_threshold"),
            ("suggest_threshold", "answer_threshold"),
        ):
            response = owner.post(
                f"{page}/answering",
                {field: threshold, other: "0.5", "fallback_text": ""},
                page=page,
            )
            assert response.status_code == 200, (field, threshold)
            assert "is-invalid" in response.get_data(as_text=True)
    too_long = owner.post(
        f"{page}/answering",
        {"answer_threshold": "0.5", "suggest_threshold": "0.2", "fallback_text": "长" * 501},
        page=page,
    )
    assert too_long.status_code == 200 and "is-invalid" in too_long.get_data(as_text=True)
    html = owner.post(f"{page}/answering", {"answer_threshold": "2"}, page=page).get_data(
        as_text=True
    )
    assert zh(app, "The threshold is from 0 to 1.") in html
    assert stored(app, bot_id).answer_threshold == DEFAULT_ANSWER_THRESHOLD


def test_branding_on_a_plan_with_it(app: Flask, own: OwnBot) -> None:
    owner, org_id, bot_id = own.owner, own.org_id, own.bot_id
    set_plan(app, org_id, "pro")
    page = f"/bots/{bot_id}"
    html = owner.page(page)
    assert 'id="branding-settings" data-enabled="true"' in html
    assert 'type="color"' in html and 'id="branding-upgrade"' not in html

    response = owner.post(f"{page}/branding", BRANDING, page=page)

    assert response.status_code == 302
    bot = stored(app, bot_id)
    assert (bot.widget_title, bot.widget_color, bot.widget_logo_url, bot.show_powered_by) == (
        "茶叶小铺客服",
        "#aa3300",
        "https://cdn.example.com/logo.png",
        False,
    )
    assert zh(app, "Branding saved.") in owner.page(page)
    owner.post(f"{page}/branding", {**BRANDING, "show_powered_by": "y"}, page=page)
    assert stored(app, bot_id).show_powered_by is True


def test_branding_is_validated(app: Flask, own: OwnBot) -> None:
    owner, org_id, bot_id = own.owner, own.org_id, own.bot_id
    set_plan(app, org_id, "enterprise")
    page = f"/bots/{bot_id}"
    for field, value in (
        ("widget_color", "red"),
        ("widget_color", "#12345g"),
        ("widget_logo_url", "javascript:alert(1)"),
        ("widget_logo_url", "ftp://example.com/logo.png"),
        ("widget_title", "名" * 61),
    ):
        response = owner.post(f"{page}/branding", {**BRANDING, field: value}, page=page)
        html = response.get_data(as_text=True)
        assert response.status_code == 200, (field, value)
        assert f'class="form-control is-invalid" id="{field}"' in html, (field, value)
        assert html.count("is-invalid") == 1
    assert zh(app, "The logo must be an http(s) URL.") in html_of_logo(owner, page)
    bot = stored(app, bot_id)
    assert (bot.widget_title, bot.widget_color, bot.widget_logo_url) == (
        "",
        DEFAULT_WIDGET_COLOR,
        "",
    )


def html_of_logo(owner: Portal, page: str) -> str:
    data = {**BRANDING, "widget_logo_url": "mailto:boss@example.com"}
    return owner.post(f"{page}/branding", data, page=page).get_data(as_text=True)


def test_branding_needs_a_plan_with_it(app: Flask, own: OwnBot) -> None:
    owner, bot_id = own.owner, own.bot_id
    page = f"/bots/{bot_id}"
    html = owner.page(page)
    assert 'id="branding-settings" data-enabled="false"' in html
    assert 'id="branding-upgrade-link"' in html
    branding = html.split('id="branding-form"', 1)[1].split("</form>", 1)[0]
    assert "<fieldset disabled>" in branding and 'type="submit"' not in branding

    response = owner.post(f"{page}/branding", BRANDING, page=page)  # crafted: the form is off

    assert response.status_code == 302 and response.headers["Location"] == page
    assert zh(app, "Custom branding is not in your plan; upgrade to use it.") in owner.page(page)
    bot = stored(app, bot_id)
    assert (bot.widget_title, bot.widget_color, bot.show_powered_by) == (
        "",
        DEFAULT_WIDGET_COLOR,
        True,
    )


def test_a_member_sees_the_settings_but_cannot_change_them(
    app: Flask,
    own: OwnBot,
    make_user: Any,
    make_portal: Any,
) -> None:
    org_id, bot_id = own.org_id, own.bot_id
    set_plan(app, org_id, "pro")
    member = member_portal(app, org_id, make_user, make_portal, "member")
    page = f"/bots/{bot_id}"
    html = member.page(page)
    answering = html.split('id="answering-form"', 1)[1].split("</form>", 1)[0]
    assert "<fieldset disabled>" in answering and 'type="submit"' not in answering

    answering_post = {"answer_threshold": "0.9", "fallback_text": "改"}
    assert member.post(f"{page}/answering", answering_post, page=page).status_code == 403
    assert member.post(f"{page}/branding", BRANDING, page=page).status_code == 403
    bot = stored(app, bot_id)
    assert bot.answer_threshold == DEFAULT_ANSWER_THRESHOLD and bot.widget_title == ""


def test_another_organizations_bot_settings_are_404(
    app: Flask,
    own: OwnBot,
    make_user: Any,
    make_portal: Any,
) -> None:
    bot_id = own.bot_id
    stranger = make_portal()
    assert stranger.login(make_user().email).status_code == 302
    stranger.create_org("别人的公司")
    page = f"/bots/{bot_id}"

    answering_post = {"answer_threshold": "0.9", "fallback_text": "偷"}
    assert stranger.post(f"{page}/answering", answering_post, page="/bots").status_code == 404
    assert stranger.post(f"{page}/branding", BRANDING, page="/bots").status_code == 404
    assert stored(app, bot_id).fallback_text == ""
