"""/api/v1/organizations: organizations, members, roles, invitations and tenant isolation."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import pytest
from flask import Flask

from tests.api import add_member, assert_error, role_of
from tests.conftest import ApiClient
from webapp.auth.models import User
from webapp.billing.models import Plan, Subscription
from webapp.errors import AppError
from webapp.extensions import db, mail
from webapp.orgs import services
from webapp.orgs.models import Invitation, Organization

ORGS = "/api/v1/organizations"
INVITE_LINK = re.compile(r"http://\S+/invitations/([A-Za-z0-9_-]+)")


def org_url(organization_id: int, rest: str = "") -> str:
    return f"{ORGS}/{organization_id}{rest}"


def invitation(app: Flask, invitation_id: int) -> Invitation:
    with app.app_context():
        found = db.session.get(Invitation, invitation_id)
        assert found is not None
        return found


def accept(app: Flask, token: str, user: Any) -> None:
    """What the portal's /invitations/<token> page does when the invitee accepts."""
    with app.app_context():
        services.accept_invitation(token, db.session.get(User, user.id))
        db.session.commit()


# --- organizations ------------------------------------------------------------


def test_create_organization_makes_caller_owner_on_free_plan(app, api_client, user):
    response = api_client.post(ORGS, json={"name": "  星辰科技  "})

    assert response.status_code == 201
    body = response.get_json()
    assert body["name"] == "星辰科技"
    assert body["role"] == "owner"
    assert body["member_count"] == 1
    assert body["plan"]["code"] == "free"
    assert body["created_at"]
    with app.app_context():
        plan_code = db.session.scalar(
            db.select(Plan.code)
            .join(Subscription, Subscription.plan_id == Plan.id)
            .where(Subscription.organization_id == body["id"])
        )
        subscriptions = db.session.scalar(
            db.select(db.func.count())
            .select_from(Subscription)
            .where(Subscription.organization_id == body["id"])
        )
    assert plan_code == "free"
    assert subscriptions == 1
    assert role_of(app, body["id"], user.id) == "owner"


@pytest.mark.parametrize(
    "payload", [{}, {"name": ""}, {"name": "x" * 101}, {"name": 123}, {"name": "a", "plan": "pro"}]
)
def test_create_organization_invalid_is_422(app, api_client, payload):
    response = api_client.post(ORGS, json=payload)

    assert_error(response, 422, "validation_error")
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count()).select_from(Organization)) == 0


def test_create_organization_blank_name_is_422(app, api_client):
    assert_error(api_client.post(ORGS, json={"name": "   "}), 422, "validation_error")
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count()).select_from(Organization)) == 0


def test_organizations_require_a_token(client):
    assert_error(client.get(ORGS), 401, "authentication_required")
    assert_error(client.post(ORGS, json={"name": "x"}), 401, "authentication_required")


def test_list_is_paginated_and_only_the_callers(app, api_client, user, make_api_client):
    names = ["A 公司", "B 公司", "C 公司"]
    created = [api_client.post(ORGS, json={"name": n}).get_json()["id"] for n in names]
    make_api_client().post(ORGS, json={"name": "Z 别人的公司"})

    first = api_client.get(ORGS, query_string={"page": 1, "page_size": 2})
    second = api_client.get(ORGS, query_string={"page": 2, "page_size": 2})

    assert first.status_code == 200
    assert [o["name"] for o in first.get_json()] == names[:2]
    assert [o["name"] for o in second.get_json()] == names[2:]
    pagination = json.loads(first.headers["X-Pagination"])
    assert pagination["total"] == 3
    assert pagination["total_pages"] == 2
    assert pagination["page"] == 1
    assert pagination["next_page"] == 2
    assert json.loads(second.headers["X-Pagination"])["page"] == 2
    all_ids = [o["id"] for o in api_client.get(ORGS).get_json()]
    assert sorted(all_ids) == sorted(created)
    assert all(o["role"] == "owner" and o["plan"]["code"] == "free" for o in first.get_json())


def test_list_includes_organizations_joined_as_member(app, api_client, user, make_api_client):
    foreign = make_api_client().post(ORGS, json={"name": "合作方"}).get_json()
    add_member(app, foreign["id"], user, "member")

    listed = api_client.get(ORGS).get_json()

    assert [(o["id"], o["role"], o["member_count"]) for o in listed] == [
        (foreign["id"], "member", 2)
    ]


def test_get_organization(app, api_client, org, make_user):
    add_member(app, org["id"], make_user(), "member")

    response = api_client.get(org_url(org["id"]))

    assert response.status_code == 200
    body = response.get_json()
    assert body["id"] == org["id"]
    assert body["name"] == "测试公司"
    assert body["member_count"] == 2
    assert body["plan"] == {"code": "free", "name": "免费版"}
    assert body["role"] == "owner"


def test_get_missing_organization_is_404(api_client):
    assert_error(api_client.get(org_url(999999)), 404, "not_found")


@pytest.mark.parametrize("role", ["owner", "admin"])
def test_owner_and_admin_can_rename(app, api_client, org, make_user, make_api_client, role):
    if role == "owner":
        caller = api_client
    else:
        admin = make_user()
        add_member(app, org["id"], admin, "admin")
        caller = make_api_client(admin)

    response = caller.patch(org_url(org["id"]), json={"name": "新名字"})

    assert response.status_code == 200
    assert response.get_json()["name"] == "新名字"
    assert response.get_json()["role"] == role
    with app.app_context():
        assert db.session.get(Organization, org["id"]).name == "新名字"


def test_member_cannot_rename(app, org, make_user, make_api_client):
    member = make_user()
    add_member(app, org["id"], member, "member")

    response = make_api_client(member).patch(org_url(org["id"]), json={"name": "新名字"})

    assert_error(response, 403, "forbidden")
    with app.app_context():
        assert db.session.get(Organization, org["id"]).name == "测试公司"


def test_rename_to_blank_is_422(app, api_client, org):
    assert_error(api_client.patch(org_url(org["id"]), json={"name": " "}), 422, "validation_error")
    assert_error(api_client.patch(org_url(org["id"]), json={}), 422, "validation_error")
    with app.app_context():
        assert db.session.get(Organization, org["id"]).name == "测试公司"


# --- members --------------------------------------------------------------------


def test_list_members(app, api_client, org, user, make_user):
    admin = make_user()
    add_member(app, org["id"], admin, "admin")

    response = api_client.get(org_url(org["id"], "/members"))

    assert response.status_code == 200
    assert [(m["user_id"], m["email"], m["role"]) for m in response.get_json()] == [
        (user.id, user.email, "owner"),
        (admin.id, admin.email, "admin"),
    ]
    assert all(m["joined_at"] for m in response.get_json())
    assert json.loads(response.headers["X-Pagination"])["total"] == 2


def test_invite_sends_mail_with_link_and_creates_pending_invitation(app, api_client, org):
    with mail.record_messages() as outbox:
        response = api_client.post(
            org_url(org["id"], "/members"),
            json={"email": "New.Person@Example.com", "role": "admin"},
        )

    assert response.status_code == 201
    body = response.get_json()
    assert body["email"] == "new.person@example.com"
    assert body["role"] == "admin"
    assert body["status"] == "pending"
    assert body["expires_at"] > body["created_at"]
    assert "token" not in body and "token_hash" not in body
    assert len(outbox) == 1
    assert outbox[0].recipients == ["new.person@example.com"]
    match = INVITE_LINK.search(outbox[0].body)
    assert match, outbox[0].body
    stored = invitation(app, body["id"])
    assert stored.organization_id == org["id"]
    assert stored.is_pending(stored.created_at)
    assert match.group(1) not in stored.token_hash  # only a digest is stored


def test_invite_defaults_to_member_role(api_client, org):
    with mail.record_messages() as outbox:
        response = api_client.post(org_url(org["id"], "/members"), json={"email": "m@example.com"})

    assert response.status_code == 201
    assert response.get_json()["role"] == "member"
    assert len(outbox) == 1


def test_invited_person_joins_with_the_mailed_token(
    app, api_client, org, make_user, make_api_client
):
    invitee = make_user(email="invitee@example.com")
    with mail.record_messages() as outbox:
        api_client.post(org_url(org["id"], "/members"), json={"email": invitee.email})
    token = INVITE_LINK.search(outbox[0].body).group(1)

    accept(app, token, invitee)

    assert role_of(app, org["id"], invitee.id) == "member"
    assert make_api_client(invitee).get(org_url(org["id"])).status_code == 200
    assert api_client.get(org_url(org["id"], "/invitations")).get_json() == []


def test_inviting_an_existing_member_is_409(app, api_client, org, make_user):
    member = make_user(email="already@example.com")
    add_member(app, org["id"], member, "member")

    with mail.record_messages() as outbox:
        response = api_client.post(
            org_url(org["id"], "/members"), json={"email": "Already@Example.com"}
        )

    assert_error(response, 409, "already_member")
    assert outbox == []
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count()).select_from(Invitation)) == 0


@pytest.mark.parametrize(
    "payload",
    [
        {"email": "x@example.com", "role": "owner"},
        {"email": "x@example.com", "role": "superuser"},
        {"email": "not-an-email"},
        {"email": []},
        {"role": "member"},
        {"email": "x@example.com", "message": "hi"},
    ],
)
def test_invalid_invite_is_422(app, api_client, org, payload):
    with mail.record_messages() as outbox:
        response = api_client.post(org_url(org["id"], "/members"), json=payload)

    assert_error(response, 422, "validation_error")
    assert outbox == []
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count()).select_from(Invitation)) == 0


def test_reinviting_revokes_the_previous_invitation(app, api_client, org, make_user):
    url = org_url(org["id"], "/members")
    with mail.record_messages() as outbox:
        first = api_client.post(url, json={"email": "again@example.com"}).get_json()
        second = api_client.post(url, json={"email": "AGAIN@example.com", "role": "admin"})

    assert second.status_code == 201
    second_body = second.get_json()
    assert invitation(app, first["id"]).status == "revoked"
    assert invitation(app, second_body["id"]).status == "pending"
    listed = api_client.get(org_url(org["id"], "/invitations")).get_json()
    assert [(i["id"], i["role"]) for i in listed] == [(second_body["id"], "admin")]
    # The first mailed link no longer works; the second one does.
    first_token, second_token = (INVITE_LINK.search(m.body).group(1) for m in outbox)
    invitee = make_user(email="again@example.com")
    with pytest.raises(AppError) as refused:
        accept(app, first_token, invitee)
    assert refused.value.error == "invitation_invalid"
    accept(app, second_token, invitee)
    assert role_of(app, org["id"], invitee.id) == "admin"


def test_list_and_revoke_invitations(app, api_client, org):
    url = org_url(org["id"], "/members")
    kept = api_client.post(url, json={"email": "keep@example.com"}).get_json()
    dropped = api_client.post(url, json={"email": "drop@example.com"}).get_json()

    listed = api_client.get(org_url(org["id"], "/invitations"))
    assert listed.status_code == 200
    assert {i["email"] for i in listed.get_json()} == {"keep@example.com", "drop@example.com"}
    assert json.loads(listed.headers["X-Pagination"])["total"] == 2

    response = api_client.delete(org_url(org["id"], f"/invitations/{dropped['id']}"))

    assert response.status_code == 204
    assert invitation(app, dropped["id"]).status == "revoked"
    remaining = api_client.get(org_url(org["id"], "/invitations")).get_json()
    assert [i["id"] for i in remaining] == [kept["id"]]
    again = api_client.delete(org_url(org["id"], f"/invitations/{dropped['id']}"))
    assert_error(again, 404, "not_found")
    assert_error(api_client.delete(org_url(org["id"], "/invitations/999999")), 404, "not_found")


def test_admin_can_invite_and_revoke(app, org, make_user, make_api_client):
    admin = make_user()
    add_member(app, org["id"], admin, "admin")
    admin_client = make_api_client(admin)

    created = admin_client.post(org_url(org["id"], "/members"), json={"email": "z@example.com"})
    assert created.status_code == 201
    revoked = admin_client.delete(org_url(org["id"], f"/invitations/{created.get_json()['id']}"))
    assert revoked.status_code == 204


# --- roles --------------------------------------------------------------------------


@dataclass
class Team:
    org_id: int
    owner: Any
    owner_client: ApiClient
    admin: Any
    admin_client: ApiClient
    member: Any
    member_client: ApiClient

    def member_url(self, user: Any) -> str:
        return org_url(self.org_id, f"/members/{user.id}")


@pytest.fixture
def team(app, api_client, user, org, make_user, make_api_client) -> Team:
    admin, member = make_user(), make_user()
    add_member(app, org["id"], admin, "admin")
    add_member(app, org["id"], member, "member")
    return Team(
        org["id"],
        user,
        api_client,
        admin,
        make_api_client(admin),
        member,
        make_api_client(member),
    )


def test_owner_changes_roles(app, team):
    response = team.owner_client.patch(team.member_url(team.member), json={"role": "admin"})

    assert response.status_code == 200
    assert response.get_json()["user_id"] == team.member.id
    assert response.get_json()["role"] == "admin"
    assert role_of(app, team.org_id, team.member.id) == "admin"


def test_owner_can_hand_over_ownership_then_step_down(app, team):
    promoted = team.owner_client.patch(team.member_url(team.admin), json={"role": "owner"})
    assert promoted.status_code == 200

    stepped_down = team.owner_client.patch(team.member_url(team.owner), json={"role": "member"})

    assert stepped_down.status_code == 200
    assert role_of(app, team.org_id, team.admin.id) == "owner"
    assert role_of(app, team.org_id, team.owner.id) == "member"


def test_admin_changes_member_roles(app, team):
    response = team.admin_client.patch(team.member_url(team.member), json={"role": "admin"})

    assert response.status_code == 200
    assert role_of(app, team.org_id, team.member.id) == "admin"


@pytest.mark.parametrize(
    ("target", "role"),
    [("member", "owner"), ("admin", "owner"), ("owner", "admin"), ("owner", "member")],
)
def test_admin_cannot_grant_or_take_the_owner_role(app, team, target, role):
    person = getattr(team, target)
    before = role_of(app, team.org_id, person.id)

    response = team.admin_client.patch(team.member_url(person), json={"role": role})

    assert_error(response, 403, "forbidden")
    assert role_of(app, team.org_id, person.id) == before


def test_admin_cannot_remove_an_owner(app, team):
    assert_error(team.admin_client.delete(team.member_url(team.owner)), 403, "forbidden")
    assert role_of(app, team.org_id, team.owner.id) == "owner"


def test_member_cannot_manage_anyone(app, team, make_user):
    other = make_user()
    add_member(app, team.org_id, other, "member")
    calls = [
        team.member_client.patch(team.member_url(other), json={"role": "admin"}),
        team.member_client.patch(team.member_url(team.member), json={"role": "admin"}),
        team.member_client.delete(team.member_url(other)),
        team.member_client.post(org_url(team.org_id, "/members"), json={"email": "q@example.com"}),
    ]

    for response in calls:
        assert_error(response, 403, "forbidden")
    assert role_of(app, team.org_id, other.id) == "member"
    assert role_of(app, team.org_id, team.member.id) == "member"


def test_last_owner_cannot_step_down(app, team):
    response = team.owner_client.patch(team.member_url(team.owner), json={"role": "admin"})

    assert_error(response, 409, "last_owner")
    assert role_of(app, team.org_id, team.owner.id) == "owner"


def test_last_owner_cannot_leave(app, team):
    assert_error(team.owner_client.delete(team.member_url(team.owner)), 409, "last_owner")
    assert role_of(app, team.org_id, team.owner.id) == "owner"


def test_one_of_two_owners_can_leave_or_be_removed(app, team, make_user, make_api_client):
    second_owner = make_user()
    add_member(app, team.org_id, second_owner, "owner")

    removed = team.owner_client.delete(team.member_url(second_owner))
    assert removed.status_code == 204
    assert role_of(app, team.org_id, second_owner.id) is None

    add_member(app, team.org_id, second_owner, "owner")
    left = make_api_client(second_owner).delete(team.member_url(second_owner))
    assert left.status_code == 204
    assert role_of(app, team.org_id, second_owner.id) is None
    assert_error(team.owner_client.delete(team.member_url(team.owner)), 409, "last_owner")


@pytest.mark.parametrize("remover", ["owner", "admin"])
def test_managers_remove_members(app, team, remover):
    response = getattr(team, f"{remover}_client").delete(team.member_url(team.member))

    assert response.status_code == 204
    assert role_of(app, team.org_id, team.member.id) is None
    assert_error(team.member_client.get(org_url(team.org_id)), 404, "not_found")


@pytest.mark.parametrize("leaver", ["admin", "member"])
def test_members_can_leave(app, team, leaver):
    person = getattr(team, leaver)

    response = getattr(team, f"{leaver}_client").delete(team.member_url(person))

    assert response.status_code == 204
    assert role_of(app, team.org_id, person.id) is None
    assert_error(getattr(team, f"{leaver}_client").get(org_url(team.org_id)), 404, "not_found")
    count = team.owner_client.get(org_url(team.org_id)).get_json()["member_count"]
    assert count == 2


def test_changing_or_removing_a_non_member_is_404(team, make_user):
    outsider = make_user()

    patch = team.owner_client.patch(team.member_url(outsider), json={"role": "admin"})
    delete = team.owner_client.delete(team.member_url(outsider))

    assert_error(patch, 404, "not_found")
    assert_error(delete, 404, "not_found")


def test_invalid_role_change_is_422(app, team):
    for payload in ({"role": "boss"}, {}, {"role": 1}):
        response = team.owner_client.patch(team.member_url(team.member), json=payload)
        assert_error(response, 422, "validation_error")
    assert role_of(app, team.org_id, team.member.id) == "member"


# --- tenant isolation ------------------------------------------------------------


@dataclass
class World:
    org_id: int
    target_id: int  # a plain member of org_id other than the caller
    invitation_id: int
    member: ApiClient
    stranger: ApiClient
    stranger_org_id: int


@pytest.fixture
def world(app, api_client, org, make_user, make_api_client) -> World:
    member, target = make_user(), make_user()
    add_member(app, org["id"], member, "member")
    add_member(app, org["id"], target, "member")
    pending = api_client.post(org_url(org["id"], "/members"), json={"email": "p@example.com"})
    stranger = make_api_client()
    stranger_org = stranger.post(ORGS, json={"name": "隔壁公司"}).get_json()
    return World(
        org["id"],
        target.id,
        pending.get_json()["id"],
        make_api_client(member),
        stranger,
        stranger_org["id"],
    )


# (method, path template, JSON body, is an owner/admin action)
ORG_ENDPOINTS = [
    ("GET", "/organizations/{org}", None, False),
    ("PATCH", "/organizations/{org}", {"name": "被改名"}, True),
    ("GET", "/organizations/{org}/members", None, False),
    ("POST", "/organizations/{org}/members", {"email": "x@example.com"}, True),
    ("PATCH", "/organizations/{org}/members/{target}", {"role": "admin"}, True),
    ("DELETE", "/organizations/{org}/members/{target}", None, True),
    ("GET", "/organizations/{org}/invitations", None, True),
    ("DELETE", "/organizations/{org}/invitations/{invitation}", None, True),
]
ENDPOINT_IDS = [f"{method} {path}" for method, path, _, _ in ORG_ENDPOINTS]


def _call(client: ApiClient, world: World, method: str, path: str, body: Any, org: int) -> Any:
    url = "/api/v1" + path.format(org=org, target=world.target_id, invitation=world.invitation_id)
    return client.open(method, url, json=body)


def _unchanged(app: Flask, world: World) -> None:
    with app.app_context():
        assert db.session.get(Organization, world.org_id).name == "测试公司"
        assert db.session.get(Invitation, world.invitation_id).status == "pending"
        assert db.session.scalar(db.select(db.func.count()).select_from(Invitation)) == 1
    assert role_of(app, world.org_id, world.target_id) == "member"


@pytest.mark.parametrize(("method", "path", "body", "_admin_only"), ORG_ENDPOINTS, ids=ENDPOINT_IDS)
def test_stranger_gets_404_everywhere(app, world, method, path, body, _admin_only):
    response = _call(world.stranger, world, method, path, body, world.org_id)

    assert_error(response, 404, "not_found")
    _unchanged(app, world)


@pytest.mark.parametrize(("method", "path", "body", "_admin_only"), ORG_ENDPOINTS, ids=ENDPOINT_IDS)
def test_missing_organization_is_404_like_a_foreign_one(
    app, world, method, path, body, _admin_only
):
    response = _call(world.stranger, world, method, path, body, 999999)

    assert_error(response, 404, "not_found")


@pytest.mark.parametrize(("method", "path", "body", "admin_only"), ORG_ENDPOINTS, ids=ENDPOINT_IDS)
def test_plain_member_is_forbidden_admin_actions(app, world, method, path, body, admin_only):
    response = _call(world.member, world, method, path, body, world.org_id)

    if admin_only:
        assert_error(response, 403, "forbidden")
        _unchanged(app, world)
    else:
        assert response.status_code == 200


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("PATCH", "/organizations/{org}/members/{target}", {"role": "admin"}),
        ("DELETE", "/organizations/{org}/members/{target}", None),
        ("DELETE", "/organizations/{org}/invitations/{invitation}", None),
    ],
)
def test_objects_of_another_organization_are_404_from_your_own(app, world, method, path, body):
    """The stranger manages their own organization but names another one's member or invitation."""
    response = _call(world.stranger, world, method, path, body, world.stranger_org_id)

    assert_error(response, 404, "not_found")
    _unchanged(app, world)


def test_stranger_list_does_not_show_foreign_organizations(world):
    listed = world.stranger.get(ORGS).get_json()

    assert [o["id"] for o in listed] == [world.stranger_org_id]
