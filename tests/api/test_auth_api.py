"""/api/v1/auth: registration, login throttling, token rotation, logout and /me."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from flask_jwt_extended import create_access_token, decode_token

from tests.api import add_member, assert_error
from tests.conftest import ApiClient
from tests.factories import DEFAULT_PASSWORD
from webapp.auth.models import AuthSession, User
from webapp.auth.services import set_password
from webapp.extensions import db

REGISTER = "/api/v1/auth/register"
LOGIN = "/api/v1/auth/login"
REFRESH = "/api/v1/auth/refresh"
LOGOUT = "/api/v1/auth/logout"
ME = "/api/v1/auth/me"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def session_id(app: Flask, token: str) -> str:
    with app.app_context():
        return str(decode_token(token)["sid"])


def stored_user(app: Flask, email: str) -> User | None:
    with app.app_context():
        return db.session.scalar(db.select(User).where(User.email == email))


def stored_session(app: Flask, sid: str) -> AuthSession:
    with app.app_context():
        session = db.session.get(AuthSession, sid)
        assert session is not None
        return session


# --- register ---------------------------------------------------------------


def test_register_returns_user_and_working_tokens(app, client):
    response = client.post(
        REGISTER, json={"email": "Li.Lei@Example.COM", "password": "s3cret-pass", "name": "李雷"}
    )

    assert response.status_code == 201
    body = response.get_json()
    assert body["user"]["email"] == "li.lei@example.com"
    assert body["user"]["name"] == "李雷"
    assert isinstance(body["user"]["id"], int)
    assert "password" not in body["user"] and "password_hash" not in body["user"]
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 15 * 60
    me = client.get(ME, headers=bearer(body["access_token"]))
    assert me.status_code == 200
    assert me.get_json()["email"] == "li.lei@example.com"
    assert me.get_json()["organizations"] == []
    refreshed = client.post(REFRESH, headers=bearer(body["refresh_token"]))
    assert refreshed.status_code == 200

    user = stored_user(app, "li.lei@example.com")
    assert user is not None
    assert user.password_hash.startswith("$argon2id$")
    assert "s3cret-pass" not in user.password_hash


def test_register_without_name_defaults_to_empty(client):
    response = client.post(REGISTER, json={"email": "noname@example.com", "password": "12345678"})

    assert response.status_code == 201
    assert response.get_json()["user"]["name"] == ""


@pytest.mark.parametrize("email", ["taken@example.com", "TAKEN@Example.com"])
def test_register_duplicate_email_is_409(app, client, make_user, email):
    make_user(email="taken@example.com")

    response = client.post(REGISTER, json={"email": email, "password": "long-enough"})

    assert_error(response, 409, "email_taken")
    with app.app_context():
        count = db.session.scalar(
            db.select(db.func.count()).select_from(User).where(User.email == "taken@example.com")
        )
    assert count == 1


def test_register_short_password_is_422_with_field_errors(app, client):
    response = client.post(REGISTER, json={"email": "short@example.com", "password": "1234567"})

    body = assert_error(response, 422, "validation_error")
    assert "password" in body["errors"]["json"]
    assert stored_user(app, "short@example.com") is None


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"email": "not-an-email", "password": "long-enough"}, "email"),
        ({"email": "two@@example.com", "password": "long-enough"}, "email"),
        ({"email": "", "password": "long-enough"}, "email"),
        ({"email": "a@example.com", "password": "long-enough", "role": "admin"}, "role"),
        ({"email": "a@example.com", "password": "long-enough", "is_platform_admin": True}, None),
        ({"password": "long-enough"}, "email"),
        ({"email": "a@example.com"}, "password"),
        ({}, "email"),
        ({"email": "a@example.com", "password": "x" * 129}, "password"),
        ({"email": "a@example.com", "password": "long-enough", "name": "n" * 101}, "name"),
    ],
)
def test_register_invalid_input_is_422(app, client, payload, field):
    response = client.post(REGISTER, json=payload)

    body = assert_error(response, 422, "validation_error")
    errors = body["errors"]["json"]
    assert (field or "is_platform_admin") in errors
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count()).select_from(User)) == 0


def test_register_address_the_validator_rejects_is_422(app, client):
    """Syntax the schema lets through but the normaliser refuses is still a 422, not a 500."""
    response = client.post(REGISTER, json={"email": "someone@localhost", "password": "long-enough"})

    assert response.status_code == 422
    body = response.get_json()
    assert body["error"] == "validation_error"
    assert "email" in body["errors"]
    assert stored_user(app, "someone@localhost") is None


# --- login ------------------------------------------------------------------


def test_login_returns_tokens_and_records_session(app, client, user):
    response = client.post(
        LOGIN,
        json={"email": user.email.upper(), "password": DEFAULT_PASSWORD},
        headers={"User-Agent": "pytest-agent/1.0"},
    )

    assert response.status_code == 200
    body = response.get_json()
    assert body["access_token"] and body["refresh_token"]
    assert body["token_type"] == "Bearer"
    assert client.get(ME, headers=bearer(body["access_token"])).get_json()["id"] == user.id
    session = stored_session(app, session_id(app, body["access_token"]))
    assert session.user_id == user.id
    assert session.revoked_at is None
    assert session.user_agent == "pytest-agent/1.0"
    with app.app_context():
        assert db.session.get(User, user.id).last_login_at is not None


@pytest.mark.parametrize(
    ("email", "password"),
    [("{user}", "wrong-password"), ("nobody@example.com", DEFAULT_PASSWORD)],
    ids=["wrong-password", "unknown-email"],
)
def test_login_bad_credentials_is_401(app, client, user, email, password):
    response = client.post(
        LOGIN, json={"email": email.format(user=user.email), "password": password}
    )

    assert_error(response, 401, "invalid_credentials")
    assert "access_token" not in response.get_json()
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count()).select_from(AuthSession)) == 0


def test_login_same_message_for_wrong_password_and_unknown_email(client, user):
    wrong = client.post(LOGIN, json={"email": user.email, "password": "wrong-password"})
    unknown = client.post(LOGIN, json={"email": "nobody@example.com", "password": "whatever1"})

    assert wrong.get_json() == unknown.get_json()


def test_login_disabled_account_is_refused(client, make_user):
    disabled = make_user(is_active_account=False)

    response = client.post(LOGIN, json={"email": disabled.email, "password": DEFAULT_PASSWORD})

    assert_error(response, 401, "account_disabled")


@pytest.mark.parametrize(
    "payload",
    [{}, {"email": "a@example.com"}, {"password": "x"}, {"email": "", "password": "x"}],
)
def test_login_missing_fields_is_422(client, payload):
    assert_error(client.post(LOGIN, json=payload), 422, "validation_error")


def test_login_throttled_after_five_failures_for_one_account(client, user, make_user):
    variants = [user.email, user.email.upper(), f"  {user.email}  ", user.email, user.email]
    for email in variants:
        failed = client.post(LOGIN, json={"email": email, "password": "wrong-password"})
        assert_error(failed, 401, "invalid_credentials")

    # The sixth attempt is refused even with the right password.
    blocked = client.post(LOGIN, json={"email": user.email, "password": DEFAULT_PASSWORD})
    assert_error(blocked, 429, "rate_limited")
    assert "access_token" not in blocked.get_json()
    assert "Retry-After" in blocked.headers

    # Other accounts (from the same address) are not affected.
    other = make_user()
    ok = client.post(LOGIN, json={"email": other.email, "password": DEFAULT_PASSWORD})
    assert ok.status_code == 200


def test_successful_logins_do_not_use_up_the_account_budget(client, user):
    for _ in range(4):
        failed = client.post(LOGIN, json={"email": user.email, "password": "wrong-password"})
        assert failed.status_code == 401
    for _ in range(6):
        ok = client.post(LOGIN, json={"email": user.email, "password": DEFAULT_PASSWORD})
        assert ok.status_code == 200

    fifth_failure = client.post(LOGIN, json={"email": user.email, "password": "wrong-password"})
    assert_error(fifth_failure, 401, "invalid_credentials")
    blocked = client.post(LOGIN, json={"email": user.email, "password": DEFAULT_PASSWORD})
    assert_error(blocked, 429, "rate_limited")


def test_login_throttled_per_client_ip(app, client, user, monkeypatch):
    monkeypatch.setitem(app.config, "LOGIN_LIMIT_PER_IP", "3 per minute")
    ip = {"REMOTE_ADDR": "203.0.113.7"}
    for n in range(3):
        failed = client.post(
            LOGIN,
            json={"email": f"guess{n}@example.com", "password": "wrong-password"},
            environ_base=ip,
        )
        assert_error(failed, 401, "invalid_credentials")

    blocked = client.post(
        LOGIN, json={"email": user.email, "password": DEFAULT_PASSWORD}, environ_base=ip
    )
    assert_error(blocked, 429, "rate_limited")

    elsewhere = client.post(
        LOGIN,
        json={"email": user.email, "password": DEFAULT_PASSWORD},
        environ_base={"REMOTE_ADDR": "198.51.100.9"},
    )
    assert elsewhere.status_code == 200


def test_invalid_login_payloads_do_not_count_as_failures(client, user):
    for _ in range(8):
        assert client.post(LOGIN, json={"email": user.email}).status_code == 422

    ok = client.post(LOGIN, json={"email": user.email, "password": DEFAULT_PASSWORD})
    assert ok.status_code == 200


# --- refresh ----------------------------------------------------------------


def test_refresh_rotates_the_pair(app, client, api_client):
    old_refresh = api_client.refresh_token
    response = client.post(REFRESH, headers=bearer(old_refresh))

    assert response.status_code == 200
    body = response.get_json()
    assert body["refresh_token"] != old_refresh
    assert body["access_token"] != api_client.token
    assert client.get(ME, headers=bearer(body["access_token"])).status_code == 200
    # Same session, and the newest refresh token rotates again.
    assert session_id(app, body["refresh_token"]) == session_id(app, old_refresh)
    again = client.post(REFRESH, headers=bearer(body["refresh_token"]))
    assert again.status_code == 200
    assert stored_session(app, session_id(app, old_refresh)).last_refreshed_at is not None


def test_reused_refresh_token_revokes_the_whole_session(app, client, api_client):
    first_access, old_refresh = api_client.token, api_client.refresh_token
    rotated = client.post(REFRESH, headers=bearer(old_refresh)).get_json()

    reuse = client.post(REFRESH, headers=bearer(old_refresh))

    assert_error(reuse, 401, "token_revoked")
    for refresh in (rotated["refresh_token"], old_refresh):
        assert_error(client.post(REFRESH, headers=bearer(refresh)), 401, "token_revoked")
    for access in (rotated["access_token"], first_access):
        assert_error(client.get(ME, headers=bearer(access)), 401, "token_revoked")
    session = stored_session(app, session_id(app, old_refresh))
    assert session.revoked_at is not None
    assert session.revoked_reason == "refresh_reuse"


def test_refresh_reuse_leaves_other_sessions_alone(client, api_client, make_api_client, user):
    other_device = make_api_client(user)
    client.post(REFRESH, headers=bearer(api_client.refresh_token))
    client.post(REFRESH, headers=bearer(api_client.refresh_token))  # reuse: revokes session 1

    assert other_device.get(ME).status_code == 200
    assert client.post(REFRESH, headers=bearer(other_device.refresh_token)).status_code == 200


def test_access_token_is_refused_by_refresh(client, api_client):
    response = client.post(REFRESH, headers=bearer(api_client.token))

    assert_error(response, 401, "token_invalid")


def test_refresh_token_is_refused_by_me(client, api_client):
    response = client.get(ME, headers=bearer(api_client.refresh_token))

    assert_error(response, 401, "token_invalid")


def test_refresh_without_token_is_401(client):
    assert_error(client.post(REFRESH), 401, "authentication_required")


# --- logout -----------------------------------------------------------------


def test_logout_ends_only_this_session(app, client, api_client, make_api_client, user):
    other_device = make_api_client(user)
    access, refresh = api_client.token, api_client.refresh_token

    response = api_client.post(LOGOUT)

    assert response.status_code == 204
    assert response.get_data() == b""
    assert_error(client.get(ME, headers=bearer(access)), 401, "token_revoked")
    assert_error(client.post(REFRESH, headers=bearer(refresh)), 401, "token_revoked")
    assert_error(client.post(LOGOUT, headers=bearer(access)), 401, "token_revoked")
    assert other_device.get(ME).status_code == 200
    assert client.post(REFRESH, headers=bearer(other_device.refresh_token)).status_code == 200
    session = stored_session(app, session_id(app, access))
    assert session.revoked_reason == "logout"
    assert stored_session(app, session_id(app, other_device.token)).revoked_at is None


def test_logout_with_the_refresh_token_ends_the_session(client, api_client):
    response = client.post(LOGOUT, headers=bearer(api_client.refresh_token))

    assert response.status_code == 204
    assert_error(api_client.get(ME), 401, "token_revoked")


def test_logout_without_token_is_401(client):
    assert_error(client.post(LOGOUT), 401, "authentication_required")


# --- me -----------------------------------------------------------------------


def test_me_lists_organizations_with_roles(app, api_client, user, make_user, make_api_client):
    own = api_client.post("/api/v1/organizations", json={"name": "甲公司"}).get_json()
    owner = make_user()
    other = make_api_client(owner).post("/api/v1/organizations", json={"name": "乙公司"})
    add_member(app, other.get_json()["id"], user, "admin")

    response = api_client.get(ME)

    assert response.status_code == 200
    body = response.get_json()
    assert body["id"] == user.id
    assert body["email"] == user.email
    assert body["name"] == user.name
    assert "password_hash" not in body
    assert sorted((o["id"], o["name"], o["role"]) for o in body["organizations"]) == sorted(
        [(own["id"], "甲公司", "owner"), (other.get_json()["id"], "乙公司", "admin")]
    )


def test_me_without_token_is_401(client):
    assert_error(client.get(ME), 401, "authentication_required")


@pytest.mark.parametrize(
    "header",
    [
        "Bearer not-a-jwt",
        "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl",
    ],
    ids=["garbage", "bad-signature"],
)
def test_me_with_invalid_token_is_401(client, header):
    assert_error(client.get(ME, headers={"Authorization": header}), 401, "token_invalid")


def test_me_with_token_signed_by_another_key_is_401(app, client, api_client, monkeypatch):
    sid = session_id(app, api_client.token)
    monkeypatch.setitem(app.config, "JWT_SECRET_KEY", "another-secret-key-of-sufficient-length")
    with app.app_context():
        forged = create_access_token(identity="1", additional_claims={"sid": sid})
    monkeypatch.undo()

    assert_error(client.get(ME, headers=bearer(forged)), 401, "token_invalid")


def test_me_with_expired_token_is_401(app, client, api_client, user):
    sid = session_id(app, api_client.token)
    with app.app_context():
        expired = create_access_token(
            identity=str(user.id),
            expires_delta=timedelta(seconds=-1),
            additional_claims={"sid": sid},
        )

    assert_error(client.get(ME, headers=bearer(expired)), 401, "token_expired")


def test_token_without_a_known_session_is_revoked(app, client, user):
    with app.app_context():
        no_session = create_access_token(identity=str(user.id))
        unknown_session = create_access_token(
            identity=str(user.id), additional_claims={"sid": "00000000-0000-0000-0000-000000000000"}
        )

    assert_error(client.get(ME, headers=bearer(no_session)), 401, "token_revoked")
    assert_error(client.get(ME, headers=bearer(unknown_session)), 401, "token_revoked")


def test_tokens_of_a_disabled_account_stop_working(app, api_client, user):
    with app.app_context():
        db.session.get(User, user.id).is_active_account = False
        db.session.commit()

    response = api_client.get(ME)

    assert response.status_code == 401
    assert response.get_json()["error"] in {"token_invalid", "account_disabled"}


# --- password change ----------------------------------------------------------


def test_password_change_revokes_every_api_session(
    app, client, api_client: ApiClient, make_api_client: Any, user
):
    second = make_api_client(user)

    with app.app_context():
        set_password(db.session.get(User, user.id), "a-brand-new-password")
        db.session.commit()

    for session in (api_client, second):
        assert_error(session.get(ME), 401, "token_revoked")
        assert_error(
            client.post(REFRESH, headers=bearer(session.refresh_token)), 401, "token_revoked"
        )
    with app.app_context():
        reasons = db.session.scalars(
            db.select(AuthSession.revoked_reason).where(AuthSession.user_id == user.id)
        ).all()
    assert reasons == ["password_changed", "password_changed"]
    old = client.post(LOGIN, json={"email": user.email, "password": DEFAULT_PASSWORD})
    assert_error(old, 401, "invalid_credentials")
    new = client.post(LOGIN, json={"email": user.email, "password": "a-brand-new-password"})
    assert new.status_code == 200
    assert client.get(ME, headers=bearer(new.get_json()["access_token"])).status_code == 200


def test_password_change_leaves_other_users_sessions(app, user, make_api_client):
    stranger = make_api_client()

    with app.app_context():
        set_password(db.session.get(User, user.id), "a-brand-new-password")
        db.session.commit()

    assert stranger.get(ME).status_code == 200
