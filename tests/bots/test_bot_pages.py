"""Portal pages for bots (/bots, /bots/<id>) and API keys (/api-keys)."""

from __future__ import annotations

import re
from typing import Any

import pytest
import sqlalchemy as sa

from tests.api import add_member, assert_error
from tests.bots import BOTS, bot_names, key_headers, set_plan
from tests.portal.conftest import Portal, org_id_by_name, zh
from webapp.bots.models import ApiKey, Bot
from webapp.extensions import db

NEW_KEY = re.compile(r'id="new-api-key-value" value="(sk_[^"]+)"')


@pytest.fixture
def owner(logged_in: Portal) -> Portal:
    """`user`, logged in, owner of 测试公司."""
    logged_in.create_org("测试公司")
    return logged_in


@pytest.fixture
def org_id(app: Any, owner: Portal) -> int:
    return org_id_by_name(app, "测试公司")


def bot_id_by_name(app: Any, org_id: int, name: str) -> int:
    with app.app_context():
        bot_id = db.session.scalar(
            sa.select(Bot.id).where(Bot.organization_id == org_id, Bot.name == name)
        )
    assert bot_id is not None, name
    return bot_id


def create_bot(portal: Portal, name: str, **fields: str) -> Any:
    return portal.post(
        "/bots", {"name": name, "description": "", "greeting": "", **fields}, page="/bots"
    )


@pytest.fixture
def bot_id(app: Any, owner: Portal, org_id: int) -> int:
    response = create_bot(owner, "售前客服", description="回答售前问题", greeting="您好！")
    assert response.status_code == 302
    return bot_id_by_name(app, org_id, "售前客服")


def create_key(portal: Portal, name: str, bot_id: int | None = None) -> tuple[Any, str]:
    response = portal.post(
        "/api-keys",
        {"name": name, "bot_id": "" if bot_id is None else str(bot_id)},
        page="/api-keys",
    )
    assert response.status_code == 200, response.status_code
    match = NEW_KEY.search(response.get_data(as_text=True))
    assert match, "the new key is not on the page"
    return response, match.group(1)


def member_portal(app: Any, org_id: int, make_user: Any, make_portal: Any, role: str) -> Portal:
    person = make_user()
    add_member(app, org_id, person, role)
    browser = make_portal()
    assert browser.login(person.email).status_code == 302
    return browser


# --- bots ----------------------------------------------------------------------


def test_bots_page_without_an_organization_goes_to_the_dashboard(logged_in: Portal) -> None:
    response = logged_in.get("/bots")

    assert response.status_code == 302
    assert response.headers["Location"] == "/dashboard"


def test_bots_page_needs_login(portal: Portal) -> None:
    response = portal.get("/bots")

    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login")


def test_bots_page_shows_the_plan_limit_and_a_create_form(owner: Portal, org_id: int) -> None:
    html = owner.page("/bots")

    assert re.search(r'id="bot-limit">\s*0 / 1\s*<', html)
    assert 'id="create-bot-form"' in html
    assert 'id="no-bots"' in html


def test_create_bot_from_the_portal(app: Any, owner: Portal, org_id: int) -> None:
    response = create_bot(owner, " 售前客服 ", description="回答售前问题", greeting="您好！")

    assert response.status_code == 302
    bot_id = bot_id_by_name(app, org_id, "售前客服")
    assert response.headers["Location"] == f"/bots/{bot_id}"
    detail = owner.page(f"/bots/{bot_id}")
    assert zh(app, "Bot %(name)s created.", name="售前客服") in detail
    assert re.search(r'id="bot-name">\s*售前客服\s*<', detail)
    assert "您好！" in detail
    listing = owner.page("/bots")
    assert re.search(r'id="bot-limit">\s*1 / 1\s*<', listing)
    assert f'data-bot-id="{bot_id}"' in listing


def test_bot_limit_reached_hides_the_form_and_refuses_more(
    app: Any, owner: Portal, org_id: int, bot_id: int
) -> None:
    html = owner.page("/bots")
    assert 'id="create-bot-form"' not in html
    assert 'id="bot-limit-reached"' in html
    assert 'href="/plans"' in html

    response = create_bot(owner, "第二个")  # a stale page, or a crafted request

    assert response.status_code == 302
    assert response.headers["Location"] == "/bots"
    message = zh(app, "Your plan allows %(limit)d bot(s); upgrade to add more.", limit=1)
    assert message in owner.page("/bots")
    assert bot_names(app, org_id) == ["售前客服"]


def test_downgraded_plan_shows_existing_bots_over_the_limit(
    app: Any, owner: Portal, org_id: int
) -> None:
    set_plan(app, org_id, "pro")
    for name in ("一号", "二号", "三号"):
        assert create_bot(owner, name).status_code == 302
    assert re.search(r'id="bot-limit">\s*3 / 10\s*<', owner.page("/bots"))
    set_plan(app, org_id, "free")

    html = owner.page("/bots")

    assert re.search(r'id="bot-limit">\s*3 / 1\s*<', html)
    assert all(name in html for name in ("一号", "二号", "三号"))
    assert 'id="create-bot-form"' not in html
    assert create_bot(owner, "四号").status_code == 302
    assert bot_names(app, org_id) == ["一号", "二号", "三号"]


def test_unlimited_plan_shows_infinity(app: Any, owner: Portal, org_id: int) -> None:
    set_plan(app, org_id, "enterprise")

    assert re.search(r'id="bot-limit">\s*0 / ∞\s*<', owner.page("/bots"))


@pytest.mark.parametrize(
    "fields", [{"name": ""}, {"name": "x" * 101}, {"name": "客服", "greeting": "x" * 501}]
)
def test_invalid_bot_form_comes_back_with_errors(
    app: Any, owner: Portal, org_id: int, fields: dict[str, str]
) -> None:
    response = create_bot(owner, **fields)  # type: ignore[arg-type]

    assert response.status_code == 200
    assert "is-invalid" in response.get_data(as_text=True)
    assert bot_names(app, org_id) == []


def test_edit_bot(app: Any, owner: Portal, bot_id: int) -> None:
    page = f"/bots/{bot_id}"
    html = owner.page(page)
    assert 'id="bot-form"' in html and "回答售前问题" in html

    response = owner.post(
        page, {"name": "售后客服", "description": "处理退换货", "greeting": "欢迎回来"}, page=page
    )

    assert response.status_code == 302
    assert response.headers["Location"] == page
    html = owner.page(page)
    assert zh(app, "Bot saved.") in html
    assert re.search(r'id="bot-name">\s*售后客服\s*<', html)
    with app.app_context():
        bot = db.session.get(Bot, bot_id)
        assert bot is not None
        assert (bot.name, bot.description, bot.greeting) == ("售后客服", "处理退换货", "欢迎回来")


def test_blank_name_is_refused_on_edit(app: Any, owner: Portal, bot_id: int) -> None:
    page = f"/bots/{bot_id}"

    response = owner.post(page, {"name": "   ", "description": "", "greeting": ""}, page=page)

    assert response.status_code == 200
    assert "is-invalid" in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.get(Bot, bot_id).name == "售前客服"  # type: ignore[union-attr]


def test_disable_and_enable_bot(app: Any, owner: Portal, bot_id: int) -> None:
    page = f"/bots/{bot_id}"
    assert 'data-enabled="true"' in owner.page(page)

    assert owner.post(f"{page}/disable", page=page).status_code == 302
    html = owner.page(page)
    assert 'data-enabled="false"' in html
    assert f'action="{page}/enable"' in html

    assert owner.post(f"{page}/enable", page=page).status_code == 302
    assert 'data-enabled="true"' in owner.page(page)


def test_delete_bot(app: Any, owner: Portal, org_id: int, bot_id: int) -> None:
    page = f"/bots/{bot_id}"

    response = owner.post(f"{page}/delete", page=page)

    assert response.status_code == 302
    assert response.headers["Location"] == "/bots"
    assert zh(app, "Bot %(name)s deleted.", name="售前客服") in owner.page("/bots")
    assert bot_names(app, org_id) == []
    assert owner.get(page).status_code == 404


def test_member_sees_bots_but_cannot_change_them(
    app: Any, org_id: int, bot_id: int, make_user: Any, make_portal: Any
) -> None:
    set_plan(app, org_id, "pro")
    member = member_portal(app, org_id, make_user, make_portal, "member")
    page = f"/bots/{bot_id}"

    listing = member.page("/bots")
    assert "售前客服" in listing
    assert 'id="create-bot-form"' not in listing
    detail = member.page(page)
    assert 'id="bot-form"' not in detail and 'id="delete-bot"' not in detail
    assert 'id="bot-settings"' in detail

    assert create_bot(member, "我的").status_code == 403
    edit = {"name": "改", "description": "", "greeting": ""}
    assert member.post(page, edit, page=page).status_code == 403
    assert member.post(f"{page}/disable", page=page).status_code == 403
    assert member.post(f"{page}/delete", page=page).status_code == 403
    assert bot_names(app, org_id) == ["售前客服"]


def test_admin_manages_bots_in_the_portal(
    app: Any, org_id: int, bot_id: int, make_user: Any, make_portal: Any
) -> None:
    admin = member_portal(app, org_id, make_user, make_portal, "admin")
    page = f"/bots/{bot_id}"

    assert 'id="bot-form"' in admin.page(page)
    assert admin.post(f"{page}/disable", page=page).status_code == 302
    assert admin.post(f"{page}/delete", page=page).status_code == 302
    assert bot_names(app, org_id) == []


def test_another_organizations_bot_is_404(
    app: Any, bot_id: int, make_user: Any, make_portal: Any
) -> None:
    stranger = make_portal()
    assert stranger.login(make_user().email).status_code == 302
    stranger.create_org("别人的公司")
    page = f"/bots/{bot_id}"

    assert stranger.get(page).status_code == 404
    edit = {"name": "偷", "description": "", "greeting": ""}
    assert stranger.post(page, edit, page="/bots").status_code == 404
    assert stranger.post(f"{page}/disable", page="/bots").status_code == 404
    assert stranger.post(f"{page}/delete", page="/bots").status_code == 404
    assert "售前客服" not in stranger.page("/bots")


def test_a_bot_of_another_of_my_organizations_is_404_until_i_switch(
    app: Any, owner: Portal, org_id: int, bot_id: int
) -> None:
    owner.create_org("第二家")  # now the current organization

    assert owner.get(f"/bots/{bot_id}").status_code == 404
    owner.post(f"/organizations/{org_id}/switch", page="/dashboard")
    assert owner.get(f"/bots/{bot_id}").status_code == 200


# --- API keys ---------------------------------------------------------------------


def test_create_key_shows_it_once(app: Any, client: Any, owner: Portal, org_id: int) -> None:
    response, key = create_key(owner, "官网挂件")

    assert response.headers["Cache-Control"] == "no-store"
    html = response.get_data(as_text=True)
    assert 'id="copy-api-key"' in html
    assert 'value="官网挂件"' not in html  # the form is blank again
    assert zh(app, "Copy it now: it is shown only once and cannot be shown again.") in html
    with app.app_context():
        api_key = db.session.scalar(sa.select(ApiKey).where(ApiKey.organization_id == org_id))
        assert api_key is not None
        prefix, secret_hash = api_key.prefix, api_key.secret_hash
    assert key.startswith(f"sk_{prefix}_")
    # Listed afterwards by prefix only.
    listing = owner.page("/api-keys")
    assert f"sk_{prefix}_" in listing
    assert key not in listing
    assert key.split("_", 2)[2] not in listing  # sk_<prefix>_<secret>; "_" may be in it
    assert secret_hash not in listing
    assert 'id="new-api-key"' not in listing
    # And it works for bots.
    assert client.get(BOTS, headers=key_headers(key)).status_code == 200


def test_create_key_bound_to_a_bot(app: Any, client: Any, owner: Portal, bot_id: int) -> None:
    form = owner.page(f"/api-keys?bot_id={bot_id}")
    assert re.search(rf'<option selected value="{bot_id}">|<option value="{bot_id}" selected', form)

    _response, key = create_key(owner, "绑定的", bot_id)

    with app.app_context():
        assert db.session.scalar(sa.select(ApiKey.bot_id).where(ApiKey.name == "绑定的")) == bot_id
    detail = owner.page(f"/bots/{bot_id}")
    assert 'id="bot-keys"' in detail and "绑定的" in detail
    assert [b["id"] for b in client.get(BOTS, headers=key_headers(key)).get_json()] == [bot_id]


def test_create_key_for_another_organizations_bot_is_refused(
    app: Any, owner: Portal, make_user: Any, make_portal: Any
) -> None:
    stranger = make_portal()
    assert stranger.login(make_user().email).status_code == 302
    theirs = stranger.create_org("别人的公司")
    assert create_bot(stranger, "别人的").status_code == 302
    foreign = bot_id_by_name(app, theirs, "别人的")

    response = owner.post("/api-keys", {"name": "偷", "bot_id": str(foreign)}, page="/api-keys")

    assert response.status_code == 200
    assert "is-invalid" in response.get_data(as_text=True)
    assert not NEW_KEY.search(response.get_data(as_text=True))
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(ApiKey)) == 0


def test_key_needs_a_name(app: Any, owner: Portal, org_id: int) -> None:
    response = owner.post("/api-keys", {"name": "", "bot_id": ""}, page="/api-keys")

    assert response.status_code == 200
    assert "is-invalid" in response.get_data(as_text=True)
    assert not NEW_KEY.search(response.get_data(as_text=True))


def test_revoke_key_from_the_portal(app: Any, client: Any, owner: Portal, bot_id: int) -> None:
    _response, key = create_key(owner, "要撤销的", bot_id)
    with app.app_context():
        key_id = db.session.scalar(sa.select(ApiKey.id).where(ApiKey.name == "要撤销的"))
    page = f"/bots/{bot_id}"

    response = owner.post(f"/api-keys/{key_id}/revoke", {"next": page}, page=page)

    assert response.status_code == 302
    assert response.headers["Location"] == page
    assert zh(app, "API key %(name)s revoked.", name="要撤销的") in owner.page(page)
    assert_error(client.get(BOTS, headers=key_headers(key)), 401, "invalid_api_key")
    assert zh(app, "Revoked") in owner.page("/api-keys")


def test_revoke_does_not_redirect_off_site(app: Any, owner: Portal, org_id: int) -> None:
    create_key(owner, "k")
    with app.app_context():
        key_id = db.session.scalar(sa.select(ApiKey.id).where(ApiKey.name == "k"))

    response = owner.post(
        f"/api-keys/{key_id}/revoke", {"next": "//evil.example/"}, page="/api-keys"
    )

    assert response.headers["Location"] == "/api-keys"


def test_member_lists_keys_but_cannot_create_or_revoke(
    app: Any, owner: Portal, org_id: int, make_user: Any, make_portal: Any
) -> None:
    create_key(owner, "官网挂件")
    with app.app_context():
        key_id = db.session.scalar(sa.select(ApiKey.id).where(ApiKey.name == "官网挂件"))
    member = member_portal(app, org_id, make_user, make_portal, "member")

    html = member.page("/api-keys")
    assert "官网挂件" in html
    assert 'id="api-key-form"' not in html
    assert "revoke-key" not in html
    assert member.post("/api-keys", {"name": "我的", "bot_id": ""}, page="/bots").status_code == 403
    assert member.post(f"/api-keys/{key_id}/revoke", page="/bots").status_code == 403
    with app.app_context():
        assert db.session.get(ApiKey, key_id).revoked_at is None  # type: ignore[union-attr]


def test_another_organizations_key_is_404(
    app: Any, owner: Portal, org_id: int, make_user: Any, make_portal: Any
) -> None:
    create_key(owner, "官网挂件")
    with app.app_context():
        key_id = db.session.scalar(sa.select(ApiKey.id).where(ApiKey.name == "官网挂件"))
    stranger = make_portal()
    assert stranger.login(make_user().email).status_code == 302
    stranger.create_org("别人的公司")

    assert "官网挂件" not in stranger.page("/api-keys")
    assert stranger.post(f"/api-keys/{key_id}/revoke", page="/bots").status_code == 404
    with app.app_context():
        assert db.session.get(ApiKey, key_id).revoked_at is None  # type: ignore[union-attr]


def test_navigation_links_to_bots(owner: Portal) -> None:
    html = owner.page("/dashboard")

    assert 'id="nav-bots"' in html and 'href="/bots"' in html
