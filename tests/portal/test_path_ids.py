"""Ids in paths are ASCII digits only, on every route, portal and API (issue 12, item 12).

Werkzeug's `int` converter matched any Unicode digit and `int()` read it, so
`/bots/１` was bot 1 under another URL.
"""

from __future__ import annotations

from typing import Any

from flask import Flask
from werkzeug.routing import IntegerConverter

from tests.conftest import ApiClient
from tests.portal.conftest import Portal

OTHER_DIGITS = (
    str.maketrans("0123456789", "０１２３４５６７８９"),  # full-width
    str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩"),  # Arabic-Indic
    str.maketrans("0123456789", "०१२३४५६७८९"),  # Devanagari
)


def test_api_answers_404_for_unicode_digits(api_client: ApiClient, org: dict[str, Any]) -> None:
    headers = {"X-Organization-ID": str(org["id"])}
    created = api_client.post("/api/v1/bots", json={"name": "客服"}, headers=headers)
    assert created.status_code == 201, created.get_json()
    bot_id = str(created.get_json()["id"])
    assert api_client.get(f"/api/v1/bots/{bot_id}", headers=headers).status_code == 200
    assert api_client.get(f"/api/v1/organizations/{org['id']}").status_code == 200
    for table in OTHER_DIGITS:
        response = api_client.get(f"/api/v1/bots/{bot_id.translate(table)}", headers=headers)
        assert response.status_code == 404, response.get_json()
        assert response.get_json()["error"] == "not_found"
        other = str(org["id"]).translate(table)
        assert api_client.get(f"/api/v1/organizations/{other}").status_code == 404


def test_portal_answers_404_for_unicode_digits(portal: Portal, user: Any) -> None:
    portal.login(user.email)
    org_id = str(portal.create_org("数字公司"))
    assert portal.get(f"/organizations/{org_id}/members").status_code == 200
    for table in OTHER_DIGITS:
        assert portal.get(f"/organizations/{org_id.translate(table)}/members").status_code == 404


def test_every_int_rule_takes_ascii_digits_only(app: Flask) -> None:
    checked = 0
    for rule in app.url_map.iter_rules():
        for converter in rule._converters.values():
            if isinstance(converter, IntegerConverter):
                assert converter.regex == "[0-9]+", rule.rule
                checked += 1
    assert checked > 50  # the portal's and the API's ids


def test_openapi_still_documents_ids_as_integers(client: Any) -> None:
    spec = client.get("/openapi.json").get_json()
    parameters = spec["paths"]["/api/v1/bots/{bot_id}"]["parameters"]
    bot_id = next(p for p in parameters if p["name"] == "bot_id")
    assert bot_id["in"] == "path"
    assert bot_id["schema"] == {"type": "integer", "minimum": 0}
