"""Property-based fuzzing of /api/v1 from its own OpenAPI document (schemathesis).

Every documented operation gets up to 50 generated requests (valid and
invalid), sent over WSGI with the Bearer token of a real user who owns an
organization. Each response must not be a 5xx and must match what the spec
documents for its status code.

Generated ids are pointed at real rows most of the time (the organization, its
two members, a pending invitation, a bot, an API key, an FAQ entry, a
conversation, a message and a question to learn; the X-Organization-ID header too) so org-scoped
operations reach the code behind the 404; the remaining cases keep the
generated id. Before each case the organization is put
back as it was (owner, member, pending invitation, bot, live key), so one
operation (say, a member promoted then the owner leaving) cannot starve the
following ones. /auth/refresh and /auth/logout end the session they are called
with, so each of their cases gets a session of its own; every other operation
uses the shared one.

All of it runs inside the test's rolled-back transaction (root `isolated_db`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import schemathesis
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, settings
from schemathesis import Case
from schemathesis.checks import not_a_server_error, response_schema_conformance

from tests.factories import DEFAULT_PASSWORD
from webapp import create_app
from webapp.api import ORGANIZATION_HEADER
from webapp.bots.models import ApiKey, Bot
from webapp.conversations.models import Conversation, ConversationStatus, Message, MessageRole
from webapp.core.security import new_token, token_digest
from webapp.db import utcnow
from webapp.extensions import db, limiter
from webapp.kb.models import FaqEntry
from webapp.learning.models import LearningItem
from webapp.orgs.models import Invitation, OrganizationMember, Role

CHECKS = [not_a_server_error, response_schema_conformance]
OWN_SESSION_PATHS = {"/api/v1/auth/refresh", "/api/v1/auth/logout"}


@dataclass
class FuzzAccount:
    """A user who owns an organization with one more member and a pending invitation."""

    app: Flask
    client: FlaskClient
    email: str
    access_token: str
    organization_id: int
    owner_id: int
    member_id: int
    invitation_id: int = 0
    bot_id: int = 0
    api_key_id: int = 0
    entry_id: int = 0
    conversation_id: int = 0
    message_id: int = 0
    item_id: int = 0

    def login(self) -> dict[str, Any]:
        response = self.client.post(
            "/api/v1/auth/login", json={"email": self.email, "password": DEFAULT_PASSWORD}
        )
        assert response.status_code == 200, response.get_json()
        return response.get_json()

    def restore(self) -> None:
        """Put the organization back as the fixture made it, whatever the last case did."""
        with self.app.app_context():
            for user_id, role in ((self.owner_id, Role.OWNER), (self.member_id, Role.MEMBER)):
                membership = db.session.scalar(
                    sa.select(OrganizationMember).where(
                        OrganizationMember.organization_id == self.organization_id,
                        OrganizationMember.user_id == user_id,
                    )
                )
                if membership is None:
                    db.session.add(
                        OrganizationMember(
                            organization_id=self.organization_id, user_id=user_id, role=role
                        )
                    )
                else:
                    membership.role = role
            invitation = db.session.get(Invitation, self.invitation_id)
            if invitation is None or not invitation.is_pending(utcnow()):
                now = utcnow()
                invitation = Invitation(
                    organization_id=self.organization_id,
                    email=f"invited-{new_token()[:10].lower()}@example.com",
                    role=Role.MEMBER,
                    token_hash=token_digest(new_token()),
                    invited_by_id=self.owner_id,
                    created_at=now,
                    expires_at=now + self.app.config["INVITATION_TTL"],
                )
                db.session.add(invitation)
                db.session.flush()
                self.invitation_id = invitation.id
            if db.session.get(Bot, self.bot_id) is None:
                bot = Bot(organization_id=self.organization_id, name="模糊测试机器人")
                db.session.add(bot)
                db.session.flush()
                self.bot_id = bot.id
            api_key = db.session.get(ApiKey, self.api_key_id)
            if api_key is None:
                api_key = ApiKey(
                    organization_id=self.organization_id,
                    name="模糊测试密钥",
                    prefix=new_token()[:12],
                    secret_hash=token_digest(new_token()),
                )
                db.session.add(api_key)
                db.session.flush()
                self.api_key_id = api_key.id
            api_key.revoked_at = None
            if db.session.get(FaqEntry, self.entry_id) is None:
                entry = FaqEntry(
                    organization_id=self.organization_id,
                    bot_id=self.bot_id,
                    question="多久发货？",
                    answer="48小时内发货。",
                )
                db.session.add(entry)
                db.session.flush()
                self.entry_id = entry.id
            conversation = db.session.get(Conversation, self.conversation_id)
            if conversation is None:
                conversation = Conversation(
                    organization_id=self.organization_id, bot_id=self.bot_id
                )
                db.session.add(conversation)
                db.session.flush()
                self.conversation_id = conversation.id
            conversation.status = ConversationStatus.OPEN.value
            if db.session.get(Message, self.message_id) is None:
                message = Message(
                    conversation_id=conversation.id,
                    organization_id=self.organization_id,
                    bot_id=self.bot_id,
                    role=MessageRole.CUSTOMER.value,
                    text="你好",
                )
                db.session.add(message)
                db.session.flush()
                self.message_id = message.id
            item = db.session.get(LearningItem, self.item_id)
            if item is None:
                item = LearningItem(
                    organization_id=self.organization_id,
                    bot_id=self.bot_id,
                    question_key="周末营业吗",
                    text="周末营业吗？",
                )
                db.session.add(item)
                db.session.flush()
                self.item_id = item.id
            item.status = "open"
            db.session.commit()

    def real_ids(self) -> dict[str, list[int]]:
        return {
            "organization_id": [self.organization_id],
            "user_id": [self.member_id, self.owner_id],
            "invitation_id": [self.invitation_id],
            "bot_id": [self.bot_id],
            "api_key_id": [self.api_key_id],
            "entry_id": [self.entry_id],
            "conversation_id": [self.conversation_id],
            "message_id": [self.message_id],
            "item_id": [self.item_id],
        }


@pytest.fixture
def no_rate_limits() -> Iterator[None]:
    """Flask-Limiter reads RATELIMIT_ENABLED only at init; switch the extension itself."""
    previous = limiter.enabled
    limiter.enabled = False
    try:
        yield
    finally:
        limiter.enabled = previous


@pytest.fixture
def fuzz_account(app: Flask, make_user: Any, no_rate_limits: None) -> FuzzAccount:
    owner, member = make_user(), make_user()
    client = app.test_client()
    account = FuzzAccount(
        app=app,
        client=client,
        email=owner.email,
        access_token="",
        organization_id=0,
        owner_id=owner.id,
        member_id=member.id,
    )
    account.access_token = account.login()["access_token"]
    auth = {"Authorization": f"Bearer {account.access_token}"}
    created = client.post("/api/v1/organizations", json={"name": "模糊测试公司"}, headers=auth)
    assert created.status_code == 201, created.get_json()
    account.organization_id = created.get_json()["id"]
    invited = client.post(
        f"/api/v1/organizations/{account.organization_id}/members",
        json={"email": "pending-invitee@example.com", "role": "admin"},
        headers=auth,
    )
    assert invited.status_code == 201, invited.get_json()
    account.invitation_id = invited.get_json()["id"]
    account.restore()  # adds the member
    return account


# The spec is read at collection time from an app of the same configuration (no database
# needed); the requests go to the session `app`, whose database the fixtures prepared.
schema = schemathesis.openapi.from_wsgi("/openapi.json", create_app("testing"))


def point_ids_at_real_rows(case: Case, real_ids: dict[str, list[int]]) -> None:
    """Map a generated id onto a real row, or (one time in n+1) keep it as generated.

    Ids come as ints (fuzzing) or digit strings (coverage phase); anything else, such as
    a deliberately malformed id, is left alone.
    """
    places = [(case.path_parameters, name, name) for name in real_ids]
    places.append((case.headers, ORGANIZATION_HEADER, "organization_id"))
    for parameters, key, name in places:
        choices = real_ids[name]
        value = parameters.get(key) if parameters else None
        if isinstance(value, str) and value.isascii() and value.isdigit():
            value = int(value)
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            index = value % (len(choices) + 1)
            if index < len(choices) and parameters is not None:
                parameters[key] = (
                    str(choices[index]) if key == ORGANIZATION_HEADER else choices[index]
                )


@settings(
    max_examples=50,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
@schema.parametrize()
def test_api_answers_within_its_documented_contract(
    case: Case, app: Flask, fuzz_account: FuzzAccount
) -> None:
    fuzz_account.restore()
    point_ids_at_real_rows(case, fuzz_account.real_ids())
    if case.path in OWN_SESSION_PATHS:
        tokens = fuzz_account.login()
        token = tokens["refresh_token" if case.path.endswith("/refresh") else "access_token"]
    else:
        token = fuzz_account.access_token
    case.call_and_validate(app=app, headers={"Authorization": f"Bearer {token}"}, checks=CHECKS)
