"""Attack a running deployment from outside, as the release probe does, and report.

    python scripts/probe.py http://127.0.0.1:8650

Needs a fresh deployment (it registers three organizations; set
FLASK_SIGNUP_LIMIT_PER_IP="100 per hour" or run it at most three times an hour) with the
worker running. HTTP only: payment notifies are probed with unsigned and malformed
requests; signed forgeries need the sandbox's keys (tests/payments does those).

Checks: no 500, nothing holding a worker over 1 s on small input, another
organization's objects are 404, bad input changes nothing, concurrent batches at the
quota edge of a free plan never go over, picks and widget keys. Exits 1 when something
failed, with one line per failure.
"""

from __future__ import annotations

import io
import re
import sys
import threading
import time
import uuid
import zipfile
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import requests

SLOW_SECONDS = 1.0
PASSWORD = "correct-horse-9"
ORIGIN = "http://shop.example"
FAQ = [
    ("多久发货？", "付款后48小时内发货。", ["什么时候发货"]),
    ("怎么退货？", "七天无理由退货，请在订单页申请。", ["如何退货"]),
    ("运费多少？", "满99包邮。", ["邮费多少"]),
]


class Probe:
    def __init__(self, base: str) -> None:
        self.base = base.rstrip("/")
        self.requests: Counter[str] = Counter()
        self.failures: list[str] = []
        self._lock = threading.Lock()

    def call(
        self, area: str, method: str, path: str, expect: tuple[int, ...], **kwargs: Any
    ) -> Any:
        """One request; a 5xx, an unexpected status or a slow answer is a failure."""
        url = path if path.startswith("http") else f"{self.base}/api/v1{path}"
        started = time.monotonic()
        response = requests.request(method, url, timeout=60, **kwargs)
        seconds = time.monotonic() - started
        with self._lock:
            self.requests[area] += 1
        if response.status_code >= 500 or response.status_code not in expect:
            self.fail(f"{area}: {method} {path} -> {response.status_code} {response.text[:200]}")
        elif seconds > SLOW_SECONDS:
            self.fail(f"{area}: {method} {path} took {seconds:.2f} s")
        return response

    def fail(self, message: str) -> None:
        with self._lock:
            self.failures.append(message)

    def check(self, condition: bool, message: str) -> None:
        if not condition:
            self.fail(message)


def tenant(probe: Probe, name: str) -> dict[str, Any]:
    """An organization with a bot, its FAQ, a bound API key and the widget on ORIGIN."""
    email = f"probe-{uuid.uuid4().hex[:8]}@example.com"
    body = {"email": email, "password": PASSWORD, "name": name}
    token = probe.call("setup", "POST", "/auth/register", (201,), json=body).json()
    headers = {"Authorization": f"Bearer {token['access_token']}"}
    org = probe.call(
        "setup", "POST", "/organizations", (201,), headers=headers, json={"name": name}
    )
    headers["X-Organization-ID"] = str(org.json()["id"])
    bot = probe.call("setup", "POST", "/bots", (201,), headers=headers, json={"name": name})
    bot_id = bot.json()["id"]
    entries = [
        probe.call(
            "setup",
            "POST",
            f"/bots/{bot_id}/faq",
            (201,),
            headers=headers,
            json={"question": q, "answer": a, "similar_questions": s},
        ).json()["id"]
        for q, a, s in FAQ
    ]
    key = probe.call(
        "setup", "POST", "/api-keys", (201,), headers=headers, json={"name": "k", "bot_id": bot_id}
    ).json()["key"]
    patched = probe.call(
        "setup",
        "PATCH",
        f"/bots/{bot_id}",
        (200,),
        headers=headers,
        json={"allowed_origins": [ORIGIN]},
    ).json()
    return {
        "h": headers,
        "bot": bot_id,
        "entries": entries,
        "key": {"X-API-Key": key},
        "widget": {"X-Widget-Key": patched["publishable_key"], "Origin": ORIGIN},
    }


def used(probe: Probe, t: dict[str, Any]) -> int:
    return int(probe.call("usage", "GET", "/usage/stats", (200,), headers=t["h"]).json()["used"])


def events(count: int, **fields: Any) -> list[dict[str, Any]]:
    return [
        {"kind": "message", "idempotency_key": uuid.uuid4().hex, **fields} for _ in range(count)
    ]


def together(count: int, work: Callable[[int], Any]) -> list[Any]:
    barrier = threading.Barrier(count)

    def run(i: int) -> Any:
        barrier.wait()
        return work(i)

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(run, range(count)))


def probe_usage(probe: Probe, a: dict[str, Any], b: dict[str, Any]) -> None:
    before = used(probe, a)
    bad = [
        {},
        {"events": []},
        {"events": events(501)},
        {"events": [{"kind": "message"}]},
        {"events": events(1, quantity=0)},
        {"events": events(1, quantity=1001)},
        {"events": events(1, bot_id=b["bot"])},
        {"events": events(1, bot_id=2**63)},
        {"events": [{"kind": "message", "idempotency_key": "a\x00"}]},
        {"events": events(2) + [{"kind": "message", "idempotency_key": "x"}] * 2},
    ]
    for body in bad:
        probe.call(
            "usage", "POST", "/usage/records", (400, 403, 404, 422), headers=a["key"], json=body
        )
    probe.check(used(probe, a) == before, "usage: refused batches were counted")
    batch = {"events": events(3)}
    probe.call("usage", "POST", "/usage/records", (201,), headers=a["key"], json=batch)
    again = probe.call("usage", "POST", "/usage/records", (200,), headers=a["key"], json=batch)
    probe.check(again.headers.get("Idempotent-Replayed") == "true", "usage: batch replay")
    single = {"kind": "message", "idempotency_key": batch["events"][0]["idempotency_key"]}
    probe.call("usage", "POST", "/usage/record", (200,), headers=a["key"], json=single)
    key = uuid.uuid4().hex
    before = used(probe, a)
    together(
        20,
        lambda i: probe.call(
            "usage",
            "POST",
            "/usage/record",
            (200, 201),
            headers=a["key"],
            json={"kind": "message", "quantity": 1 + i % 3, "idempotency_key": key},
        ),
    )
    probe.check(used(probe, a) - before in (1, 2, 3), "usage: a colliding key counted twice")


def probe_quota_edge(probe: Probe, c: dict[str, Any]) -> None:
    """A free plan (1,000 a month) at 960: 50 concurrent batches must not go over."""
    fill = [dict(e, quantity=2) for e in events(480)]
    probe.call("quota", "POST", "/usage/records", (201,), headers=c["key"], json={"events": fill})
    batches = [events(1 + i % 5) for i in range(50)]
    together(
        50,
        lambda i: probe.call(
            "quota",
            "POST",
            "/usage/records",
            (201, 429),
            headers=c["key"],
            json={"events": batches[i]},
        ),
    )
    probe.check(used(probe, c) <= 1000, "quota: concurrent batches went over the quota")


def probe_conversations(probe: Probe, a: dict[str, Any], b: dict[str, Any]) -> None:
    conversation = probe.call("conv", "POST", "/conversations", (201,), headers=a["key"], json={})
    path = f"/conversations/{conversation.json()['id']}/messages"
    other = probe.call("conv", "POST", "/conversations", (201,), headers=b["key"], json={})
    other_path = f"/conversations/{other.json()['id']}/messages"
    probe.call("conv", "POST", other_path, (404,), headers=a["key"], json={"text": "你好"})
    probe.call("conv", "GET", other_path, (404,), headers=a["h"])
    probe.call("conv", "POST", path, (422,), headers=a["key"], json={"entry_id": a["entries"][0]})
    before = used(probe, a)
    for body in [{"entry_id": b["entries"][0]}, {"entry_id": 2**63}, {"entry_id": "1"}, {}]:
        probe.call("conv", "POST", path, (422,), headers=a["key"], json=body)
    probe.check(used(probe, a) == before, "conv: refused picks were counted")


def probe_widget(probe: Probe, a: dict[str, Any], b: dict[str, Any]) -> None:
    probe.call("widget", "GET", "/widget/config", (200,), headers=a["widget"])
    wrong = {**a["widget"], "Origin": "http://evil.example"}
    probe.call("widget", "GET", "/widget/config", (403,), headers=wrong)
    probe.call("widget", "GET", "/widget/config", (401,), headers={**a["key"], "Origin": ORIGIN})
    mine = probe.call(
        "widget", "POST", "/widget/conversations", (201,), headers=a["widget"], json={}
    )
    theirs = probe.call(
        "widget", "POST", "/widget/conversations", (201,), headers=b["widget"], json={}
    )
    visitor = {**a["widget"], "X-Visitor-Token": mine.json()["visitor_token"]}
    other = f"/widget/conversations/{theirs.json()['id']}/messages"
    probe.call("widget", "GET", other, (404,), headers=visitor)
    probe.call("widget", "POST", other, (404,), headers=visitor, json={"text": "你好"})


def probe_learning(probe: Probe, a: dict[str, Any], b: dict[str, Any]) -> None:
    probe.call("learning", "GET", f"/bots/{b['bot']}/learning", (404,), headers=a["h"])
    probe.call("learning", "GET", f"/bots/{a['bot']}/learning", (401,), headers=a["key"])
    for query in ("status=bogus", "sort=bogus", "page=0", "page_size=1000"):
        probe.call("learning", "GET", f"/bots/{a['bot']}/learning?{query}", (422,), headers=a["h"])


def xlsx(sheet_data: str) -> bytes:
    """A minimal workbook whose only sheet holds `sheet_data` (no <dimension>)."""
    main = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
    rel = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
    package = "http://schemas.openxmlformats.org/package/2006/relationships"
    parts = {
        "[Content_Types].xml": '<Types xmlns="http://schemas.openxmlformats.org/package/2006/'
        'content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-'
        'package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/>'
        '<Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-'
        'officedocument.spreadsheetml.sheet.main+xml"/><Override PartName="/xl/worksheets/'
        'sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.'
        'worksheet+xml"/></Types>',
        "_rels/.rels": f'<Relationships xmlns="{package}"><Relationship Id="rId1" Type="{rel}/'
        'officeDocument" Target="xl/workbook.xml"/></Relationships>',
        "xl/workbook.xml": f'<workbook xmlns="{main}" xmlns:r="{rel}"><sheets><sheet name="S" '
        'sheetId="1" r:id="rId1"/></sheets></workbook>',
        "xl/_rels/workbook.xml.rels": f'<Relationships xmlns="{package}"><Relationship Id="rId1" '
        f'Type="{rel}/worksheet" Target="worksheets/sheet1.xml"/></Relationships>',
        "xl/worksheets/sheet1.xml": f'<worksheet xmlns="{main}"><sheetData>{sheet_data}'
        "</sheetData></worksheet>",
    }
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, text in parts.items():
            archive.writestr(name, text)
    return out.getvalue()


def probe_import(probe: Probe, a: dict[str, Any], b: dict[str, Any]) -> None:
    header = '<row r="1"><c r="A1" t="inlineStr"><is><t>question</t></is></c></row>'
    cell = '<c t="inlineStr"><is><t>x</t></is></c>'
    files = {
        "empty-rows.xlsx": xlsx(header + "<row/>" * 3_000_000),
        "wide-row.xlsx": xlsx(header + f"<row>{cell * 300_000}</row>"),
        "not-a-zip.xlsx": b"PK\x03\x04garbage",
        "nul.csv": b"question,answer\nq\x00,a\n",
        "quotes.csv": b'question,answer\n"' + b"a" * 3_000_000,
        "blank-rows.csv": b"question,answer\n" + b"\n" * 3_000_000 + b"q,a\n",
    }
    path = f"/bots/{a['bot']}/faq/import"
    for name, content in files.items():
        probe.call(
            "import", "POST", path, (413, 422), headers=a["h"], files={"file": (name, content)}
        )
    probe.call(
        "import",
        "POST",
        f"/bots/{b['bot']}/faq/import",
        (404,),
        headers=a["h"],
        files={"file": ("faq.csv", b"question,answer\nq,a\n")},
    )


def probe_deep_json(probe: Probe, a: dict[str, Any]) -> None:
    """50,000 levels of nesting on every JSON operation of the OpenAPI document."""
    spec = probe.call("json", "GET", f"{probe.base}/openapi.json", (200,)).json()
    deep = b'{"a":' * 50_000 + b"1" + b"}" * 50_000
    for path, operations in spec["paths"].items():
        for method in operations:
            if method not in ("post", "patch", "put"):
                continue
            concrete = re.sub(r"\{\w+\}", str(a["bot"]), path)
            url = probe.base + (concrete if concrete.startswith("/api") else "/api/v1" + concrete)
            no_credentials: dict[str, str] = {}
            for headers in (a["h"], a["key"], no_credentials):
                probe.call(
                    "json",
                    method.upper(),
                    url,
                    (400, 401, 403, 404, 405, 413, 415),
                    headers={**headers, "Content-Type": "application/json"},
                    data=deep,
                )


def probe_notifies(probe: Probe) -> None:
    headers = {"Content-Type": "application/json"}
    for path in ("/payments/wechat/notify", "/payments/wechat/refund-notify"):
        for extra in ({}, {"Wechatpay-Timestamp": "9" * 400}, {"Wechatpay-Timestamp": "x"}):
            probe.call("notify", "POST", path, (400,), headers={**headers, **extra}, data=b"{}")
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    for body in (b"", b"sign=x&out_trade_no=1", b"%ZZ=%YY", b"a=" + b"[" * 50_000):
        probe.call("notify", "POST", "/payments/alipay/notify", (400,), headers=form, data=body)


def main(base: str) -> int:
    probe = Probe(base)
    a, b, c = (tenant(probe, name) for name in ("租户甲", "租户乙", "租户丙"))
    probe_usage(probe, a, b)
    probe_quota_edge(probe, c)
    probe_conversations(probe, a, b)
    probe_widget(probe, a, b)
    probe_learning(probe, a, b)
    probe_import(probe, a, b)
    probe_deep_json(probe, a)
    probe_notifies(probe)
    print("requests:", dict(probe.requests), "total", sum(probe.requests.values()))
    for failure in probe.failures:
        print("FAIL", failure)
    return 1 if probe.failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:8000"))
