"""/api/v1/api-keys, and what an API key can and cannot reach."""

from __future__ import annotations

import hashlib
import json
import re

import pytest
import sqlalchemy as sa
from flask import Flask

from tests.api import add_member, assert_error
from tests.bots import BOTS, KEYS, api_key_row, create_bot, create_key, key_headers, set_plan
from webapp import create_app
from webapp.bots.models import ApiKey
from webapp.extensions import db

KEY_FORMAT = re.compile(r"^sk_([0-9a-f]{12})_([A-Za-z0-9_-]{40,})$")
LISTED_FIELDS = {"id", "name", "prefix", "bot_id", "created_at", "last_used_at", "revoked_at"}


def key_url(api_key_id: int) -> str:
    return f"{KEYS}/{api_key_id}"


# --- create, list, revoke --------------------------------------------------------


def test_create_key_shows_the_full_key_once_and_stores_only_a_hash(app, api_client, org, user):
    response = api_client.post(KEYS, json={"name": " 官网挂件 "})

    assert response.status_code == 201
    body = response.get_json()
    assert body.keys() == LISTED_FIELDS | {"key"}
    assert body["name"] == "官网挂件"
    assert body["bot_id"] is None
    assert body["last_used_at"] is None and body["revoked_at"] is None
    match = KEY_FORMAT.match(body["key"])
    assert match, body["key"]
    prefix, secret = match.groups()
    assert body["prefix"] == prefix
    with app.app_context():
        row = db.session.get(ApiKey, body["id"])
        assert row is not None
        assert row.secret_hash == hashlib.sha256(secret.encode()).hexdigest()
        assert row.organization_id == org["id"]
        assert row.created_by_id == user.id
        stored = db.session.execute(sa.select(ApiKey.__table__)).mappings().all()
    assert not any(secret in str(value) for row_ in stored for value in row_.values())


def test_list_keys_never_shows_secret_or_hash(app, api_client, org, api_key):
    response = api_client.get(KEYS)

    assert response.status_code == 200
    listed = response.get_json()
    assert [k["id"] for k in listed] == [api_key["id"]]
    assert listed[0].keys() == LISTED_FIELDS
    assert listed[0]["prefix"] == api_key["prefix"]
    text = response.get_data(as_text=True)
    assert api_key["key"].split("_", 2)[2] not in text  # sk_<prefix>_<secret>; "_" may be in it
    assert api_key_row(app, api_key["id"]).secret_hash not in text  # type: ignore[union-attr]


def test_list_keys_is_paginated_newest_first_and_filters_by_bot(api_client, org, bot):
    first = create_key(api_client, "一")
    second = create_key(api_client, "二", bot_id=bot["id"])
    third = create_key(api_client, "三")

    page = api_client.get(KEYS, query_string={"page_size": 2})
    assert [k["id"] for k in page.get_json()] == [third["id"], second["id"]]
    assert json.loads(page.headers["X-Pagination"])["total"] == 3
    bound = api_client.get(KEYS, query_string={"bot_id": bot["id"]})
    assert [k["id"] for k in bound.get_json()] == [second["id"]]
    assert first["id"] not in [k["id"] for k in bound.get_json()]


def test_each_key_is_unique(api_client, org):
    keys = [create_key(api_client, f"k{n}") for n in range(5)]

    assert len({k["key"] for k in keys}) == 5
    assert len({k["prefix"] for k in keys}) == 5


@pytest.mark.parametrize(
    "payload",
    [
        {},
        {"name": ""},
        {"name": "   "},
        {"name": "x" * 101},
        {"name": "k", "bot_id": "1"},
        {"name": "k", "bot_id": 0},
        {"name": "k", "bot_id": 2**31},
        {"name": "k", "key": "sk_chosen_by_me"},
        {"name": "k", "prefix": "abc"},
    ],
)
def test_create_key_invalid_is_422(api_client, org, payload):
    assert_error(api_client.post(KEYS, json=payload), 422, "validation_error")
    assert api_client.get(KEYS).get_json() == []


def test_create_key_for_a_missing_or_foreign_bot_is_404(api_client, org, make_api_client):
    stranger = make_api_client()
    stranger.post("/api/v1/organizations", json={"name": "别人的公司"})
    foreign = create_bot(stranger, "别人的")

    assert_error(
        api_client.post(KEYS, json={"name": "k", "bot_id": foreign["id"]}), 404, "bot_not_found"
    )
    assert_error(api_client.post(KEYS, json={"name": "k", "bot_id": 999999}), 404, "bot_not_found")
    assert api_client.get(KEYS).get_json() == []


def test_revoked_key_gets_401_on_its_next_call(app, client, api_client, api_key):
    headers = key_headers(api_key["key"])
    assert client.get(BOTS, headers=headers).status_code == 200

    response = api_client.delete(key_url(api_key["id"]))

    assert response.status_code == 204
    assert_error(client.get(BOTS, headers=headers), 401, "invalid_api_key")
    assert_error(
        client.get(BOTS, headers=key_headers(api_key["key"], "x-api-key")), 401, "invalid_api_key"
    )
    listed = api_client.get(KEYS).get_json()
    assert listed[0]["revoked_at"] is not None
    # Revoking again changes nothing.
    revoked_at = listed[0]["revoked_at"]
    assert api_client.delete(key_url(api_key["id"])).status_code == 204
    assert api_client.get(KEYS).get_json()[0]["revoked_at"] == revoked_at


def test_missing_key_is_404(api_client, org):
    assert_error(api_client.delete(key_url(999999)), 404, "api_key_not_found")


# --- authenticating bots ------------------------------------------------------------


@pytest.mark.parametrize("scheme", ["bearer", "x-api-key"])
def test_key_authenticates_bot_calls_and_records_last_use(
    app, client, api_client, bot, api_key, scheme
):
    response = client.get(BOTS, headers=key_headers(api_key["key"], scheme))

    assert response.status_code == 200
    assert [b["id"] for b in response.get_json()] == [bot["id"]]
    detail = client.get(f"{BOTS}/{bot['id']}", headers=key_headers(api_key["key"], scheme))
    assert detail.get_json()["name"] == "售前客服"
    listed = api_client.get(KEYS).get_json()
    assert listed[0]["last_used_at"] is not None


@pytest.mark.parametrize(
    "presented",
    [
        "sk_",
        "sk_deadbeef",
        "sk_deadbeef_wrong",
        "sk_nothex!!_secret",
    ],
)
def test_unknown_or_malformed_key_is_401(client, org, presented):
    assert_error(client.get(BOTS, headers=key_headers(presented)), 401, "invalid_api_key")
    assert_error(
        client.get(BOTS, headers=key_headers(presented, "x-api-key")), 401, "invalid_api_key"
    )


def test_key_with_the_wrong_secret_is_401(client, api_key):
    prefix = api_key["prefix"]

    assert_error(
        client.get(BOTS, headers=key_headers(f"sk_{prefix}_{'A' * 43}")), 401, "invalid_api_key"
    )


def test_key_bound_to_a_bot_sees_only_that_bot(app, client, api_client, org):
    set_plan(app, org["id"], "pro")
    mine, other = create_bot(api_client, "我的"), create_bot(api_client, "别的")
    bound = create_key(api_client, "绑定", bot_id=mine["id"])
    headers = key_headers(bound["key"])

    assert [b["id"] for b in client.get(BOTS, headers=headers).get_json()] == [mine["id"]]
    assert client.get(f"{BOTS}/{mine['id']}", headers=headers).status_code == 200
    assert_error(client.get(f"{BOTS}/{other['id']}", headers=headers), 404, "bot_not_found")
    # An unbound key sees every bot of its organization.
    unbound = create_key(api_client, "通用")
    listed = client.get(BOTS, headers=key_headers(unbound["key"])).get_json()
    assert [b["id"] for b in listed] == [mine["id"], other["id"]]


def test_key_sees_only_its_own_organization(app, client, api_key, org, make_api_client):
    stranger = make_api_client()
    theirs = stranger.post("/api/v1/organizations", json={"name": "别人的公司"}).get_json()
    foreign = create_bot(stranger, "别人的")
    headers = key_headers(api_key["key"])

    assert_error(client.get(f"{BOTS}/{foreign['id']}", headers=headers), 404, "bot_not_found")
    # The key implies its organization; naming another one changes nothing.
    listed = client.get(BOTS, headers={**headers, "X-Organization-ID": str(theirs["id"])})
    assert listed.status_code == 200
    assert listed.get_json() == []


@pytest.mark.parametrize(
    ("method", "path", "payload"),
    [
        ("POST", BOTS, {"name": "钥匙造的"}),
        ("POST", BOTS, {}),  # refused before the body is read: 401, not 422
        ("PATCH", f"{BOTS}/{{bot}}", {"name": "钥匙改的"}),
        ("PATCH", f"{BOTS}/{{bot}}", {"unknown": 1}),
        ("DELETE", f"{BOTS}/{{bot}}", None),
        ("GET", KEYS, None),
        ("POST", KEYS, {"name": "钥匙造的钥匙"}),
        ("POST", KEYS, {"bot_id": "x"}),
        ("DELETE", f"{KEYS}/{{key}}", None),
    ],
)
@pytest.mark.parametrize("scheme", ["bearer", "x-api-key"])
def test_key_cannot_manage_bots_or_keys(
    app, client, api_client, org, bot, api_key, method, path, payload, scheme
):
    set_plan(app, org["id"], "pro")  # so that a refusal is about the key, not the limit
    url = path.format(bot=bot["id"], key=api_key["id"])

    response = client.open(
        url, method=method, json=payload, headers=key_headers(api_key["key"], scheme)
    )

    assert_error(response, 401, "api_key_not_allowed")
    # The same bot, whose widget's daily limit now follows the pro plan's quota.
    assert api_client.get(f"{BOTS}/{bot['id']}").get_json() == {**bot, "widget_daily_limit": 10_000}
    assert [b["id"] for b in api_client.get(BOTS).get_json()] == [bot["id"]]
    assert [k["revoked_at"] for k in api_client.get(KEYS).get_json()] == [None]


def _people_endpoints(app: Flask) -> list[tuple[str, str]]:
    """Every API operation for people: organizations, members, billing, /auth/me and sessions.

    Public ones (plans, payment notifies, register, login) take no credentials at all.
    """
    people_prefixes = (
        "/api/v1/organizations",
        "/api/v1/subscriptions",
        "/api/v1/payments",
        "/api/v1/billing",
    )
    people_auth = ("/api/v1/auth/me", "/api/v1/auth/logout", "/api/v1/auth/refresh")
    found = []
    for rule in app.url_map.iter_rules():
        path = rule.rule
        public = path.endswith(("/plans", "/notify", "/refund-notify"))
        if (path.startswith(people_prefixes) and not public) or path in people_auth:
            for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
                found.append((method, path))
    return sorted(found, key=lambda endpoint: (endpoint[1], endpoint[0]))


# Read from an app of the same configuration at collection time, so that each
# operation is a test case of its own, billing and payments included as they land.
PEOPLE_ENDPOINTS = _people_endpoints(create_app("testing"))


def test_people_endpoints_are_found():
    paths = {path for _method, path in PEOPLE_ENDPOINTS}
    assert {"/api/v1/organizations", "/api/v1/auth/me"} <= paths
    assert any(path.endswith("/members") for path in paths)


@pytest.mark.parametrize(
    ("method", "rule"), PEOPLE_ENDPOINTS, ids=[f"{m} {r}" for m, r in PEOPLE_ENDPOINTS]
)
@pytest.mark.parametrize("scheme", ["bearer", "x-api-key"])
def test_key_never_reaches_peoples_endpoints(client, org, api_key, method, rule, scheme):
    url = re.sub(r"<(?:\w+:)?\w+>", str(org["id"]), rule)

    response = client.open(url, method=method, json={}, headers=key_headers(api_key["key"], scheme))

    assert response.status_code == 401, response.get_json()
    assert response.get_json()["error"] in {
        "authentication_required",  # X-API-Key: no access token at all
        "token_invalid",  # Bearer sk_...: not a JWT
        "api_key_not_allowed",  # a valid key, but not for this operation
    }


# --- roles and tenants ------------------------------------------------------------


def test_member_lists_keys_but_cannot_create_or_revoke(
    app, org, api_key, make_user, make_api_client
):
    member = make_user()
    add_member(app, org["id"], member, "member")
    as_member = make_api_client(member)

    listed = as_member.get(KEYS)
    assert [k["id"] for k in listed.get_json()] == [api_key["id"]]
    assert_error(as_member.post(KEYS, json={"name": "我的"}), 403, "forbidden")
    assert_error(as_member.delete(key_url(api_key["id"])), 403, "forbidden")
    assert api_key_row(app, api_key["id"]).revoked_at is None  # type: ignore[union-attr]


def test_admin_manages_keys(app, client, org, make_user, make_api_client):
    admin = make_user()
    add_member(app, org["id"], admin, "admin")
    as_admin = make_api_client(admin)

    created = create_key(as_admin, "管理员的")
    assert client.get(BOTS, headers=key_headers(created["key"])).status_code == 200
    assert as_admin.delete(key_url(created["id"])).status_code == 204
    assert_error(client.get(BOTS, headers=key_headers(created["key"])), 401, "invalid_api_key")


def test_another_organizations_key_is_404(app, client, api_key, org, make_api_client):
    stranger = make_api_client()
    stranger.post("/api/v1/organizations", json={"name": "别人的公司"})

    assert stranger.get(KEYS).get_json() == []
    assert_error(stranger.delete(key_url(api_key["id"])), 404, "api_key_not_found")
    assert client.get(BOTS, headers=key_headers(api_key["key"])).status_code == 200
    assert_error(
        stranger.get(KEYS, headers={"X-Organization-ID": str(org["id"])}), 404, "not_found"
    )


def test_keys_need_authentication(client):
    assert_error(client.get(KEYS), 401, "authentication_required")
    assert_error(client.post(KEYS, json={"name": "k"}), 401, "authentication_required")
    assert_error(client.delete(key_url(1)), 401, "authentication_required")
