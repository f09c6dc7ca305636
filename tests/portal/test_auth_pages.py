"""Portal pages for accounts: sign up, log in and out, throttling, password reset, i18n, errors."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa

from tests.factories import DEFAULT_PASSWORD
from tests.portal.conftest import Portal, csrf_token_in, en, link_in, zh
from webapp.auth.models import User
from webapp.extensions import db

NEW_PASSWORD = "a-brand-new-secret"


def login_works(app: Any, email: str, password: str) -> bool:
    """Whether a fresh browser can log in with these credentials."""
    return Portal(app.test_client()).login(email, password).status_code == 302


def user_by_email(app: Any, email: str) -> User | None:
    with app.app_context():
        return db.session.scalar(sa.select(User).where(User.email == email))


# --- sign up -----------------------------------------------------------------


def test_signup_page_shows_the_form(portal: Portal) -> None:
    html = portal.page("/signup")
    assert 'name="email"' in html and 'name="password"' in html and 'name="confirm"' in html
    assert csrf_token_in(html)


def test_signup_creates_the_user_and_logs_in(app: Any, portal: Portal) -> None:
    response = portal.signup("New.Person@Example.com", name="新用户")

    assert response.status_code == 302
    assert response.headers["Location"] == "/dashboard"
    created = user_by_email(app, "new.person@example.com")
    assert created is not None and created.name == "新用户"
    dashboard = portal.page("/dashboard")
    assert 'id="create-first-org"' in dashboard
    assert "新用户" in dashboard


def test_signup_with_a_taken_email_shows_the_error_on_the_form(
    app: Any, portal: Portal, user: Any
) -> None:
    response = portal.signup(user.email.upper())

    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert zh(app, "An account with this email already exists.") in html
    assert "is-invalid" in html
    with app.app_context():
        count = db.session.scalar(sa.select(sa.func.count()).select_from(User))
    assert count == 1
    assert portal.get("/dashboard").status_code == 302  # not logged in


def test_signup_with_mismatched_passwords_is_refused(app: Any, portal: Portal) -> None:
    response = portal.signup("mismatch@example.com", confirm="something-else-entirely")

    assert response.status_code == 200
    assert zh(app, "Passwords do not match.") in response.get_data(as_text=True)
    assert user_by_email(app, "mismatch@example.com") is None


def test_signup_with_a_short_password_is_refused(portal: Portal, app: Any) -> None:
    response = portal.signup("short@example.com", password="short")

    assert response.status_code == 200
    assert 'is-invalid" id="password"' in response.get_data(as_text=True)
    assert user_by_email(app, "short@example.com") is None


def test_signup_page_redirects_when_already_logged_in(logged_in: Portal) -> None:
    response = logged_in.get("/signup")
    assert response.status_code == 302
    assert response.headers["Location"] == "/dashboard"


# --- CSRF and cookies --------------------------------------------------------


def test_a_post_without_csrf_token_is_refused(app: Any, client: Any, user: Any) -> None:
    response = client.post("/login", data={"email": user.email, "password": DEFAULT_PASSWORD})

    assert response.status_code == 400
    assert response.mimetype == "text/html"
    html = response.get_data(as_text=True)
    assert zh(app, "Bad request") in html
    assert zh(app, "This form has expired. Go back, reload the page and try again.") in html
    assert client.get("/dashboard").status_code == 302


def test_a_post_with_a_forged_csrf_token_is_refused(client: Any, user: Any) -> None:
    response = client.post(
        "/signup",
        data={
            "email": "forged@example.com",
            "password": DEFAULT_PASSWORD,
            "confirm": DEFAULT_PASSWORD,
            "csrf_token": "forged",
        },
    )
    assert response.status_code == 400


@pytest.mark.parametrize("cookie", ["session", "remember_token"])
def test_login_cookies_are_httponly_and_samesite_lax(
    portal: Portal, user: Any, cookie: str
) -> None:
    response = portal.submit(
        "/login", {"email": user.email, "password": DEFAULT_PASSWORD, "remember": "y"}
    )

    headers = [h for h in response.headers.getlist("Set-Cookie") if h.startswith(cookie + "=")]
    assert headers, response.headers
    flags = [part.strip().lower() for part in headers[-1].split(";")]
    assert "httponly" in flags
    assert "samesite=lax" in flags


# --- log in and out ----------------------------------------------------------


def test_login_with_good_credentials_goes_to_the_dashboard(
    app: Any, portal: Portal, user: Any
) -> None:
    response = portal.login(user.email.upper())

    assert response.status_code == 302
    assert response.headers["Location"] == "/dashboard"
    assert portal.get("/dashboard").status_code == 200
    refreshed = user_by_email(app, user.email)
    assert refreshed is not None and refreshed.last_login_at is not None


def test_login_with_a_wrong_password_is_401_with_a_message(
    app: Any, portal: Portal, user: Any
) -> None:
    response = portal.login(user.email, "wrong-password")

    assert response.status_code == 401
    html = response.get_data(as_text=True)
    assert zh(app, "Email or password is incorrect.") in html
    assert 'name="password"' in html
    assert portal.get("/dashboard").status_code == 302


def test_login_with_an_unknown_email_gives_the_same_answer(app: Any, portal: Portal) -> None:
    response = portal.login("nobody@example.com", "whatever-password")

    assert response.status_code == 401
    assert zh(app, "Email or password is incorrect.") in response.get_data(as_text=True)


def test_login_follows_a_same_site_next(portal: Portal, user: Any) -> None:
    response = portal.login(user.email, next="/organizations/new")

    assert response.status_code == 302
    assert response.headers["Location"] == "/organizations/new"


@pytest.mark.parametrize(
    "target",
    ["//evil.com", "https://evil.com", "/\\evil.com", "javascript:alert(1)", "http:/evil.com"],
)
def test_login_ignores_an_off_site_next(portal: Portal, user: Any, target: str) -> None:
    response = portal.client.post(
        "/login",
        query_string={"next": target},
        data={
            "email": user.email,
            "password": DEFAULT_PASSWORD,
            "csrf_token": portal.csrf_token(),
        },
    )

    assert response.status_code == 302
    assert response.headers["Location"] == "/dashboard"


def test_signup_follows_only_a_same_site_next(portal: Portal, make_portal: Any) -> None:
    response = portal.signup("next-ok@example.com", query="?next=/organizations/new")
    assert response.headers["Location"] == "/organizations/new"

    response = make_portal().signup("next-evil@example.com", query="?next=//evil.com")
    assert response.headers["Location"] == "/dashboard"


def test_dashboard_requires_login_and_comes_back_after_it(portal: Portal, user: Any) -> None:
    response = portal.get("/dashboard")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login?next=")

    response = portal.login(user.email, next="/dashboard")
    assert response.headers["Location"] == "/dashboard"


def test_logout_is_post_only_and_needs_csrf(app: Any, logged_in: Portal) -> None:
    get = logged_in.get("/logout")
    assert get.status_code == 405
    assert get.mimetype == "text/html"
    assert logged_in.client.post("/logout").status_code == 400
    assert logged_in.get("/dashboard").status_code == 200  # still logged in

    response = logged_in.logout()

    assert response.status_code == 302
    assert response.headers["Location"] == "/login"
    assert zh(app, "You have logged out.") in logged_in.page("/login")
    assert logged_in.get("/dashboard").status_code == 302


def test_a_disabled_account_cannot_log_in(app: Any, portal: Portal, make_user: Any) -> None:
    disabled = make_user(is_active_account=False)

    response = portal.login(disabled.email)

    assert response.status_code == 401
    assert zh(app, "This account is disabled.") in response.get_data(as_text=True)
    assert portal.get("/dashboard").status_code == 302


def test_disabling_an_account_logs_it_out_of_the_portal(
    app: Any, logged_in: Portal, user: Any
) -> None:
    assert logged_in.get("/dashboard").status_code == 200
    with app.app_context():
        db.session.execute(
            sa.update(User).where(User.id == user.id).values(is_active_account=False)
        )
        db.session.commit()

    response = logged_in.get("/dashboard")

    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login")


def test_the_start_page_sends_visitors_to_login_and_members_to_the_dashboard(
    portal: Portal, user: Any
) -> None:
    assert portal.get("/").headers["Location"] == "/login"
    portal.login(user.email)
    assert portal.get("/").headers["Location"] == "/dashboard"


# --- throttling --------------------------------------------------------------


def test_five_failed_logins_lock_the_account_with_a_429_page(
    app: Any, portal: Portal, make_user: Any
) -> None:
    victim = make_user()
    bystander = make_user()
    for _attempt in range(5):
        assert portal.login(victim.email, "wrong-password").status_code == 401

    response = portal.login(victim.email)  # even the right password waits

    assert response.status_code == 429
    assert response.mimetype == "text/html"
    assert zh(app, "Too many requests, please slow down") in response.get_data(as_text=True)
    assert portal.get("/dashboard").status_code == 302
    assert portal.login(bystander.email).status_code == 302  # other accounts are unaffected


def test_successful_logins_do_not_count_towards_the_limit(portal: Portal, user: Any) -> None:
    for _attempt in range(6):
        assert portal.login(user.email).status_code == 302
        assert portal.logout().status_code == 302


# --- password reset ----------------------------------------------------------


def test_forgot_password_mails_a_reset_link(
    app: Any, portal: Portal, user: Any, outbox: list[Any]
) -> None:
    response = portal.submit("/forgot-password", {"email": user.email})

    assert response.status_code == 302
    assert response.headers["Location"] == "/login"
    message = zh(
        app, "If an account exists for that email, we have sent a link to reset the password."
    )
    assert message in portal.page("/login")
    assert len(outbox) == 1
    assert outbox[0].recipients == [user.email]
    assert link_in(outbox[0], "/reset-password/").startswith("/reset-password/")


def test_forgot_password_for_an_unknown_email_says_the_same_and_sends_nothing(
    app: Any, portal: Portal, outbox: list[Any]
) -> None:
    response = portal.submit("/forgot-password", {"email": "nobody@example.com"})

    assert response.status_code == 302
    assert response.headers["Location"] == "/login"
    message = zh(
        app, "If an account exists for that email, we have sent a link to reset the password."
    )
    assert message in portal.page("/login")
    assert outbox == []


def _reset_link(portal: Portal, email: str, outbox: list[Any]) -> str:
    assert portal.submit("/forgot-password", {"email": email}).status_code == 302
    return link_in(outbox[-1], "/reset-password/")


def test_reset_link_sets_a_new_password(
    app: Any, portal: Portal, make_portal: Any, user: Any, outbox: list[Any]
) -> None:
    link = _reset_link(portal, user.email, outbox)

    assert 'name="password"' in portal.page(link)
    response = portal.submit(link, {"password": NEW_PASSWORD, "confirm": NEW_PASSWORD})

    assert response.status_code == 302
    assert response.headers["Location"] == "/dashboard"
    assert zh(app, "Your password has been changed.") in portal.page("/dashboard")
    other = make_portal()
    assert other.login(user.email).status_code == 401
    assert other.login(user.email, NEW_PASSWORD).status_code == 302


def test_reset_form_checks_the_new_password(
    app: Any, portal: Portal, user: Any, outbox: Any
) -> None:
    link = _reset_link(portal, user.email, outbox)

    response = portal.submit(link, {"password": NEW_PASSWORD, "confirm": "not-the-same-one"})

    assert response.status_code == 200
    assert zh(app, "Passwords do not match.") in response.get_data(as_text=True)
    assert login_works(app, user.email, DEFAULT_PASSWORD)


def test_a_reset_link_works_only_once(app: Any, portal: Portal, user: Any, outbox: Any) -> None:
    link = _reset_link(portal, user.email, outbox)
    assert (
        portal.submit(link, {"password": NEW_PASSWORD, "confirm": NEW_PASSWORD}).status_code == 302
    )
    portal.logout()

    response = portal.get(link)

    assert response.status_code == 302
    assert response.headers["Location"] == "/forgot-password"
    assert zh(app, "This reset link is invalid or has expired.") in portal.page("/forgot-password")
    response = portal.client.post(
        link,
        data={
            "password": "third-password-here",
            "confirm": "third-password-here",
            "csrf_token": portal.csrf_token(),
        },
    )
    assert response.status_code == 302
    assert response.headers["Location"] == "/forgot-password"
    assert login_works(app, user.email, NEW_PASSWORD)


def test_a_tampered_reset_token_is_refused(
    app: Any, portal: Portal, user: Any, outbox: Any
) -> None:
    link = _reset_link(portal, user.email, outbox)
    tampered = link[:-3] + ("aaa" if not link.endswith("aaa") else "bbb")

    response = portal.get(tampered)

    assert response.status_code == 302
    assert response.headers["Location"] == "/forgot-password"
    response = portal.client.post(
        tampered,
        data={"password": NEW_PASSWORD, "confirm": NEW_PASSWORD, "csrf_token": portal.csrf_token()},
    )
    assert response.status_code == 302
    assert login_works(app, user.email, DEFAULT_PASSWORD)


def test_a_password_reset_logs_out_other_browsers(
    portal: Portal, make_portal: Any, user: Any, outbox: Any
) -> None:
    other = make_portal()
    assert other.login(user.email).status_code == 302
    assert other.get("/dashboard").status_code == 200

    link = _reset_link(portal, user.email, outbox)
    assert (
        portal.submit(link, {"password": NEW_PASSWORD, "confirm": NEW_PASSWORD}).status_code == 302
    )

    response = other.get("/dashboard")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login")
    assert portal.get("/dashboard").status_code == 200  # the browser that reset stays in


def test_a_remember_me_cookie_does_not_survive_a_password_reset(
    portal: Portal, make_portal: Any, user: Any, outbox: Any
) -> None:
    other = make_portal()
    response = other.submit(
        "/login", {"email": user.email, "password": DEFAULT_PASSWORD, "remember": "y"}
    )
    assert response.status_code == 302
    assert other.client.get_cookie("remember_token") is not None

    link = _reset_link(portal, user.email, outbox)
    assert (
        portal.submit(link, {"password": NEW_PASSWORD, "confirm": NEW_PASSWORD}).status_code == 302
    )

    other.client.delete_cookie("session")  # browser restarted: only the remember cookie is left
    assert other.get("/dashboard").status_code == 302


# --- i18n ----------------------------------------------------------------------


def test_pages_are_chinese_by_default_and_english_on_request(portal: Portal) -> None:
    chinese = portal.page("/login")
    assert '<html lang="zh-CN">' in chinese
    assert "登录" in chinese

    portal.switch_language("en")

    english = portal.page("/login")
    assert '<html lang="en">' in english
    assert "Log in" in english
    assert "登录" not in english


def test_an_unknown_language_is_ignored(portal: Portal) -> None:
    response = portal.get("/lang/xx")

    assert response.status_code == 302
    assert '<html lang="zh-CN">' in portal.page("/login")


def test_language_switch_returns_to_the_page_but_never_off_site(portal: Portal) -> None:
    response = portal.get("/lang/en?next=/signup")
    assert response.headers["Location"] == "/signup"

    for target in ("//evil.com", "https://evil.com", "/\\evil.com"):
        response = portal.client.get("/lang/en", query_string={"next": target})
        assert response.status_code == 302
        assert response.headers["Location"] == "/"


def test_english_pages_show_english_messages(portal: Portal, user: Any) -> None:
    portal.switch_language("en")

    response = portal.login(user.email, "wrong-password")

    assert en("Email or password is incorrect.") in response.get_data(as_text=True)


# --- errors and health -----------------------------------------------------------


def test_unknown_portal_url_is_an_html_404(app: Any, client: Any) -> None:
    response = client.get("/no-such-page")

    assert response.status_code == 404
    assert response.mimetype == "text/html"
    html = response.get_data(as_text=True)
    assert "<html" in html
    assert zh(app, "Page not found") in html


def test_unknown_api_url_is_a_json_404(client: Any) -> None:
    response = client.get("/api/v1/unknown")

    assert response.status_code == 404
    assert response.is_json
    assert response.get_json()["error"] == "not_found"


def test_healthz_reports_the_database(client: Any) -> None:
    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.is_json
    body = response.get_json()
    assert body["checks"]["database"] == "ok"
    assert body["status"] == "ok"


def test_nul_in_a_form_field_is_400_not_500(client):
    response = client.post("/login", data={"email": "a\x00@example.com", "password": "x"})
    assert response.status_code == 400
    assert "text/html" in response.content_type
