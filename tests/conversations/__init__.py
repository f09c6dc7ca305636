"""Tests of conversations: the API, agents, the widget and the inbox."""

from __future__ import annotations

from typing import Any

CONVERSATIONS = "/api/v1/conversations"


def messages_path(conversation_id: int) -> str:
    return f"{CONVERSATIONS}/{conversation_id}/messages"


def start(client: Any, headers: dict[str, str] | None = None, **fields: Any) -> dict[str, Any]:
    """Start a conversation with an `ApiClient` (a member) or a Flask client and key headers."""
    response = client.post(CONVERSATIONS, json=fields, headers=headers or {})
    assert response.status_code == 201, response.get_json()
    return dict(response.get_json())


WIDGET = "/api/v1/widget"
SHOP = "https://shop.example"


def widget_headers(key: str, token: str | None = None, origin: str = SHOP) -> dict[str, str]:
    headers = {"X-Widget-Key": key, "Origin": origin}
    if token is not None:
        headers["X-Visitor-Token"] = token
    return headers


def embed(tenant: Any, bot_id: int, origins: list[str] | None = None) -> str:
    """Allow the bot's widget on `origins` (the owner, through the API); its publishable key."""
    response = tenant.api.patch(
        f"/api/v1/bots/{bot_id}", json={"allowed_origins": origins or [SHOP]}
    )
    assert response.status_code == 200, response.get_json()
    return str(response.get_json()["publishable_key"])


def pro_conversation(app: Any, tenant: Any) -> tuple[Any, dict[str, str], str]:
    """A conversation of a new bot of `tenant`, moved to pro (images allowed), started with
    an API key: (a client, the key's headers, the conversation's messages path)."""
    tenant.set_plan("pro")
    key = tenant.add_api_key(tenant.add_bot())
    headers = {"Authorization": f"Bearer {key}"}
    client = app.test_client()
    return client, headers, messages_path(start(client, headers)["id"])
