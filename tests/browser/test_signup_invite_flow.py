"""End to end in Chromium: sign up, create an organization, invite by mail, join.

Elements are picked by id/name/type so the test holds in any UI language.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from flask import Flask
from playwright.sync_api import BrowserContext, Page, expect

from webapp.extensions import mail

PASSWORD = "browser-flow-pw-1"
INVITATION_LINK = re.compile(r"(https?://\S+/invitations/[A-Za-z0-9_\-]+)")


def sign_up(page: Page, name: str, email: str | None = None) -> None:
    """Fill the real signup form on the current page (CSRF token included) and submit it."""
    form = page.locator("main form")
    expect(form.locator("input[name=csrf_token]")).to_have_count(1)
    form.locator("input[name=name]").fill(name)
    if email is not None:
        form.locator("input[name=email]").fill(email)
    form.locator("input[name=password]").fill(PASSWORD)
    form.locator("input[name=confirm]").fill(PASSWORD)
    form.locator("button[type=submit]").click()


@pytest.mark.browser
def test_owner_invites_member_who_signs_up_and_joins(
    app: Flask,
    live_server: str,
    new_context: Callable[[], BrowserContext],
    artifacts_dir: Path,
) -> None:
    run = uuid.uuid4().hex[:12]
    owner_email = f"owner-{run}@example.com"
    member_email = f"member-{run}@example.com"
    org_name = f"浏览器测试公司 {run}"

    # A signs up and lands on the (empty) dashboard.
    owner = new_context().new_page()
    owner.goto(f"{live_server}/signup")
    sign_up(owner, "Owner A", owner_email)
    expect(owner).to_have_url(f"{live_server}/dashboard")
    expect(owner.locator("#create-first-org")).to_be_visible()

    # A creates an organization and becomes its owner.
    owner.locator("#create-first-org").click()
    expect(owner).to_have_url(f"{live_server}/organizations/new")
    owner.locator("main form input[name=name]").fill(org_name)
    owner.locator("main form button[type=submit]").click()
    expect(owner).to_have_url(f"{live_server}/dashboard")
    expect(owner.locator("#org-name")).to_have_text(org_name)
    expect(owner.locator("#my-role")).to_have_attribute("data-role", "owner")

    # A invites B as a member from the Members page; the mail is captured here.
    owner.locator("#manage-members").click()
    expect(owner).to_have_url(re.compile(rf"{re.escape(live_server)}/organizations/\d+/members$"))
    members_url = owner.url
    expect(owner.locator(f'#members tr[data-email="{owner_email}"]')).to_have_count(1)
    invite_form = owner.locator("#invite-form")
    invite_form.locator("input[name=email]").fill(member_email)
    invite_form.locator("select[name=role]").select_option("member")
    with mail.record_messages() as outbox:
        invite_form.locator("button[type=submit]").click()
        expect(owner).to_have_url(members_url)
        expect(owner.locator("#invitations")).to_contain_text(member_email)
    assert [message.recipients for message in outbox] == [[member_email]]
    body = outbox[0].body or ""
    match = INVITATION_LINK.search(body)
    assert match, body
    invitation_url = match.group(1)
    assert invitation_url.startswith(f"{live_server}/invitations/")

    # B, in a separate browser, opens the link and signs up with the invited address.
    member = new_context().new_page()
    member.goto(invitation_url)
    expect(member.locator("#accept-invitation")).to_have_count(0)
    member.locator("#signup-to-accept").click()
    expect(member).to_have_url(re.compile(rf"{re.escape(live_server)}/signup\?"))
    query = parse_qs(urlsplit(member.url).query)
    assert query["next"] == [urlsplit(invitation_url).path]
    expect(member.locator("main form input[name=email]")).to_have_value(member_email)
    sign_up(member, "Member B")

    # Back on the invitation, now logged in as B: accept it.
    expect(member).to_have_url(invitation_url)
    member.locator("#accept-invitation").click()
    expect(member).to_have_url(f"{live_server}/dashboard")
    expect(member.locator("#org-name")).to_have_text(org_name)
    expect(member.locator("#my-role")).to_have_attribute("data-role", "member")
    expect(member.locator("#my-role")).not_to_be_empty()

    # The invitation is used up: the link no longer offers to join.
    member.goto(invitation_url)
    expect(member.locator("#accept-invitation")).to_have_count(0)
    expect(member.locator("#signup-to-accept")).to_have_count(0)

    # A sees B among the members, and no longer among the pending invitations.
    owner.reload()
    expect(owner.locator(f'#members tr[data-email="{member_email}"]')).to_have_count(1)
    expect(owner.locator(f'#members tr[data-email="{owner_email}"]')).to_have_count(1)
    expect(owner.locator("#invitations")).to_have_count(0)

    screenshot = artifacts_dir / "signup_invite_flow.png"
    owner.screenshot(path=str(screenshot), full_page=True)
    assert screenshot.stat().st_size > 0
