"""The LLM engine against a chat-completions server on 127.0.0.1 (a thread of this process)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from flask import Flask

from tests.kb import TEA_FAQ, add_tea_faq, offer_only_when_fairly_sure
from tests.kb.test_kb_api import preview
from tests.usage.conftest import Tenant

API_KEY = "sk-test-0123456789"
MODEL = "qwen-test"
REPLY = "您好，现货商品付款后48小时内发货哦。"


@dataclass
class ChatServer:
    """Speaks POST /v1/chat/completions; `mode` says how it answers."""

    url: str = ""
    mode: str = "answer"  # answer | handoff | error | slow | malformed
    requests: list[dict[str, Any]] = field(default_factory=list)


def _handler(server: ChatServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            server.requests.append({"path": self.path, "headers": dict(self.headers), **body})
            if self.path != "/v1/chat/completions":
                return self._send(404, {"error": {"message": "not found"}})
            if self.headers.get("Authorization") != f"Bearer {API_KEY}":
                return self._send(401, {"error": {"message": "invalid api key"}})
            if body.get("model") != MODEL:
                return self._send(400, {"error": {"message": "unknown model"}})
            if server.mode == "error":
                return self._send(500, {"error": {"message": "overloaded"}})
            if server.mode == "slow":
                time.sleep(1.5)
            if server.mode == "malformed":
                return self._send(200, {"choices": []})
            content = "HANDOFF" if server.mode == "handoff" else REPLY
            self._send(
                200,
                {
                    "id": "chatcmpl-1",
                    "object": "chat.completion",
                    "model": MODEL,
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": content},
                            "finish_reason": "stop",
                        }
                    ],
                },
            )

        def _send(self, status: int, payload: dict[str, Any]) -> None:
            data = json.dumps(payload).encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except OSError:
                pass  # the client gave up (the timeout test)

    return Handler


@pytest.fixture
def chat_server(app: Flask) -> Iterator[ChatServer]:
    """A running server, and the app configured to use it (restored afterwards)."""
    state = ChatServer()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    settings = {
        "LLM_BASE_URL": state.url,
        "LLM_API_KEY": API_KEY,
        "LLM_MODEL": MODEL,
        "LLM_TIMEOUT_SECONDS": 0.5,
    }
    saved = {name: app.config.get(name) for name in settings}
    app.config.update(settings)
    try:
        yield state
    finally:
        app.config.update(saved)
        httpd.shutdown()
        httpd.server_close()


def test_the_model_answers_from_the_retrieved_entries(
    tenant: Tenant, chat_server: ChatServer
) -> None:
    bot_id = tenant.add_bot("茗山茶舍")
    shipping = add_tea_faq(tenant.api, bot_id)[0]

    body = preview(tenant, bot_id, "下单以后多久发货")

    assert body["engine"] == "llm"
    assert body["answer"] == REPLY
    assert body["handoff"] is False
    assert body["entry_id"] == shipping["id"]
    [call] = chat_server.requests
    assert call["model"] == MODEL
    system, user = call["messages"]
    assert system["role"] == "system" and user == {"role": "user", "content": "下单以后多久发货"}
    assert "茗山茶舍" in system["content"] and "HANDOFF" in system["content"]
    assert shipping["question"] in system["content"]
    assert shipping["answer"] in system["content"]


def test_the_model_saying_handoff_hands_off(tenant: Tenant, chat_server: ChatServer) -> None:
    chat_server.mode = "handoff"
    bot_id = tenant.add_bot()
    add_tea_faq(tenant.api, bot_id)
    tenant.api.patch(f"/api/v1/bots/{bot_id}", json={"fallback_text": "请稍等，人工客服马上来。"})

    body = preview(tenant, bot_id, "下单以后多久发货")

    assert len(chat_server.requests) == 1
    assert body["engine"] == "llm"
    assert body["handoff"] is True
    assert body["entry_id"] is None
    assert body["answer"] == "请稍等，人工客服马上来。"


@pytest.mark.parametrize("mode", ["error", "slow", "malformed"])
def test_a_failing_model_falls_back_to_the_lexical_answer(
    tenant: Tenant, chat_server: ChatServer, mode: str, caplog: pytest.LogCaptureFixture
) -> None:
    chat_server.mode = mode
    bot_id = tenant.add_bot()
    shipping = add_tea_faq(tenant.api, bot_id)[0]

    started = time.monotonic()
    body = preview(tenant, bot_id, "下单以后多久发货")

    assert time.monotonic() - started < 1.4  # the 0.5 s timeout, not the server's 1.5 s
    assert len(chat_server.requests) == 1
    assert body["engine"] == "hybrid"  # the retrieval engine's answer
    assert body["handoff"] is False
    assert body["entry_id"] == shipping["id"]
    assert body["answer"] == TEA_FAQ[0][1]
    assert "LLM engine failed" in caplog.text


def test_below_the_threshold_the_model_is_not_asked(
    tenant: Tenant, chat_server: ChatServer
) -> None:
    bot_id = tenant.add_bot()
    add_tea_faq(tenant.api, bot_id)
    offer_only_when_fairly_sure(tenant.app, bot_id)

    body = preview(tenant, bot_id, "明天杭州天气怎么样")

    assert chat_server.requests == []
    assert body["handoff"] is True
    assert body["entry_id"] is None
    assert body["confidence"] < body["threshold"]


def test_a_customer_message_is_answered_by_the_model(
    tenant: Tenant, chat_server: ChatServer
) -> None:
    bot_id = tenant.add_bot()
    add_tea_faq(tenant.api, bot_id)
    key = tenant.add_api_key()
    headers = {"X-API-Key": key}
    client = tenant.api.client
    conversation = client.post("/api/v1/conversations", json={"bot_id": bot_id}, headers=headers)
    assert conversation.status_code == 201, conversation.get_json()

    posted = client.post(
        f"/api/v1/conversations/{conversation.get_json()['id']}/messages",
        json={"text": "下单以后多久发货"},
        headers=headers,
    )

    assert posted.status_code == 201, posted.get_json()
    body = posted.get_json()
    assert body["reply"]["text"] == REPLY
    assert body["handoff"] is False
    assert len(chat_server.requests) == 1
