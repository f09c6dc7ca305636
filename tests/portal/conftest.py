"""Portal fixtures: clients that submit forms like a browser does, with the page's CSRF token.

CSRF protection stays on (as in production): every POST helper first loads a
page of the same session and sends back the token rendered in its form.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from flask_babel import force_locale
from flask_babel import gettext as babel_gettext
from flask_mail import Message
from markupsafe import escape
from werkzeug.test import TestResponse

from tests.factories import DEFAULT_PASSWORD
from webapp.extensions import db, mail
from webapp.orgs.models import Organization

CSRF_FIELD = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')
# Any page that renders a form for everyone, logged in or not.
TOKEN_PAGE = "/forgot-password"


def csrf_token_in(html: str) -> str:
    match = CSRF_FIELD.search(html)
    assert match, "no csrf_token field on the page"
    return match.group(1)


class Portal:
    """One browser: a test client plus helpers for the portal's forms."""

    def __init__(self, client: FlaskClient) -> None:
        self.client = client

    def get(self, path: str, **kwargs: Any) -> TestResponse:
        return self.client.get(path, **kwargs)

    def csrf_token(self, page: str = TOKEN_PAGE) -> str:
        response = self.client.get(page)
        assert response.status_code == 200, (page, response.status_code)
        return csrf_token_in(response.get_data(as_text=True))

    def post(
        self, path: str, data: dict[str, str] | None = None, *, page: str | None = None
    ) -> TestResponse:
        """Submit a form to `path` with a token from `page` (default: any form page)."""
        token = self.csrf_token(page or TOKEN_PAGE)
        return self.client.post(path, data={**(data or {}), "csrf_token": token})

    def submit(self, path: str, data: dict[str, str] | None = None) -> TestResponse:
        """Load the form at `path` and submit it there, as a browser does."""
        return self.post(path, data, page=path)

    def login(
        self, email: str, password: str = DEFAULT_PASSWORD, next: str | None = None
    ) -> TestResponse:
        path = "/login" + (f"?next={next}" if next is not None else "")
        return self.submit(path, {"email": email, "password": password})

    def logout(self) -> TestResponse:
        return self.post("/logout")

    def signup(
        self,
        email: str,
        password: str = DEFAULT_PASSWORD,
        *,
        confirm: str | None = None,
        name: str = "",
        query: str = "",
    ) -> TestResponse:
        data = {
            "email": email,
            "name": name,
            "password": password,
            "confirm": password if confirm is None else confirm,
        }
        return self.submit("/signup" + query, data)

    def create_org(self, name: str) -> int:
        response = self.submit("/organizations/new", {"name": name})
        assert response.status_code == 302, response.get_data(as_text=True)
        assert response.headers["Location"] == "/dashboard"
        return org_id_by_name(self.client.application, name)

    def page(self, path: str) -> str:
        response = self.client.get(path)
        assert response.status_code == 200, (path, response.status_code)
        return response.get_data(as_text=True)

    def switch_language(self, code: str) -> None:
        assert self.client.get(f"/lang/{code}").status_code == 302


@pytest.fixture
def portal(client: FlaskClient) -> Portal:
    return Portal(client)


@pytest.fixture
def auth(portal: Portal) -> Portal:
    """The suite's `auth` fixture, made CSRF-aware for the portal tests."""
    return portal


@pytest.fixture
def make_portal(app: Flask) -> Callable[[], Portal]:
    """Another browser, with its own cookies."""
    return lambda: Portal(app.test_client())


@pytest.fixture
def logged_in(portal: Portal, user: Any) -> Portal:
    response = portal.login(user.email)
    assert response.status_code == 302
    return portal


@pytest.fixture
def outbox(app: Flask) -> Iterator[list[Message]]:
    with mail.record_messages() as messages:
        yield messages


def link_in(message: Message, prefix: str) -> str:
    """The path of the first link in a mail that starts with `prefix` (e.g. /invitations/)."""
    match = re.search(r"https?://[^/\s]+(" + re.escape(prefix) + r"[^\s]+)", message.body or "")
    assert match, f"no {prefix} link in: {message.body}"
    return match.group(1)


def zh(app: Flask, msgid: str, **variables: Any) -> str:
    """A UI string as the default (Chinese) pages show it, HTML-escaped.

    Whether or not the catalogue translates it yet, this is what the page must contain.
    """
    with app.test_request_context(), force_locale("zh_CN"):
        return str(escape(babel_gettext(msgid, **variables)))


def en(msgid: str, **variables: Any) -> str:
    """A UI string as English pages show it, HTML-escaped."""
    return str(escape(msgid % variables if variables else msgid))


def org_id_by_name(app: Flask, name: str) -> int:
    with app.app_context():
        org_id = db.session.scalar(sa.select(Organization.id).where(Organization.name == name))
    assert org_id is not None, name
    return org_id
