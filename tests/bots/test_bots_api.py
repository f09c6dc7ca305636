"""/api/v1/bots: create, list, configure, disable, delete; plan limits; roles; tenants."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from tests.api import add_member, assert_error
from tests.bots import BOTS, bot_names, create_bot, create_key, key_headers, set_plan
from webapp.billing import services as billing
from webapp.bots.models import (
    DEFAULT_ANSWER_THRESHOLD,
    DEFAULT_HANDOFF_WORDS,
    DEFAULT_SUGGEST_THRESHOLD,
)
from webapp.db import utcnow
from webapp.extensions import db

BOT_FIELDS = {
    "id",
    "name",
    "description",
    "greeting",
    "is_enabled",
    "created_at",
    "updated_at",
    "answer_threshold",
    "suggest_threshold",
    "handoff_words",
    "fallback_text",
    "knowledge_version",
    "publishable_key",
    "allowed_origins",
    "widget_title",
    "widget_color",
    "widget_logo_url",
    "show_powered_by",
    "widget_daily_cap",
    "widget_daily_limit",
}


def bot_url(bot_id: int) -> str:
    return f"{BOTS}/{bot_id}"


# --- create and list ------------------------------------------------------------


def test_create_bot_returns_it_trimmed_and_enabled(app, api_client, org):
    response = api_client.post(
        BOTS, json={"name": "  售前客服 ", "description": " 回答售前问题 ", "greeting": "您好！"}
    )

    assert response.status_code == 201
    body = response.get_json()
    assert body.keys() == BOT_FIELDS
    assert body["name"] == "售前客服"
    assert body["description"] == "回答售前问题"
    assert body["greeting"] == "您好！"
    assert body["is_enabled"] is True
    assert body["created_at"].endswith("+00:00")
    assert body["publishable_key"].startswith("pk_")
    assert (body["answer_threshold"], body["allowed_origins"], body["show_powered_by"]) == (
        DEFAULT_ANSWER_THRESHOLD,
        [],
        True,
    )
    assert body["suggest_threshold"] == DEFAULT_SUGGEST_THRESHOLD
    assert body["handoff_words"] == list(DEFAULT_HANDOFF_WORDS)
    assert bot_names(app, org["id"]) == ["售前客服"]


def test_create_bot_needs_only_a_name(api_client, org):
    body = create_bot(api_client, "客服")

    assert (body["description"], body["greeting"]) == ("", "")


def test_list_bots_is_paginated(app, api_client, org):
    set_plan(app, org["id"], "pro")
    for n in range(3):
        create_bot(api_client, f"客服 {n}")

    response = api_client.get(BOTS, query_string={"page": 2, "page_size": 2})

    assert response.status_code == 200
    assert [b["name"] for b in response.get_json()] == ["客服 2"]
    pagination = json.loads(response.headers["X-Pagination"])
    assert pagination["total"] == 3
    assert pagination["page"] == 2


@pytest.mark.parametrize(
    "payload",
    [
        {},
        {"name": ""},
        {"name": "   "},
        {"name": "x" * 101},
        {"name": 123},
        {"name": "客服\x00"},
        {"name": "客服", "description": "x" * 501},
        {"name": "客服", "greeting": "x" * 501},
        {"name": "客服", "is_enabled": False},
        {"name": "客服", "organization_id": 1},
    ],
)
def test_create_bot_invalid_is_422(app, api_client, org, payload):
    response = api_client.post(BOTS, json=payload)

    assert_error(response, 422, "validation_error")
    assert bot_names(app, org["id"]) == []


def test_create_bot_accepts_the_longest_values(api_client, org):
    body = create_bot(api_client, "名" * 100, description="述" * 500, greeting="好" * 500)

    assert len(body["name"]) == 100


# --- plan limits ----------------------------------------------------------------


def test_free_plan_allows_one_bot(app, api_client, org, bot):
    response = api_client.post(BOTS, json={"name": "第二个"})

    body = assert_error(response, 403, "plan_limit_reached")
    assert body["errors"] == {"limit": ["1"]}
    assert "1" in body["message"]
    assert bot_names(app, org["id"]) == ["售前客服"]


def test_pro_plan_allows_ten_bots(app, api_client, org):
    with app.app_context():
        billing.grant_plan(org["id"], "pro", 1)
        db.session.commit()
    for n in range(10):
        create_bot(api_client, f"客服 {n}")

    response = api_client.post(BOTS, json={"name": "第十一个"})

    body = assert_error(response, 403, "plan_limit_reached")
    assert body["errors"] == {"limit": ["10"]}


def test_enterprise_plan_has_no_bot_limit(app, api_client, org):
    set_plan(app, org["id"], "enterprise")
    for n in range(12):
        create_bot(api_client, f"客服 {n}")

    assert len(bot_names(app, org["id"])) == 12


def test_downgrade_keeps_existing_bots_but_blocks_new_ones(app, api_client, org):
    with app.app_context():
        billing.grant_plan(org["id"], "pro", 1)
        db.session.commit()
    bots = [create_bot(api_client, f"客服 {n}") for n in range(3)]
    with app.app_context():  # the paid month ends without renewal: back to free
        assert billing.end_finished_periods(now=utcnow() + timedelta(days=40)) == 1
        db.session.commit()
        assert billing.plan_of(org["id"]).code == "free"

    listed = api_client.get(BOTS).get_json()
    assert [b["id"] for b in listed] == [b["id"] for b in bots]
    renamed = api_client.patch(bot_url(bots[0]["id"]), json={"name": "改名"})
    assert renamed.status_code == 200
    body = assert_error(api_client.post(BOTS, json={"name": "新的"}), 403, "plan_limit_reached")
    assert body["errors"] == {"limit": ["1"]}

    # Still over the limit with one deleted; room again only below it.
    assert api_client.delete(bot_url(bots[1]["id"])).status_code == 204
    assert_error(api_client.post(BOTS, json={"name": "新的"}), 403, "plan_limit_reached")
    assert api_client.delete(bot_url(bots[2]["id"])).status_code == 204
    assert_error(api_client.post(BOTS, json={"name": "新的"}), 403, "plan_limit_reached")
    assert api_client.delete(bot_url(bots[0]["id"])).status_code == 204
    assert create_bot(api_client, "新的")["name"] == "新的"


# --- read, configure, disable, delete --------------------------------------------


def test_get_bot(api_client, bot):
    response = api_client.get(bot_url(bot["id"]))

    assert response.status_code == 200
    assert response.get_json() == bot


def test_rename_and_configure_bot(api_client, bot):
    response = api_client.patch(
        bot_url(bot["id"]), json={"name": " 售后客服 ", "greeting": "欢迎回来", "description": ""}
    )

    assert response.status_code == 200
    body = response.get_json()
    assert (body["name"], body["greeting"], body["description"]) == ("售后客服", "欢迎回来", "")
    assert api_client.get(bot_url(bot["id"])).get_json()["name"] == "售后客服"


def test_disable_and_enable_bot(api_client, bot):
    disabled = api_client.patch(bot_url(bot["id"]), json={"is_enabled": False})
    assert disabled.status_code == 200
    assert disabled.get_json()["is_enabled"] is False
    assert api_client.get(bot_url(bot["id"])).get_json()["is_enabled"] is False

    enabled = api_client.patch(bot_url(bot["id"]), json={"is_enabled": True})
    assert enabled.get_json()["is_enabled"] is True


def test_empty_patch_changes_nothing(api_client, bot):
    response = api_client.patch(bot_url(bot["id"]), json={})

    assert response.status_code == 200
    assert {k: v for k, v in response.get_json().items() if k != "updated_at"} == {
        k: v for k, v in bot.items() if k != "updated_at"
    }


@pytest.mark.parametrize(
    "payload",
    [
        {"name": ""},
        {"name": " "},
        {"name": "x" * 101},
        {"greeting": "x" * 501},
        {"greeting": None},
        {"is_enabled": "maybe"},
        {"id": 5},
        {"organization_id": 5},
        {"suggest_threshold": -0.1},
        {"suggest_threshold": 1.5},
        {"suggest_threshold": DEFAULT_ANSWER_THRESHOLD + 0.01},
        {"answer_threshold": 0.3, "suggest_threshold": 0.4},
        {"handoff_words": "人工"},
        {"handoff_words": ["一二三四五六七八九十一"]},
        {"handoff_words": [f"词{n}" for n in range(21)]},
        {"handoff_words": [None]},
    ],
)
def test_patch_bot_invalid_is_422(api_client, bot, payload):
    response = api_client.patch(bot_url(bot["id"]), json=payload)

    assert_error(response, 422, "validation_error")
    assert api_client.get(bot_url(bot["id"])).get_json() == bot


def test_thresholds_and_handoff_words(api_client, bot):
    response = api_client.patch(
        bot_url(bot["id"]),
        json={
            "answer_threshold": 0.8,
            "suggest_threshold": 0.8,
            "handoff_words": [" 投诉 ", "人工", "投诉", ""],
        },
    )

    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert (body["answer_threshold"], body["suggest_threshold"]) == (0.8, 0.8)
    assert body["handoff_words"] == ["投诉", "人工"]
    # The answer threshold alone, below the suggest threshold, takes it down along.
    lowered = api_client.patch(bot_url(bot["id"]), json={"answer_threshold": 0.5}).get_json()
    assert (lowered["answer_threshold"], lowered["suggest_threshold"]) == (0.5, 0.5)
    raised = api_client.patch(bot_url(bot["id"]), json={"answer_threshold": 0.9}).get_json()
    assert (raised["answer_threshold"], raised["suggest_threshold"]) == (0.9, 0.5)
    assert (
        api_client.patch(bot_url(bot["id"]), json={"handoff_words": []}).get_json()["handoff_words"]
        == []
    )


def test_delete_bot(app, api_client, org, bot):
    response = api_client.delete(bot_url(bot["id"]))

    assert response.status_code == 204
    assert response.get_data() == b""
    assert_error(api_client.get(bot_url(bot["id"])), 404, "bot_not_found")
    assert_error(api_client.delete(bot_url(bot["id"])), 404, "bot_not_found")
    assert bot_names(app, org["id"]) == []


def test_deleting_a_bot_deletes_its_keys(app, client, api_client, bot, org):
    bound = create_key(api_client, "绑定", bot_id=bot["id"])
    unbound = create_key(api_client, "通用")

    assert api_client.delete(bot_url(bot["id"])).status_code == 204

    assert_error(client.get(BOTS, headers=key_headers(bound["key"])), 401, "invalid_api_key")
    assert client.get(BOTS, headers=key_headers(unbound["key"])).status_code == 200
    listed = api_client.get("/api/v1/api-keys").get_json()
    assert [k["id"] for k in listed] == [unbound["id"]]


def test_missing_bot_is_404(api_client, org):
    assert_error(api_client.get(bot_url(999999)), 404, "bot_not_found")
    assert_error(api_client.patch(bot_url(999999), json={"name": "x"}), 404, "bot_not_found")
    assert_error(api_client.delete(bot_url(999999)), 404, "bot_not_found")


# --- roles --------------------------------------------------------------------------


def test_member_can_read_bots_but_not_change_them(app, org, bot, make_user, make_api_client):
    member = make_user()
    add_member(app, org["id"], member, "member")
    as_member = make_api_client(member)

    assert [b["id"] for b in as_member.get(BOTS).get_json()] == [bot["id"]]
    assert as_member.get(bot_url(bot["id"])).status_code == 200
    set_plan(app, org["id"], "pro")  # so that a refusal is about the role, not the limit
    assert_error(as_member.post(BOTS, json={"name": "我的"}), 403, "forbidden")
    assert_error(as_member.patch(bot_url(bot["id"]), json={"name": "改"}), 403, "forbidden")
    assert_error(as_member.delete(bot_url(bot["id"])), 403, "forbidden")
    assert bot_names(app, org["id"]) == ["售前客服"]


def test_admin_manages_bots(app, org, make_user, make_api_client):
    admin = make_user()
    add_member(app, org["id"], admin, "admin")
    as_admin = make_api_client(admin)

    created = create_bot(as_admin, "管理员的")
    assert as_admin.patch(bot_url(created["id"]), json={"is_enabled": False}).status_code == 200
    assert as_admin.delete(bot_url(created["id"])).status_code == 204


# --- tenants and organization choice -------------------------------------------------


def test_another_organizations_bot_is_404(app, bot, org, make_api_client):
    stranger = make_api_client()
    stranger.post("/api/v1/organizations", json={"name": "别人的公司"})

    assert stranger.get(BOTS).get_json() == []
    assert_error(stranger.get(bot_url(bot["id"])), 404, "bot_not_found")
    assert_error(stranger.patch(bot_url(bot["id"]), json={"name": "偷"}), 404, "bot_not_found")
    assert_error(stranger.delete(bot_url(bot["id"])), 404, "bot_not_found")
    # Naming the other organization does not help: not a member, 404.
    header = {"X-Organization-ID": str(org["id"])}
    assert_error(stranger.get(BOTS, headers=header), 404, "not_found")
    assert_error(stranger.get(bot_url(bot["id"]), headers=header), 404, "not_found")
    assert bot_names(app, org["id"]) == ["售前客服"]


def test_several_organizations_need_the_header(app, api_client, org, bot):
    other = api_client.post("/api/v1/organizations", json={"name": "第二家"}).get_json()

    assert_error(api_client.get(BOTS), 400, "organization_required")
    mine = api_client.get(BOTS, headers={"X-Organization-ID": str(org["id"])})
    assert [b["id"] for b in mine.get_json()] == [bot["id"]]
    theirs = api_client.get(BOTS, query_string={"organization_id": other["id"]})
    assert theirs.get_json() == []
    # The bot lives in the first organization only.
    header = {"X-Organization-ID": str(other["id"])}
    assert_error(api_client.get(bot_url(bot["id"]), headers=header), 404, "bot_not_found")
    created = api_client.post(BOTS, json={"name": "第二家的"}, headers=header)
    assert created.status_code == 201
    assert bot_names(app, other["id"]) == ["第二家的"]


@pytest.mark.parametrize("value", ["abc", "²", "-1", "1.5", ""])
def test_bad_organization_header_is_422(api_client, org, value):
    response = api_client.get(BOTS, headers={"X-Organization-ID": value})

    if value == "":  # an empty header is no choice: the only organization
        assert response.status_code == 200
    else:
        assert_error(response, 422, "validation_error")


def test_bots_need_authentication(client):
    assert_error(client.get(BOTS), 401, "authentication_required")
    assert_error(client.post(BOTS, json={"name": "x"}), 401, "authentication_required")


def test_user_without_organization_is_told_to_pick_one(api_client):
    assert_error(api_client.get(BOTS), 400, "organization_required")


def test_bot_limit_is_per_organization(app, api_client, org, bot):
    other = api_client.post("/api/v1/organizations", json={"name": "第二家"}).get_json()

    created = api_client.post(
        BOTS, json={"name": "另一个"}, headers={"X-Organization-ID": str(other["id"])}
    )

    assert created.status_code == 201
    assert bot_names(app, org["id"]) == ["售前客服"]
    assert bot_names(app, other["id"]) == ["另一个"]
