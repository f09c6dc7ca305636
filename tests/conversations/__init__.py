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
