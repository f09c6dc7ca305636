"""/api/v1/conversations: metering, answers, handoff, agents, idempotency and isolation."""

from __future__ import annotations

import io
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from tests.api import assert_error
from tests.conversations import CONVERSATIONS, messages_path, start
from tests.kb import add_tea_faq, offer_only_when_fairly_sure
from tests.usage.conftest import Tenant, key_headers
from webapp.billing.periods import SHANGHAI, month_start
from webapp.conversations import services as conversation_services
from webapp.conversations.models import Attachment, Conversation, Message
from webapp.db import utcnow
from webapp.extensions import db
from webapp.usage.models import UsageCounter


def stored_messages(app: Flask, conversation_id: int) -> list[tuple[str, str]]:
    with app.app_context():
        rows = db.session.execute(
            sa.select(Message.role, Message.text)
            .where(Message.conversation_id == conversation_id)
            .order_by(Message.id)
        )
        return [(role, text) for role, text in rows]


def conversation_status(app: Flask, conversation_id: int) -> str:
    with app.app_context():
        conversation = db.session.get(Conversation, conversation_id)
        assert conversation is not None
        return conversation.status


def bot_with_faq(tenant: Tenant) -> tuple[int, str, list[dict[str, Any]]]:
    bot_id = tenant.add_bot()
    entries = add_tea_faq(tenant.api, bot_id)
    return bot_id, tenant.add_api_key(bot_id), entries


def month_used(app: Flask, organization_id: int, used: int) -> None:
    """The organization has used `used` messages this month."""
    with app.app_context():
        db.session.add(
            UsageCounter(
                organization_id=organization_id, period_start=month_start(utcnow()), used=used
            )
        )
        db.session.commit()


def say(client: Any, conversation_id: int, text: str, key: str, **extra: Any) -> Any:
    return client.post(
        messages_path(conversation_id), json={"text": text, **extra}, headers=key_headers(key)
    )


def test_a_message_is_metered_stored_and_answered(app: Flask, tenant: Tenant) -> None:
    bot_id, key, entries = bot_with_faq(tenant)
    client = app.test_client()
    conversation = start(client, key_headers(key), external_user_id="openid-1", channel="wechat")
    assert conversation["bot_id"] == bot_id
    assert conversation["status"] == "open"

    response = say(client, conversation["id"], "我想退货，流程是怎样的", key)

    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert body["handoff"] is False
    assert body["reply"]["text"] == entries[1]["answer"]
    assert body["reply"]["role"] == "bot"
    assert body["source_entry"] == {"id": entries[1]["id"], "question": entries[1]["question"]}
    assert 0.5 <= body["confidence"] <= 1
    assert body["message"]["outcome"] == "answered"
    assert body["usage"]["used"] == 1 and body["usage"]["limit"] == 1000
    assert response.headers["X-Quota-Remaining"] == "999"
    assert stored_messages(app, conversation["id"]) == [
        ("customer", "我想退货，流程是怎样的"),
        ("bot", entries[1]["answer"]),
    ]
    assert tenant.counts() == (1, 1, 1)


def test_an_unanswerable_question_hands_off_to_a_person(app: Flask, tenant: Tenant) -> None:
    bot_id, key, _entries = bot_with_faq(tenant)
    offer_only_when_fairly_sure(app, bot_id)
    client = app.test_client()
    conversation = start(client, key_headers(key))

    body = say(client, conversation["id"], "你们老板叫什么名字", key).get_json()

    assert body["handoff"] is True
    assert body["source_entry"] is None
    assert body["message"]["outcome"] == "fallback"
    assert "人工" in body["reply"]["text"] or "colleague" in body["reply"]["text"]
    assert conversation_status(app, conversation["id"]) == "needs_human"
    listed = tenant.api.get(CONVERSATIONS, query_string={"status": "needs_human"}).get_json()
    assert [c["id"] for c in listed] == [conversation["id"]]


def test_over_quota_nothing_is_stored_or_answered(app: Flask, tenant: Tenant) -> None:
    _bot_id, key, _entries = bot_with_faq(tenant)
    client = app.test_client()
    conversation = start(client, key_headers(key))
    month_used(app, tenant.id, 1000)

    response = say(client, conversation["id"], "什么时候发货", key)

    assert_error(response, 429, "quota_exceeded")
    assert response.headers["X-Quota-Remaining"] == "0"
    assert stored_messages(app, conversation["id"]) == []


def test_a_plan_change_while_answering_is_the_quota_metered(
    app: Flask, tenant: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The quota is the plan's when the message is metered, not when answering began: a
    downgrade (a refund ending the paid period) committed meanwhile is not exceeded."""
    _bot_id, key, _entries = bot_with_faq(tenant)
    tenant.set_plan("pro")
    client = app.test_client()
    conversation = start(client, key_headers(key))
    month_used(app, tenant.id, 1000)
    answer = conversation_services.answer_question

    def downgraded_while_answering(*args: Any, **kwargs: Any) -> Any:
        tenant.set_plan("free")  # its own session: committed while the message is answered
        return answer(*args, **kwargs)

    monkeypatch.setattr(conversation_services, "answer_question", downgraded_while_answering)

    response = say(client, conversation["id"], "什么时候发货", key)

    assert_error(response, 429, "quota_exceeded")
    assert response.headers["X-Quota-Limit"] == "1000"
    assert stored_messages(app, conversation["id"]) == []


def test_images_need_a_plan_with_them(app: Flask, tenant: Tenant) -> None:
    _bot_id, key, _entries = bot_with_faq(tenant)
    client = app.test_client()
    conversation = start(client, key_headers(key))
    upload = {"kind": "image", "file": (io.BytesIO(b"\x89PNG fake"), "photo.png", "image/png")}

    refused = client.post(
        messages_path(conversation["id"]), data=dict(upload), headers=key_headers(key)
    )
    assert_error(refused, 403, "feature_not_in_plan")
    assert stored_messages(app, conversation["id"]) == []

    tenant.set_plan("pro")
    upload = {"kind": "image", "file": (io.BytesIO(b"\x89PNG fake"), "photo.png", "image/png")}
    accepted = client.post(messages_path(conversation["id"]), data=upload, headers=key_headers(key))
    assert accepted.status_code == 201, accepted.get_json()
    body = accepted.get_json()
    assert body["handoff"] is True
    assert body["message"]["kind"] == "image"
    assert body["message"]["attachment"] == {
        "content_type": "image/png",
        "filename": "photo.png",
        "size": 9,
    }
    download = tenant.api.get(
        f"{messages_path(conversation['id'])}/{body['message']['id']}/attachment"
    )
    assert download.status_code == 200
    assert download.data == b"\x89PNG fake"
    assert download.mimetype == "image/png"
    assert {"private", "no-store"} <= set(download.headers["Cache-Control"].split(", "))


def test_uploads_are_validated(app: Flask, tenant: Tenant) -> None:
    tenant.set_plan("pro")
    _bot_id, key, _entries = bot_with_faq(tenant)
    client = app.test_client()
    conversation = start(client, key_headers(key))
    path = messages_path(conversation["id"])

    wrong_type = {"kind": "voice", "file": (io.BytesIO(b"abc"), "a.png", "image/png")}
    assert_error(
        client.post(path, data=wrong_type, headers=key_headers(key)), 422, "validation_error"
    )
    no_file = {"kind": "image", "other": (io.BytesIO(b"abc"), "a.png", "image/png")}
    assert_error(client.post(path, data=no_file, headers=key_headers(key)), 422, "validation_error")
    assert_error(
        client.post(path, data="hi", content_type="text/plain", headers=key_headers(key)),
        415,
        "unsupported_media_type",
    )
    assert_error(say(client, conversation["id"], "", key), 422, "validation_error")


def test_a_form_part_without_a_name_is_a_field_error_not_a_crash(
    app: Flask, tenant: Tenant
) -> None:
    bot_id = tenant.add_bot()
    key = tenant.add_api_key(bot_id)
    client = app.test_client()
    conversation = start(client, key_headers(key))
    boundary = "b0undary"
    body = (
        f"--{boundary}\r\nContent-Disposition: form-data\r\n\r\nnull\r\n"
        f'--{boundary}\r\nContent-Disposition: form-data; name="kind"\r\n\r\nimage\r\n'
        f"--{boundary}--\r\n"
    )

    response = client.post(
        messages_path(conversation["id"]),
        data=body.encode(),
        content_type=f"multipart/form-data; boundary={boundary}",
        headers=key_headers(key),
    )

    assert_error(response, 422, "validation_error")
    assert response.get_json()["errors"][""] == ["Unknown field."]
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Attachment)) == 0


def test_a_retried_message_counts_and_answers_once(app: Flask, tenant: Tenant) -> None:
    _bot_id, key, _entries = bot_with_faq(tenant)
    client = app.test_client()
    conversation = start(client, key_headers(key))

    first = say(client, conversation["id"], "怎么开发票", key, idempotency_key="m-1")
    again = client.post(
        messages_path(conversation["id"]),
        json={"text": "怎么开发票"},
        headers={**key_headers(key), "Idempotency-Key": "m-1"},
    )

    assert first.status_code == 201 and again.status_code == 200
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.get_json()["message"]["id"] == first.get_json()["message"]["id"]
    assert again.get_json()["reply"] == first.get_json()["reply"]
    assert len(stored_messages(app, conversation["id"])) == 2
    assert tenant.counts() == (1, 1, 1)


def test_an_agent_takes_over_and_returns_the_conversation(app: Flask, tenant: Tenant) -> None:
    _bot_id, key, entries = bot_with_faq(tenant)
    client = app.test_client()
    conversation = start(client, key_headers(key))
    path = f"{CONVERSATIONS}/{conversation['id']}"
    say(client, conversation["id"], "你们老板叫什么名字", key)

    reply = tenant.api.post(f"{path}/replies", json={"text": "您好，我是人工客服小王。"})
    assert reply.status_code == 201, reply.get_json()
    assert reply.get_json()["role"] == "agent"

    quiet = say(client, conversation["id"], "什么时候发货", key).get_json()
    assert quiet["reply"] is None and quiet["message"]["outcome"] == "agent"

    returned = tenant.api.post(f"{path}/return-to-bot")
    assert returned.get_json()["status"] == "open"
    answered = say(client, conversation["id"], "什么时候发货", key).get_json()
    assert answered["reply"]["text"] == entries[0]["answer"]

    closed = tenant.api.post(f"{path}/close")
    assert closed.get_json()["status"] == "closed"
    assert_error(say(client, conversation["id"], "还在吗", key), 409, "conversation_closed")
    assert_error(tenant.api.post(f"{path}/replies", json={"text": "x"}), 409, "conversation_closed")
    transcript = tenant.api.get(messages_path(conversation["id"])).get_json()
    assert [m["role"] for m in transcript] == [
        "customer",
        "bot",
        "agent",
        "customer",
        "customer",
        "bot",
    ]
    newer = tenant.api.get(
        messages_path(conversation["id"]), query_string={"after": transcript[3]["id"]}
    ).get_json()
    assert [m["id"] for m in newer] == [m["id"] for m in transcript[4:]]


def test_tenants_and_bound_keys_see_only_their_conversations(
    app: Flask, tenant: Tenant, make_tenant: Any
) -> None:
    tenant.set_plan("pro")
    bot_id, key, _entries = bot_with_faq(tenant)
    other_bot = tenant.add_bot("售后客服")
    other_bot_key = tenant.add_api_key(other_bot)
    client = app.test_client()
    conversation = start(client, key_headers(key))
    stranger = make_tenant(name="别家公司")
    stranger_key = stranger.add_api_key()

    assert_error(
        say(client, conversation["id"], "什么时候发货", stranger_key), 404, "conversation_not_found"
    )
    assert_error(
        say(client, conversation["id"], "什么时候发货", other_bot_key),
        404,
        "conversation_not_found",
    )
    assert_error(stranger.api.get(messages_path(conversation["id"])), 404, "conversation_not_found")
    assert_error(
        stranger.api.post(f"{CONVERSATIONS}/{conversation['id']}/replies", json={"text": "x"}),
        404,
        "conversation_not_found",
    )
    assert stranger.api.get(CONVERSATIONS).get_json() == []
    assert_error(
        client.post(CONVERSATIONS, json={"bot_id": bot_id}, headers=key_headers(stranger_key)),
        404,
        "bot_not_found",
    )
    assert_error(
        client.post(CONVERSATIONS, json={"bot_id": bot_id}, headers=key_headers(other_bot_key)),
        403,
        "bot_mismatch",
    )
    assert_error(client.get(CONVERSATIONS, headers=key_headers(key)), 401, "api_key_not_allowed")
    assert stored_messages(app, conversation["id"]) == []


def test_a_bot_must_be_named_and_enabled(app: Flask, tenant: Tenant) -> None:
    key = tenant.add_api_key()
    disabled = tenant.add_bot(enabled=False)
    client = app.test_client()

    assert_error(
        client.post(CONVERSATIONS, json={}, headers=key_headers(key)), 422, "validation_error"
    )
    assert_error(
        client.post(CONVERSATIONS, json={"bot_id": disabled}, headers=key_headers(key)),
        403,
        "bot_disabled",
    )


def test_an_upload_may_exceed_the_apps_body_limit_up_to_its_own(app: Flask, tenant: Tenant) -> None:
    tenant.set_plan("pro")
    _bot_id, key, _entries = bot_with_faq(tenant)
    client = app.test_client()
    conversation = start(client, key_headers(key))
    path = messages_path(conversation["id"])
    photo = b"\xff\xd8" + b"0" * (3 * 1024 * 1024)  # 3 MB: above the 1 MB app limit

    accepted = client.post(
        path,
        data={"kind": "image", "file": (io.BytesIO(photo), "big.jpg", "image/jpeg")},
        headers=key_headers(key),
    )
    assert accepted.status_code == 201, accepted.get_json()
    assert accepted.get_json()["message"]["attachment"]["size"] == len(photo)

    too_big = b"0" * (6 * 1024 * 1024)
    refused = client.post(
        path,
        data={"kind": "image", "file": (io.BytesIO(too_big), "huge.jpg", "image/jpeg")},
        headers=key_headers(key),
    )
    assert_error(refused, 413, "payload_too_large")
    assert len(stored_messages(app, conversation["id"])) == 2


def test_the_list_filters_by_day_and_refuses_days_out_of_range(app: Flask, tenant: Tenant) -> None:
    _bot_id, key, _entries = bot_with_faq(tenant)
    conversation = start(app.test_client(), key_headers(key))
    today = utcnow().astimezone(SHANGHAI).date().isoformat()

    listed = tenant.api.get(CONVERSATIONS, query_string={"from": today, "to": today}).get_json()
    assert [c["id"] for c in listed] == [conversation["id"]]
    later = tenant.api.get(CONVERSATIONS, query_string={"from": "9998-12-31"}).get_json()
    assert later == []
    for day in ("0001-01-01", "9999-12-31"):
        assert_error(
            tenant.api.get(CONVERSATIONS, query_string={"from": day}), 422, "validation_error"
        )
