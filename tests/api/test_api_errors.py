"""One error envelope for every failure on /api/v1, and the public plan list."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.api import ENVELOPE_KEYS, add_member, assert_error
from tests.factories import DEFAULT_PASSWORD
from webapp.auth.models import User
from webapp.billing import api as billing_api
from webapp.extensions import db
from webapp.orgs.models import Organization

REGISTER = "/api/v1/auth/register"
LOGIN = "/api/v1/auth/login"
ORGS = "/api/v1/organizations"
PLANS = "/api/v1/subscriptions/plans"
ONE_MIB = 1024 * 1024


def users_in_db(app: Any) -> int:
    with app.app_context():
        return int(db.session.scalar(db.select(db.func.count()).select_from(User)) or 0)


def orgs_in_db(app: Any) -> int:
    with app.app_context():
        return int(db.session.scalar(db.select(db.func.count()).select_from(Organization)) or 0)


# --- the envelope ---------------------------------------------------------------

# (method, path, request kwargs, expected status, expected error id)
ANONYMOUS_ERRORS = [
    (
        "POST",
        REGISTER,
        {"json": {"email": "x@example.com", "password": "short"}},
        422,
        "validation_error",
    ),
    (
        "POST",
        REGISTER,
        {"data": "{not json", "content_type": "application/json"},
        400,
        "bad_request",
    ),
    (
        "POST",
        LOGIN,
        {"json": {"email": "nobody@example.com", "password": "wrong-pw"}},
        401,
        "invalid_credentials",
    ),
    ("GET", "/api/v1/auth/me", {}, 401, "authentication_required"),
    (
        "GET",
        "/api/v1/auth/me",
        {"headers": {"Authorization": "Bearer x.y.z"}},
        401,
        "token_invalid",
    ),
    ("GET", "/api/v1/no-such-thing", {}, 404, "not_found"),
    ("GET", "/api/v1/auth/login", {}, 405, "method_not_allowed"),
    (
        "POST",
        REGISTER,
        {"data": b"x" * (ONE_MIB + 1), "content_type": "application/json"},
        413,
        "payload_too_large",
    ),
]


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status", "error"),
    ANONYMOUS_ERRORS,
    ids=[f"{status}-{error}" for *_, status, error in ANONYMOUS_ERRORS],
)
def test_every_error_has_the_envelope(client, method, path, kwargs, status, error):
    response = client.open(path, method=method, **kwargs)

    body = assert_error(response, status, error)
    assert set(body) <= ENVELOPE_KEYS | {"errors"}
    assert "Traceback" not in response.get_data(as_text=True)


def test_authenticated_errors_have_the_envelope(
    app, api_client, user, org, make_user, make_api_client
):
    member = make_user()
    add_member(app, org["id"], member, "member")
    checks = [
        (make_api_client().get(f"{ORGS}/{org['id']}"), 404, "not_found"),
        (
            make_api_client(member).patch(f"{ORGS}/{org['id']}", json={"name": "x"}),
            403,
            "forbidden",
        ),
        (api_client.delete(f"{ORGS}/{org['id']}/members/{user.id}"), 409, "last_owner"),
        (api_client.patch(f"{ORGS}/{org['id']}", json={"name": 5}), 422, "validation_error"),
    ]

    for response, status, error in checks:
        body = assert_error(response, status, error)
        assert set(body) <= ENVELOPE_KEYS | {"errors"}


def test_validation_errors_list_each_field(client):
    response = client.post(REGISTER, json={"email": "bad", "password": "1", "extra": True})

    body = assert_error(response, 422, "validation_error")
    assert set(body["errors"]["json"]) == {"email", "password", "extra"}
    assert all(isinstance(messages, list) for messages in body["errors"]["json"].values())


def test_unexpected_exception_is_a_json_500_without_details(client, monkeypatch):
    def explode() -> list[Any]:
        raise RuntimeError("secret internal detail")

    monkeypatch.setattr(billing_api.services, "public_plans", explode)

    response = client.get(PLANS)

    body = assert_error(response, 500, "internal_error")
    assert "secret internal detail" not in response.get_data(as_text=True)
    assert "errors" not in body


# --- malformed and mistyped bodies ------------------------------------------------


@pytest.mark.parametrize("path", [REGISTER, LOGIN])
@pytest.mark.parametrize("raw", ["{not json", '{"email": "a@example.com",}', "\xff\xfe"])
def test_malformed_json_is_400(app, client, path, raw):
    response = client.post(path, data=raw, content_type="application/json")

    assert_error(response, 400, "bad_request")
    assert users_in_db(app) == 0


def test_malformed_json_is_400_when_authenticated(app, api_client):
    response = api_client.post(ORGS, data="{", content_type="application/json")

    assert_error(response, 400, "bad_request")
    assert orgs_in_db(app) == 0


@pytest.mark.parametrize(
    ("path", "payload", "field"),
    [
        (REGISTER, {"email": [], "password": "long-enough"}, "email"),
        (REGISTER, {"email": {"a": 1}, "password": "long-enough"}, "email"),
        (REGISTER, {"email": "a@example.com", "password": 12345678}, "password"),
        (REGISTER, {"email": "a@example.com", "password": "long-enough", "name": 123}, "name"),
        (REGISTER, {"email": None, "password": "long-enough"}, "email"),
        (LOGIN, {"email": [], "password": "long-enough"}, "email"),
        (LOGIN, {"email": "a@example.com", "password": ["x"]}, "password"),
    ],
)
def test_wrong_types_are_422_not_500(app, client, path, payload, field):
    response = client.post(path, json=payload)

    body = assert_error(response, 422, "validation_error")
    assert field in body["errors"]["json"]
    assert users_in_db(app) == 0


@pytest.mark.parametrize("payload", [[], ["a"], "text", 42, True])
@pytest.mark.parametrize("path", [REGISTER, LOGIN])
def test_body_that_is_not_an_object_is_422(app, client, path, payload):
    response = client.post(path, data=json.dumps(payload), content_type="application/json")

    assert_error(response, 422, "validation_error")
    assert users_in_db(app) == 0


@pytest.mark.parametrize(
    ("method", "suffix", "payload", "field"),
    [
        ("POST", "", {"name": 123}, "name"),
        ("POST", "", {"name": ["a"]}, "name"),
        ("PATCH", "/{org}", {"name": 123}, "name"),
        ("POST", "/{org}/members", {"email": []}, "email"),
        ("POST", "/{org}/members", {"email": "a@example.com", "role": 1}, "role"),
        ("PATCH", "/{org}/members/{me}", {"role": None}, "role"),
    ],
)
def test_wrong_types_on_organization_endpoints_are_422(
    app, api_client, org, user, method, suffix, payload, field
):
    url = ORGS + suffix.format(org=org["id"], me=user.id)

    response = api_client.open(method, url, json=payload)

    body = assert_error(response, 422, "validation_error")
    assert field in body["errors"]["json"]
    assert orgs_in_db(app) == 1


@pytest.mark.parametrize(
    "query", [{"page": 0}, {"page": "x"}, {"page_size": 0}, {"page_size": 1000}]
)
def test_bad_pagination_parameters_are_422(api_client, query):
    body = assert_error(api_client.get(ORGS, query_string=query), 422, "validation_error")
    assert "query" in body["errors"]


# --- size, paths, methods and content types ---------------------------------------


@pytest.mark.parametrize("path", [REGISTER, LOGIN])
def test_body_over_one_mib_is_413(app, client, path):
    big = json.dumps({"email": "a@example.com", "password": "p" * (ONE_MIB + 10)})

    response = client.post(path, data=big, content_type="application/json")

    assert_error(response, 413, "payload_too_large")
    assert users_in_db(app) == 0


def test_body_over_one_mib_is_413_when_authenticated(app, api_client):
    big = json.dumps({"name": "n" * (ONE_MIB + 10)})

    response = api_client.post(ORGS, data=big, content_type="application/json")

    assert_error(response, 413, "payload_too_large")
    assert orgs_in_db(app) == 0


def test_body_just_under_the_limit_is_read(client):
    payload = json.dumps({"email": "a@example.com", "password": "p" * (ONE_MIB - 100)})

    response = client.post(REGISTER, data=payload, content_type="application/json")

    assert_error(response, 422, "validation_error")  # too long a password, but read and judged


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/nothing-here",
        "/api/v1/auth/nothing",
        "/api/v1/organizations/not-a-number",
        "/api/v2/organizations",
    ],
)
def test_unknown_api_path_is_json_404(client, path):
    assert_error(client.get(path), 404, "not_found")


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("GET", LOGIN, "POST"),
        ("PUT", REGISTER, "POST"),
        ("GET", "/api/v1/auth/refresh", "POST"),
        ("POST", "/api/v1/auth/me", "GET"),
        ("DELETE", ORGS, "POST"),
        ("POST", PLANS, "GET"),
    ],
)
def test_wrong_method_is_json_405(client, method, path, allowed):
    response = client.open(path, method=method)

    assert_error(response, 405, "method_not_allowed")
    assert allowed in response.headers["Allow"]


@pytest.mark.parametrize(
    ("data", "content_type"),
    [
        ({"email": "form@example.com", "password": "long-enough"}, None),
        ('{"email": "form@example.com", "password": "long-enough"}', "text/plain"),
        ("email=form@example.com&password=long-enough", "application/x-www-form-urlencoded"),
    ],
    ids=["multipart-form", "text-plain", "urlencoded"],
)
def test_non_json_body_to_json_endpoint_is_a_json_4xx(app, client, data, content_type):
    kwargs: dict[str, Any] = {"data": data}
    if content_type:
        kwargs["content_type"] = content_type

    response = client.post(REGISTER, **kwargs)

    assert 400 <= response.status_code < 500
    assert response.is_json
    body = response.get_json()
    assert body["code"] == response.status_code
    assert body.keys() >= ENVELOPE_KEYS
    assert users_in_db(app) == 0


def test_non_json_login_does_not_log_in(client, user):
    response = client.post(LOGIN, data={"email": user.email, "password": DEFAULT_PASSWORD})

    assert 400 <= response.status_code < 500
    assert response.is_json
    assert "access_token" not in response.get_json()


def test_portal_errors_stay_html(client):
    response = client.get("/no-such-page")

    assert response.status_code == 404
    assert response.mimetype == "text/html"


# --- public plans ----------------------------------------------------------------------


def test_plans_are_public_with_prices_limits_and_features(client):
    response = client.get(PLANS)

    assert response.status_code == 200
    plans = {plan["code"]: plan for plan in response.get_json()}
    assert [plan["code"] for plan in response.get_json()] == ["free", "pro", "enterprise"]
    assert {code: plan["price_fen"] for code, plan in plans.items()} == {
        "free": 0,
        "pro": 19900,
        "enterprise": 99900,
    }
    assert {plan["currency"] for plan in plans.values()} == {"CNY"}
    assert plans["free"]["limits"] == {"monthly_messages": 1000, "bots": 1}
    assert plans["pro"]["limits"] == {"monthly_messages": 50000, "bots": 10}
    assert plans["enterprise"]["limits"] == {"monthly_messages": None, "bots": None}
    assert plans["free"]["name"] == "免费版"
    assert plans["pro"]["name_en"] == "Pro"
    assert not {"image", "voice"} & set(plans["free"]["features"])
    assert {"image", "voice", "branding", "analytics"} <= set(plans["pro"]["features"])
    assert set(plans["pro"]["features"]) < set(plans["enterprise"]["features"])


def test_plans_ignore_a_bad_token(client):
    response = client.get(PLANS, headers={"Authorization": "Bearer garbage"})

    assert response.status_code == 200
    assert len(response.get_json()) == 3
