"""Logging out ends the portal session on the server (issue 12, item 5).

A copy of the session or remember-me cookie taken before logout (or before a
password change or reset) no longer opens the portal: the session id carries
the user's session generation, which those actions bump.
"""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask

from tests.factories import DEFAULT_PASSWORD
from tests.portal.conftest import Portal
from webapp.auth.models import User
from webapp.auth.services import set_password
from webapp.extensions import db


def cookies_of(portal: Portal) -> dict[str, str]:
    return {
        name: cookie.value
        for name in ("session", "remember_token")
        if (cookie := portal.client.get_cookie(name)) is not None
    }


def replay(app: Flask, cookies: dict[str, str], only: str | None = None) -> Portal:
    """A browser that stole these cookies (or only one of them)."""
    thief = Portal(app.test_client())
    for name, value in cookies.items():
        if only is None or name == only:
            thief.client.set_cookie(name, value)
    return thief


def remembered_login(portal: Portal, user: Any) -> dict[str, str]:
    response = portal.submit(
        "/login", {"email": user.email, "password": DEFAULT_PASSWORD, "remember": "y"}
    )
    assert response.status_code == 302
    cookies = cookies_of(portal)
    assert set(cookies) == {"session", "remember_token"}
    return cookies


@pytest.mark.parametrize("stolen", ["session", "remember_token"])
def test_a_cookie_copied_before_logout_no_longer_opens_the_portal(
    app: Flask, portal: Portal, user: Any, stolen: str
) -> None:
    cookies = remembered_login(portal, user)
    assert replay(app, cookies, stolen).get("/dashboard").status_code == 200  # it did work

    assert portal.logout().status_code == 302

    response = replay(app, cookies, stolen).get("/dashboard")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login")


def test_logout_ends_the_sessions_of_every_browser(
    app: Flask, portal: Portal, make_portal: Any, user: Any
) -> None:
    phone = make_portal()
    remembered_login(phone, user)
    portal.login(user.email)
    assert phone.get("/dashboard").status_code == 200

    portal.logout()

    assert phone.get("/dashboard").status_code == 302
    assert phone.login(user.email).status_code == 302  # logging in again works at once
    assert phone.get("/dashboard").status_code == 200


def test_a_password_change_ends_copied_sessions(app: Flask, portal: Portal, user: Any) -> None:
    cookies = remembered_login(portal, user)
    with app.app_context():
        account = db.session.get(User, user.id)
        assert account is not None
        set_password(account, "a-brand-new-password")
        db.session.commit()
    for name in ("session", "remember_token"):
        assert replay(app, cookies, name).get("/dashboard").status_code == 302


def test_forged_session_ids_are_anonymous(app: Flask, portal: Portal, user: Any) -> None:
    """Whatever a session id says (a signed cookie only we make), it never fails the page."""
    with app.app_context():
        from webapp.auth.views import load_user

        for session_id in (f"{user.id}", f"{user.id}.x", "99999999999.0", "１.0", f"{user.id}.0.0"):
            assert load_user(session_id) is None
        assert load_user(f"{user.id}.0") is not None
