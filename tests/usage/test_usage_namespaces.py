"""Idempotency keys live in scopes: the usage API's, and one per conversation.

A customer message used to meter under `msg:<conversation>:<key>` in the usage API's
namespace, so a client's `/usage/record` key of that shape answered for the message,
which then failed with a 500 on every retry. Migration 0008 moves the keys that
existing messages metered into their conversation's scope.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.script import ScriptDirectory
from flask import Flask
from flask_migrate import downgrade, upgrade
from sqlalchemy.engine import make_url

from tests.conftest import _recreate_database
from tests.conversations import messages_path, start
from tests.usage.conftest import RECORD, Tenant, key_headers
from webapp import create_app
from webapp.auth.services import register_user
from webapp.bots.services import create_bot
from webapp.conversations.models import Conversation, Message, MessageRole
from webapp.db import utcnow
from webapp.extensions import db
from webapp.orgs.services import create_organization, membership_for
from webapp.usage.models import UsageRecord


def test_a_usage_key_shaped_like_a_message_key_leaves_the_message_alone(
    app: Flask, tenant: Tenant
) -> None:
    key = tenant.add_api_key(tenant.add_bot())
    client = app.test_client()
    conversation = start(client, key_headers(key))
    lookalike = f"msg:{conversation['id']}:m-1"
    recorded = client.post(
        RECORD, json={"kind": "message", "idempotency_key": lookalike}, headers=key_headers(key)
    )
    assert recorded.status_code == 201, recorded.get_json()

    message = {"text": "在吗", "idempotency_key": "m-1"}
    first = client.post(messages_path(conversation["id"]), json=message, headers=key_headers(key))
    again = client.post(messages_path(conversation["id"]), json=message, headers=key_headers(key))

    assert (first.status_code, again.status_code) == (201, 200), first.get_json()
    assert first.get_json()["usage"]["used"] == 2  # its own record, not the lookalike's
    assert again.get_json()["message"]["id"] == first.get_json()["message"]["id"]
    replayed = client.post(
        RECORD, json={"kind": "message", "idempotency_key": lookalike}, headers=key_headers(key)
    )
    assert replayed.status_code == 200 and replayed.get_json()["used"] == 1
    assert tenant.counts() == (2, 2, 2)


def test_a_message_key_is_free_for_the_usage_api(app: Flask, tenant: Tenant) -> None:
    key = tenant.add_api_key(tenant.add_bot())
    client = app.test_client()
    conversation = start(client, key_headers(key))
    message = {"text": "在吗", "idempotency_key": "same"}
    sent = client.post(messages_path(conversation["id"]), json=message, headers=key_headers(key))
    assert sent.status_code == 201, sent.get_json()

    recorded = client.post(
        RECORD, json={"kind": "message", "idempotency_key": "same"}, headers=key_headers(key)
    )

    assert recorded.status_code == 201 and recorded.get_json()["used"] == 2
    assert tenant.counts() == (2, 2, 2)


@pytest.fixture(params=["postgresql", "sqlite"])
def migration_app(request: pytest.FixtureRequest, app: Flask, tmp_path: Path) -> Iterator[Flask]:
    """A database of its own, upgraded to head: the migration runs on both backends."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'migrations.db'}"
    else:
        test_url = make_url(app.config["SQLALCHEMY_DATABASE_URI"])
        url = test_url.set(database=f"{test_url.database}_migrations").render_as_string(
            hide_password=False
        )
        _recreate_database(url)
    migrated = create_app("testing", SQLALCHEMY_DATABASE_URI=url)
    with migrated.app_context():
        upgrade()
        yield migrated
        db.session.remove()
        db.engine.dispose()


def _scoped_keys() -> set[tuple[str, str | None]]:
    rows = db.session.execute(
        sa.select(UsageRecord.idempotency_scope, UsageRecord.idempotency_key)
    ).all()
    db.session.commit()
    return {(scope, key) for scope, key in rows}


def _add_record(organization_id: int, scope: str, key: str) -> None:
    now = utcnow()
    db.session.add(
        UsageRecord(
            organization_id=organization_id,
            kind="message",
            quantity=1,
            idempotency_scope=scope,
            idempotency_key=key,
            period_start=now,
            created_at=now,
        )
    )


def test_the_migration_moves_message_keys_into_their_conversation(migration_app: Any) -> None:
    user = register_user("migrate@example.com", "migrate-password-123", "迁移")
    organization = create_organization(user, "迁移测试")
    bot = create_bot(membership_for(user, organization.id), "客服")
    conversation = Conversation(organization_id=organization.id, bot_id=bot.id)
    db.session.add(conversation)
    db.session.flush()
    db.session.add(
        Message(
            conversation_id=conversation.id,
            organization_id=organization.id,
            bot_id=bot.id,
            role=MessageRole.CUSTOMER.value,
            text="在吗",
            idempotency_key="m-1",
        )
    )
    scope = f"conversation:{conversation.id}"
    _add_record(organization.id, scope, "m-1")  # the message's
    _add_record(organization.id, "api", f"msg:{conversation.id}:m-2")  # a client's, no message
    _add_record(organization.id, "api", "plain")
    db.session.commit()
    scripts = ScriptDirectory.from_config(migration_app.extensions["migrate"].migrate.get_config())
    revision = scripts.get_revision("0008")
    assert revision is not None

    downgrade(revision=str(revision.down_revision))
    old = db.session.execute(sa.text("SELECT idempotency_key FROM usage_records")).scalars()
    assert set(old) == {f"msg:{conversation.id}:m-1", f"msg:{conversation.id}:m-2", "plain"}
    db.session.commit()

    upgrade()
    assert _scoped_keys() == {
        (scope, "m-1"),
        ("api", f"msg:{conversation.id}:m-2"),
        ("api", "plain"),
    }
