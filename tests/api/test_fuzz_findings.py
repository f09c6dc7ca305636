"""Inputs a fuzzer turned into 500s answer 4xx in the error envelope (issue 12, item 7).

Deeply nested JSON on every JSON endpoint, control characters in any text (the
rule of webapp/core/validation.py), attachment file names that do not fit, signed
JWTs with claims of the wrong shape, and FAQ entries that XLSX cannot hold.
"""

from __future__ import annotations

import io
import time
from typing import Any

import jwt as pyjwt
import openpyxl
import pytest
import sqlalchemy as sa
from flask import Flask

from tests.api import assert_error
from tests.conftest import ApiClient
from tests.conversations import WIDGET, embed, pro_conversation, widget_headers
from tests.kb import faq_path
from tests.portal.conftest import Portal
from tests.usage.conftest import Tenant
from webapp.core.validation import MAX_JSON_DEPTH, json_too_deep
from webapp.extensions import db
from webapp.kb.models import FaqEntry

DEEP = 50_000


def deep_bodies() -> list[str]:
    return ["[" * DEEP + "]" * DEEP, '{"a":' * DEEP + "1" + "}" * DEEP]


def json_operations(app: Flask) -> list[tuple[str, str]]:
    """(method, path) of every operation whose documented body is JSON, ids set to 1."""
    spec = app.test_client().get("/openapi.json").get_json()
    operations = []
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if method == "parameters":
                continue
            content = operation.get("requestBody", {}).get("content", {})
            if "application/json" in content:
                concrete = "/".join("1" if p.startswith("{") else p for p in path.split("/"))
                operations.append((method.upper(), concrete))
    return operations


def test_every_json_endpoint_refuses_deep_nesting(app: Flask, api_client: ApiClient) -> None:
    operations = json_operations(app)
    paths = {path for _method, path in operations}
    assert {"/api/v1/auth/login", "/api/v1/auth/register", f"{WIDGET}/conversations"} <= paths
    anonymous = app.test_client()
    for method, path in operations:
        for body in deep_bodies():
            sent = {"data": body, "content_type": "application/json"}
            if path.endswith("notify"):  # the provider's own format, verified before parsing
                assert anonymous.open(path, method=method, **sent).status_code < 500
                continue
            assert_error(anonymous.open(path, method=method, **sent), 400, "json_too_deep")
            assert_error(api_client.open(method, path, **sent), 400, "json_too_deep")


def test_nesting_up_to_the_limit_is_parsed_as_usual(app: Flask) -> None:
    client = app.test_client()
    inside = "[" * (MAX_JSON_DEPTH - 1) + "]" * (MAX_JSON_DEPTH - 1)
    body = '{"email": "a@example.com", "password": "x", "extra": ' + inside + "}"
    response = client.post("/api/v1/auth/login", data=body, content_type="application/json")
    assert_error(response, 422, "validation_error")  # an unknown field, not the depth
    assert not json_too_deep(b'{"a": "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["}')
    assert json_too_deep(b"[" * (MAX_JSON_DEPTH + 1) + b"]" * (MAX_JSON_DEPTH + 1))
    assert not json_too_deep(b"[" * MAX_JSON_DEPTH + b"]" * MAX_JSON_DEPTH)


# --- control characters ------------------------------------------------------


@pytest.mark.parametrize("character", ["\x00", "\x01", "\x1b", "\x7f", "\x85", "\u202e", "\ufeff"])
def test_api_text_refuses_control_characters(
    api_client: ApiClient, org: dict[str, Any], character: str
) -> None:
    headers = {"X-Organization-ID": str(org["id"])}
    bot = api_client.post("/api/v1/bots", json={"name": "客服"}, headers=headers).get_json()
    response = api_client.post(
        faq_path(bot["id"]),
        json={"question": f"发货{character}时间", "answer": "48小时内"},
        headers=headers,
    )
    body = assert_error(response, 422, "validation_error")
    assert "question" in body["errors"]["json"], body
    renamed = api_client.patch(
        f"/api/v1/bots/{bot['id']}", json={"name": f"客服{character}"}, headers=headers
    )
    assert_error(renamed, 422, "validation_error")
    assert_error(
        api_client.client.post(
            "/api/v1/auth/register",
            json={"email": "new@example.com", "password": f"secret{character}pw"},
        ),
        422,
        "validation_error",
    )


def test_tabs_line_breaks_and_emoji_joiners_are_text(
    api_client: ApiClient, org: dict[str, Any]
) -> None:
    headers = {"X-Organization-ID": str(org["id"])}
    bot = api_client.post("/api/v1/bots", json={"name": "客服"}, headers=headers).get_json()
    answer = "第一行\r\n第二行\t制表\n家庭：👨\u200d👩\u200d👧"
    response = api_client.post(
        faq_path(bot["id"]), json={"question": "家庭套餐", "answer": answer}, headers=headers
    )
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["answer"] == answer


def test_portal_forms_refuse_control_characters(portal: Portal, user: Any) -> None:
    portal.login(user.email)
    response = portal.submit("/organizations/new", {"name": "公司\x1b[31m"})
    assert response.status_code == 400
    assert portal.submit("/organizations/new", {"name": "公司\x00"}).status_code == 400


def test_faq_import_reports_control_characters_per_row(
    api_client: ApiClient, org: dict[str, Any]
) -> None:
    headers = {"X-Organization-ID": str(org["id"])}
    bot = api_client.post("/api/v1/bots", json={"name": "客服"}, headers=headers).get_json()
    csv = "question,answer\n正常问题,正常答案\n坏\x07问题,答案\n".encode()
    response = api_client.post(
        f"{faq_path(bot['id'])}/import",
        data={"file": (io.BytesIO(csv), "faq.csv"), "dry_run": "true"},
        headers=headers,
    )
    assert response.status_code == 200, response.get_json()
    errors = response.get_json()["errors"]
    assert [(e["row"], e["field"]) for e in errors] == [(3, "question")]


def test_xlsx_export_of_entries_stored_with_control_characters(
    app: Flask, api_client: ApiClient, org: dict[str, Any]
) -> None:
    """Entries stored before the rule existed still export (the characters XLSX cannot
    hold are left out)."""
    headers = {"X-Organization-ID": str(org["id"])}
    bot = api_client.post("/api/v1/bots", json={"name": "客服"}, headers=headers).get_json()
    created = api_client.post(
        faq_path(bot["id"]), json={"question": "旧问题", "answer": "旧答案"}, headers=headers
    )
    with app.app_context():
        db.session.execute(
            sa.update(FaqEntry)
            .where(FaqEntry.id == created.get_json()["id"])
            .values(answer="旧\x01答\x1f案\x0b")
        )
        db.session.commit()
    response = api_client.get(f"{faq_path(bot['id'])}/export?format=xlsx", headers=headers)
    assert response.status_code == 200
    sheet = openpyxl.load_workbook(io.BytesIO(response.data)).active
    assert sheet is not None
    assert [cell.value for cell in sheet[2]][:2] == ["旧问题", "旧答案"]


# --- attachments -------------------------------------------------------------


def test_attachment_names_that_do_not_fit_are_refused(app: Flask, tenant: Tenant) -> None:
    client, headers, path = pro_conversation(app, tenant)
    for name in ("图" * 256 + ".png", "photo\x00.png", "a\x1b.png"):
        upload = {"kind": "image", "file": (io.BytesIO(b"\x89PNG fake"), name, "image/png")}
        response = client.post(path, data=upload, headers=headers)
        assert_error(response, 422, "validation_error")
    upload = {"kind": "image", "file": (io.BytesIO(b"\x89PNG"), "图" * 251 + ".png", "image/png")}
    assert client.post(path, data=upload, headers=headers).status_code == 201


def test_widget_start_refuses_deep_json_and_control_characters(app: Flask, tenant: Tenant) -> None:
    key = embed(tenant, tenant.add_bot())
    client = app.test_client()
    for body in deep_bodies():
        response = client.post(
            f"{WIDGET}/conversations",
            data=body,
            content_type="application/json",
            headers=widget_headers(key),
        )
        assert_error(response, 400, "json_too_deep")
    response = client.post(
        f"{WIDGET}/conversations",
        json={"external_user_id": "visitor\x00"},
        headers=widget_headers(key),
    )
    assert_error(response, 422, "validation_error")


# --- JWTs --------------------------------------------------------------------

MALFORMED_CLAIMS: list[dict[str, Any]] = [
    {"sub": 1},
    {"sub": "abc"},
    {"sub": "１"},
    {"sub": "99999999999"},
    {"sub": ["1"]},
    {"sid": 5},
    {"sid": [1]},
    {"sid": {"a": 1}},
    {"sid": "a\x00b"},
    {"sid": "x" * 100},
    {"jti": [1]},
]


@pytest.mark.parametrize("change", MALFORMED_CLAIMS, ids=lambda c: repr(c)[:30])
def test_signed_tokens_with_malformed_claims_are_invalid(
    app: Flask, api_client: ApiClient, change: dict[str, Any]
) -> None:
    real = pyjwt.decode(api_client.token or "", options={"verify_signature": False})
    now = int(time.time())
    client = app.test_client()
    for path, token_type in (
        ("/api/v1/auth/me", "access"),
        ("/api/v1/auth/refresh", "refresh"),
        ("/api/v1/auth/logout", "access"),
        ("/api/v1/organizations", "access"),
    ):
        claims = {**real, "type": token_type, "iat": now, "nbf": now, "exp": now + 600, **change}
        claims = {name: value for name, value in claims.items() if value is not None}
        token = pyjwt.encode(claims, app.config["SECRET_KEY"], algorithm="HS256")
        method = client.get if path.endswith(("me", "organizations")) else client.post
        response = method(path, headers={"Authorization": f"Bearer {token}"})
        assert_error(response, 401, "token_invalid")
