"""Tests of the JSON API (/api/v1), plus helpers shared by its modules."""

from __future__ import annotations

from typing import Any

from flask import Flask
from werkzeug.http import HTTP_STATUS_CODES

from webapp.extensions import db
from webapp.orgs.models import OrganizationMember, Role

ENVELOPE_KEYS = {"code", "status", "error", "message"}


def assert_error(response: Any, status: int, error: str) -> dict[str, Any]:
    """Assert the API's error envelope with this status and stable id; return the body."""
    assert response.status_code == status, (response.status_code, response.get_data(as_text=True))
    assert response.is_json, response.content_type
    body = response.get_json()
    assert body.keys() >= ENVELOPE_KEYS, body
    assert body["code"] == status
    assert body["status"] == HTTP_STATUS_CODES[status]
    assert body["error"] == error, body
    assert isinstance(body["message"], str) and body["message"]
    return dict(body)


def add_member(app: Flask, organization_id: int, user: Any, role: str = "member") -> None:
    """Put `user` into the organization directly (accepting invitations is the portal's job)."""
    with app.app_context():
        db.session.add(
            OrganizationMember(organization_id=organization_id, user_id=user.id, role=Role(role))
        )
        db.session.commit()


def role_of(app: Flask, organization_id: int, user_id: int) -> str | None:
    """The user's role in the organization as stored, or None when not a member."""
    with app.app_context():
        role = db.session.scalar(
            db.select(OrganizationMember.role).where(
                OrganizationMember.organization_id == organization_id,
                OrganizationMember.user_id == user_id,
            )
        )
        return role.value if role is not None else None
