"""Portal pages for organizations: dashboard, switching, members, invitations."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import sqlalchemy as sa

from tests.api import role_of
from tests.portal.conftest import Portal, en, link_in, org_id_by_name, zh
from webapp.db import utcnow
from webapp.extensions import db, mail
from webapp.orgs.models import Invitation, Role


def invitation_row(app: Any, org_id: int, email: str) -> Invitation | None:
    with app.app_context():
        return db.session.scalar(
            sa.select(Invitation)
            .where(Invitation.organization_id == org_id, Invitation.email == email)
            .order_by(Invitation.id.desc())
        )


def invite(portal: Portal, org_id: int, email: str, role: str = "member") -> Any:
    return portal.post(
        f"/organizations/{org_id}/invitations",
        {"email": email, "role": role},
        page=f"/organizations/{org_id}/members",
    )


def add_member(
    app: Any, owner: Portal, org_id: int, make_portal: Any, make_user: Any, role: str = "member"
) -> tuple[Any, Portal]:
    """A new user who accepted an invitation to the organization; returns (user, their portal)."""
    person = make_user()
    with mail.record_messages() as outbox:
        assert invite(owner, org_id, person.email, role).status_code == 302
    token_path = link_in(outbox[0], "/invitations/")
    browser = make_portal()
    assert browser.login(person.email).status_code == 302
    assert browser.submit(token_path).status_code == 302
    assert role_of(app, org_id, person.id) == role
    return person, browser


@pytest.fixture
def owner(logged_in: Portal) -> Portal:
    """`user`, logged in, owner of 测试公司."""
    logged_in.create_org("测试公司")
    return logged_in


@pytest.fixture
def org_id(app: Any, owner: Portal) -> int:
    return org_id_by_name(app, "测试公司")


# --- dashboard and organizations ------------------------------------------------


def test_dashboard_without_an_organization_prompts_to_create_one(logged_in: Portal) -> None:
    html = logged_in.page("/dashboard")

    assert 'id="create-first-org"' in html
    assert 'href="/organizations/new"' in html
    assert 'id="org-name"' not in html


def test_creating_an_organization_shows_it_on_the_dashboard(
    app: Any, logged_in: Portal, user: Any
) -> None:
    assert 'name="name"' in logged_in.page("/organizations/new")

    org_id = logged_in.create_org("星辰科技")

    assert role_of(app, org_id, user.id) == "owner"
    html = logged_in.page("/dashboard")
    assert zh(app, "Organization %(name)s created.", name="星辰科技") in html
    assert re.search(r'id="org-name">\s*星辰科技\s*<', html)
    assert re.search(r'id="plan-name">\s*免费版\s*<', html)
    assert re.search(
        r'id="my-role" data-role="owner">\s*' + re.escape(zh(app, "Owner")) + r"\s*<", html
    )
    assert 'id="create-first-org"' not in html


def test_an_organization_needs_a_name(app: Any, logged_in: Portal, user: Any) -> None:
    response = logged_in.submit("/organizations/new", {"name": ""})

    assert response.status_code == 200
    assert "is-invalid" in response.get_data(as_text=True)
    with app.app_context():
        count = db.session.scalar(sa.text("SELECT count(*) FROM organizations"))
    assert count == 0


def test_dashboard_in_english_shows_the_english_plan_name(logged_in: Portal) -> None:
    logged_in.create_org("Acme")
    logged_in.switch_language("en")

    html = logged_in.page("/dashboard")

    assert re.search(r'id="plan-name">\s*Free\s*<', html)
    assert re.search(r'id="my-role"[^>]*>\s*Owner\s*<', html)


def test_switching_organizations_changes_the_dashboard(app: Any, logged_in: Portal) -> None:
    first = logged_in.create_org("甲公司")
    second = logged_in.create_org("乙公司")
    assert re.search(r'id="org-name">\s*乙公司\s*<', logged_in.page("/dashboard"))

    response = logged_in.post(f"/organizations/{first}/switch", page="/dashboard")

    assert response.status_code == 302
    assert response.headers["Location"] == "/dashboard"
    html = logged_in.page("/dashboard")
    assert re.search(r'id="org-name">\s*甲公司\s*<', html)
    assert f'action="/organizations/{second}/switch"' in html  # the switcher lists both

    logged_in.post(f"/organizations/{second}/switch", page="/dashboard")
    assert re.search(r'id="org-name">\s*乙公司\s*<', logged_in.page("/dashboard"))


def test_switching_to_someone_elses_organization_is_a_404_page(
    app: Any, owner: Portal, org_id: int, make_portal: Any, make_user: Any
) -> None:
    stranger = make_user()
    browser = make_portal()
    browser.login(stranger.email)
    browser.create_org("自己的公司")

    response = browser.post(f"/organizations/{org_id}/switch")

    assert response.status_code == 404
    assert response.mimetype == "text/html"
    assert zh(app, "Organization not found.") in response.get_data(as_text=True)
    assert "自己的公司" in browser.page("/dashboard")
    assert "测试公司" not in browser.page("/dashboard")


# --- members page ------------------------------------------------------------------


def test_owner_sees_the_member_list_and_invite_form(
    app: Any, owner: Portal, org_id: int, user: Any
) -> None:
    html = owner.page(f"/organizations/{org_id}/members")

    assert zh(app, "Members of %(name)s", name="测试公司") in html
    assert f'data-email="{user.email}"' in html
    assert 'id="invite-form"' in html
    assert zh(app, "No pending invitations.") in html


def test_inviting_by_email_sends_a_link_and_lists_the_invitation(
    app: Any, owner: Portal, org_id: int, outbox: list[Any]
) -> None:
    response = invite(owner, org_id, "New.Hire@Example.com", "admin")

    assert response.status_code == 302
    assert response.headers["Location"] == f"/organizations/{org_id}/members"
    assert len(outbox) == 1
    assert outbox[0].recipients == ["new.hire@example.com"]
    assert "测试公司" in outbox[0].subject
    assert link_in(outbox[0], "/invitations/").startswith("/invitations/")
    invitation = invitation_row(app, org_id, "new.hire@example.com")
    assert invitation is not None and invitation.role == Role.ADMIN
    html = owner.page(f"/organizations/{org_id}/members")
    assert zh(app, "Invitation sent to %(email)s.", email="new.hire@example.com") in html
    invitations = html.split('id="invitations"', 1)[1]
    assert "new.hire@example.com" in invitations
    assert f"/invitations/{invitation.id}/revoke" in invitations


def test_inviting_a_bad_address_shows_an_error_and_sends_nothing(
    app: Any, owner: Portal, org_id: int, outbox: list[Any]
) -> None:
    response = invite(owner, org_id, "not-an-address")

    assert response.status_code == 302
    assert outbox == []
    assert invitation_row(app, org_id, "not-an-address") is None
    assert "alert-danger" in owner.page(f"/organizations/{org_id}/members")


def test_inviting_an_existing_member_is_refused(
    app: Any, owner: Portal, org_id: int, user: Any, outbox: list[Any]
) -> None:
    response = invite(owner, org_id, user.email)

    assert response.status_code == 302
    assert outbox == []
    html = owner.page(f"/organizations/{org_id}/members")
    assert zh(app, "%(email)s is already a member.", email=user.email) in html


def test_revoking_an_invitation(app: Any, owner: Portal, org_id: int, outbox: list[Any]) -> None:
    invite(owner, org_id, "maybe@example.com")
    invitation = invitation_row(app, org_id, "maybe@example.com")
    assert invitation is not None
    token_path = link_in(outbox[0], "/invitations/")

    response = owner.post(
        f"/organizations/{org_id}/invitations/{invitation.id}/revoke",
        page=f"/organizations/{org_id}/members",
    )

    assert response.status_code == 302
    revoked = invitation_row(app, org_id, "maybe@example.com")
    assert revoked is not None and revoked.revoked_at is not None
    html = owner.page(f"/organizations/{org_id}/members")
    assert zh(app, "Invitation revoked.") in html
    assert 'id="invitations"' not in html
    assert owner.get(token_path).status_code == 404


def test_owner_changes_a_members_role(
    app: Any, owner: Portal, org_id: int, make_portal: Any, make_user: Any
) -> None:
    member, _browser = add_member(app, owner, org_id, make_portal, make_user)

    response = owner.post(
        f"/organizations/{org_id}/members/{member.id}/role",
        {"role": "admin"},
        page=f"/organizations/{org_id}/members",
    )

    assert response.status_code == 302
    assert role_of(app, org_id, member.id) == "admin"
    assert zh(app, "Role updated.") in owner.page(f"/organizations/{org_id}/members")


def test_a_role_outside_the_list_is_refused(
    app: Any, owner: Portal, org_id: int, make_portal: Any, make_user: Any
) -> None:
    member, _browser = add_member(app, owner, org_id, make_portal, make_user)

    response = owner.post(
        f"/organizations/{org_id}/members/{member.id}/role",
        {"role": "superuser"},
        page=f"/organizations/{org_id}/members",
    )

    assert response.status_code == 302
    assert role_of(app, org_id, member.id) == "member"
    assert "alert-danger" in owner.page(f"/organizations/{org_id}/members")


def test_owner_removes_a_member(
    app: Any, owner: Portal, org_id: int, make_portal: Any, make_user: Any
) -> None:
    member, browser = add_member(app, owner, org_id, make_portal, make_user)

    response = owner.post(
        f"/organizations/{org_id}/members/{member.id}/remove",
        page=f"/organizations/{org_id}/members",
    )

    assert response.status_code == 302
    assert role_of(app, org_id, member.id) is None
    html = owner.page(f"/organizations/{org_id}/members")
    assert zh(app, "Member removed.") in html
    assert f'data-email="{member.email}"' not in html
    assert browser.get(f"/organizations/{org_id}/members").status_code == 404


def test_a_member_can_leave(
    app: Any, owner: Portal, org_id: int, make_portal: Any, make_user: Any
) -> None:
    member, browser = add_member(app, owner, org_id, make_portal, make_user)

    response = browser.post(
        f"/organizations/{org_id}/members/{member.id}/remove",
        page=f"/organizations/{org_id}/members",
    )

    assert response.status_code == 302
    assert response.headers["Location"] == "/dashboard"
    assert role_of(app, org_id, member.id) is None
    html = browser.page("/dashboard")
    assert zh(app, "You have left the organization.") in html
    assert 'id="create-first-org"' in html


def test_the_last_owner_cannot_leave(app: Any, owner: Portal, org_id: int, user: Any) -> None:
    response = owner.post(
        f"/organizations/{org_id}/members/{user.id}/remove",
        page=f"/organizations/{org_id}/members",
    )

    assert response.status_code == 302
    assert response.headers["Location"] == f"/organizations/{org_id}/members"
    assert role_of(app, org_id, user.id) == "owner"
    message = "An organization needs at least one owner; make someone else owner first."
    assert zh(app, message) in owner.page(f"/organizations/{org_id}/members")


def test_the_last_owner_cannot_step_down(app: Any, owner: Portal, org_id: int, user: Any) -> None:
    response = owner.post(
        f"/organizations/{org_id}/members/{user.id}/role",
        {"role": "member"},
        page=f"/organizations/{org_id}/members",
    )

    assert response.status_code == 302
    assert role_of(app, org_id, user.id) == "owner"


def test_a_plain_member_sees_no_invite_form_and_cannot_invite(
    app: Any, owner: Portal, org_id: int, make_portal: Any, make_user: Any, outbox: list[Any]
) -> None:
    _member, browser = add_member(app, owner, org_id, make_portal, make_user)
    html = browser.page(f"/organizations/{org_id}/members")
    assert 'id="invite-form"' not in html
    assert "/revoke" not in html and "/role" not in html

    response = invite(browser, org_id, "friend@example.com")

    assert response.status_code == 403
    assert response.mimetype == "text/html"
    assert zh(app, "You do not have permission to do that") in response.get_data(as_text=True)
    assert invitation_row(app, org_id, "friend@example.com") is None
    assert outbox[1:] == []  # only the member's own invitation was mailed


def test_a_plain_member_cannot_change_roles_or_remove_others(
    app: Any, owner: Portal, org_id: int, user: Any, make_portal: Any, make_user: Any
) -> None:
    member, browser = add_member(app, owner, org_id, make_portal, make_user)
    other, _other_browser = add_member(app, owner, org_id, make_portal, make_user)

    promote = browser.post(
        f"/organizations/{org_id}/members/{member.id}/role",
        {"role": "owner"},
        page=f"/organizations/{org_id}/members",
    )
    remove = browser.post(
        f"/organizations/{org_id}/members/{other.id}/remove",
        page=f"/organizations/{org_id}/members",
    )

    assert promote.status_code == 403
    assert remove.status_code == 403
    assert role_of(app, org_id, member.id) == "member"
    assert role_of(app, org_id, other.id) == "member"
    assert role_of(app, org_id, user.id) == "owner"


def test_an_admin_cannot_touch_the_owner(
    app: Any, owner: Portal, org_id: int, user: Any, make_portal: Any, make_user: Any
) -> None:
    _admin, browser = add_member(app, owner, org_id, make_portal, make_user, role="admin")
    html = browser.page(f"/organizations/{org_id}/members")
    assert 'id="invite-form"' in html
    assert f"/members/{user.id}/remove" not in html

    demote = browser.post(
        f"/organizations/{org_id}/members/{user.id}/role",
        {"role": "member"},
        page=f"/organizations/{org_id}/members",
    )
    remove = browser.post(
        f"/organizations/{org_id}/members/{user.id}/remove",
        page=f"/organizations/{org_id}/members",
    )

    assert demote.status_code == 403
    assert remove.status_code == 403
    assert role_of(app, org_id, user.id) == "owner"


STRANGER_REQUESTS = [
    ("GET", "/organizations/{org}/members", {}),
    ("POST", "/organizations/{org}/switch", {}),
    ("POST", "/organizations/{org}/invitations", {"email": "x@example.com", "role": "member"}),
    ("POST", "/organizations/{org}/invitations/{invitation}/revoke", {}),
    ("POST", "/organizations/{org}/members/{owner}/role", {"role": "member"}),
    ("POST", "/organizations/{org}/members/{owner}/remove", {}),
]


@pytest.mark.parametrize(("method", "path", "data"), STRANGER_REQUESTS)
def test_a_stranger_gets_404_for_every_org_page_and_action(
    app: Any,
    owner: Portal,
    org_id: int,
    user: Any,
    make_portal: Any,
    make_user: Any,
    method: str,
    path: str,
    data: dict[str, str],
) -> None:
    invite(owner, org_id, "pending@example.com")
    invitation = invitation_row(app, org_id, "pending@example.com")
    assert invitation is not None
    stranger = make_portal()
    assert stranger.login(make_user().email).status_code == 302
    url = path.format(org=org_id, invitation=invitation.id, owner=user.id)

    response = stranger.get(url) if method == "GET" else stranger.post(url, data)

    assert response.status_code == 404
    assert response.mimetype == "text/html"
    assert zh(app, "Organization not found.") in response.get_data(as_text=True)
    assert role_of(app, org_id, user.id) == "owner"
    still_pending = invitation_row(app, org_id, "pending@example.com")
    assert still_pending is not None and still_pending.revoked_at is None
    assert invitation_row(app, org_id, "x@example.com") is None


def test_org_pages_require_login(owner: Portal, org_id: int) -> None:
    anonymous = Portal(owner.client.application.test_client())

    response = anonymous.get(f"/organizations/{org_id}/members")

    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login?next=")


# --- accepting invitations -----------------------------------------------------------


def _invitation_link(owner: Portal, org_id: int, email: str, outbox: list[Any]) -> str:
    assert invite(owner, org_id, email).status_code == 302
    return link_in(outbox[-1], "/invitations/")


def test_a_new_user_signs_up_from_the_invitation_and_joins(
    app: Any, owner: Portal, org_id: int, make_portal: Any, outbox: list[Any]
) -> None:
    link = _invitation_link(owner, org_id, "newcomer@example.com", outbox)
    browser = make_portal()

    html = browser.page(link)
    assert zh(app, "You are invited to join %(name)s", name="测试公司") in html
    signup_href = re.search(r'href="([^"]+)" id="signup-to-accept"', html)
    assert signup_href, html
    signup_url = signup_href.group(1).replace("&amp;", "&")
    query = parse_qs(urlsplit(signup_url).query)
    assert query == {"email": ["newcomer@example.com"], "next": [link]}

    signup_page = browser.page(signup_url)
    assert 'value="newcomer@example.com"' in signup_page
    response = browser.submit(
        signup_url,
        {
            "email": "newcomer@example.com",
            "name": "",
            "password": "newcomer-password",
            "confirm": "newcomer-password",
        },
    )
    assert response.status_code == 302
    assert response.headers["Location"] == link

    assert 'id="accept-invitation"' in browser.page(link)
    response = browser.submit(link)

    assert response.status_code == 302
    assert response.headers["Location"] == "/dashboard"
    with app.app_context():
        new_user_id = db.session.scalar(
            sa.text("SELECT id FROM users WHERE email = 'newcomer@example.com'")
        )
    assert role_of(app, org_id, new_user_id) == "member"
    dashboard = browser.page("/dashboard")
    assert zh(app, "You joined %(name)s.", name="测试公司") in dashboard
    assert re.search(r'id="org-name">\s*测试公司\s*<', dashboard)
    accepted = invitation_row(app, org_id, "newcomer@example.com")
    assert accepted is not None and accepted.accepted_at is not None


def test_an_existing_user_logs_in_from_the_invitation_and_joins(
    app: Any, owner: Portal, org_id: int, make_portal: Any, make_user: Any, outbox: list[Any]
) -> None:
    invited = make_user()
    link = _invitation_link(owner, org_id, invited.email, outbox)
    browser = make_portal()
    assert f'href="/login?next={link}"' in browser.page(link)

    response = browser.login(invited.email, next=link)
    assert response.headers["Location"] == link
    response = browser.submit(link)

    assert response.status_code == 302
    assert role_of(app, org_id, invited.id) == "member"
    assert re.search(r'id="org-name">\s*测试公司\s*<', browser.page("/dashboard"))


def test_accepting_with_another_account_is_refused(
    app: Any, owner: Portal, org_id: int, make_portal: Any, make_user: Any, outbox: list[Any]
) -> None:
    link = _invitation_link(owner, org_id, "intended@example.com", outbox)
    someone_else = make_user()
    browser = make_portal()
    browser.login(someone_else.email)

    html = browser.page(link)
    assert 'id="accept-invitation"' not in html
    assert "alert-warning" in html
    response = browser.post(link, page="/dashboard")

    assert response.status_code == 403
    assert response.mimetype == "text/html"
    assert role_of(app, org_id, someone_else.id) is None
    pending = invitation_row(app, org_id, "intended@example.com")
    assert pending is not None and pending.accepted_at is None


def test_accepting_while_logged_out_asks_to_log_in(
    app: Any, owner: Portal, org_id: int, make_portal: Any, outbox: list[Any]
) -> None:
    link = _invitation_link(owner, org_id, "later@example.com", outbox)
    browser = make_portal()

    response = browser.post(link)

    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login?next=")
    pending = invitation_row(app, org_id, "later@example.com")
    assert pending is not None and pending.accepted_at is None


def _expire(app: Any, org_id: int, email: str) -> None:
    with app.app_context():
        db.session.execute(
            sa.update(Invitation)
            .where(Invitation.organization_id == org_id, Invitation.email == email)
            .values(expires_at=utcnow() - timedelta(minutes=1))
        )
        db.session.commit()


@pytest.mark.parametrize("how", ["expired", "revoked", "used", "unknown"])
def test_a_dead_invitation_link_is_a_404_page(
    app: Any,
    owner: Portal,
    org_id: int,
    make_portal: Any,
    make_user: Any,
    outbox: list[Any],
    how: str,
) -> None:
    invited = make_user()
    link = _invitation_link(owner, org_id, invited.email, outbox)
    browser = make_portal()
    browser.login(invited.email)
    if how == "expired":
        _expire(app, org_id, invited.email)
    elif how == "revoked":
        invitation = invitation_row(app, org_id, invited.email)
        assert invitation is not None
        owner.post(
            f"/organizations/{org_id}/invitations/{invitation.id}/revoke",
            page=f"/organizations/{org_id}/members",
        )
    elif how == "used":
        assert browser.submit(link).status_code == 302
        owner.post(
            f"/organizations/{org_id}/members/{invited.id}/remove",
            page=f"/organizations/{org_id}/members",
        )
    else:
        link = "/invitations/not-a-real-token"

    for response in (browser.get(link), browser.post(link, page="/dashboard")):
        assert response.status_code == 404
        assert response.mimetype == "text/html"
        html = response.get_data(as_text=True)
        assert zh(app, "This invitation is invalid, expired or already used.") in html
    assert role_of(app, org_id, invited.id) is None


def test_invitation_page_in_english(
    owner: Portal, org_id: int, make_portal: Any, outbox: list[Any]
) -> None:
    link = _invitation_link(owner, org_id, "english@example.com", outbox)
    browser = make_portal()
    browser.switch_language("en")

    html = browser.page(link)

    assert en("You are invited to join %(name)s", name="测试公司") in html
    assert (
        en("Invitation for %(email)s as %(role)s.", email="english@example.com", role="Member")
        in html
    )
