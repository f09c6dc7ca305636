"""The quota and idempotency under concurrent writers, on real PostgreSQL with real commits.

Each thread drives the API through its own Flask test client, so every request
gets its own app context, session and database connection, as under gunicorn.
`committed_db` lets the commits through and deletes what the tests created.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from flask import Flask

from tests.usage.conftest import BATCH, RECORD, key_headers
from webapp.extensions import mail

WRITERS = 50
REQUESTS_EACH = 25  # 1,250 attempts against the free plan's 1,000
RETRIES = 20


def run_together(count: int, work: Callable[[int], list[Any]]) -> list[Any]:
    """Run `work(i)` in `count` threads released at the same moment; all their results."""
    barrier = threading.Barrier(count)

    def start(i: int) -> list[Any]:
        barrier.wait(timeout=30)
        return work(i)

    with ThreadPoolExecutor(max_workers=count) as pool:
        return [item for batch in pool.map(start, range(count)) for item in batch]


def test_concurrent_writers_never_exceed_the_quota(
    app: Flask, committed_db: None, make_tenant: Any
) -> None:
    tenant = make_tenant()  # free: 1,000 messages a month
    secret = tenant.add_api_key()

    def writer(i: int) -> list[tuple[int, str | None]]:
        client = app.test_client()
        results = []
        for _ in range(REQUESTS_EACH):
            response = client.post(RECORD, json={"kind": "message"}, headers=key_headers(secret))
            results.append((response.status_code, response.get_json().get("error")))
        return results

    with mail.record_messages() as outbox:
        results = run_together(WRITERS, writer)

    statuses = Counter(status for status, _error in results)
    assert statuses == {201: 1000, 429: 250}, statuses
    assert {error for status, error in results if status == 429} == {"quota_exceeded"}
    assert tenant.counts() == (1000, 1000, 1000)  # counter, records, daily rollup
    # Each threshold was crossed by exactly one of the racing requests: one mail each.
    assert sorted(len(m.subject) > 0 and m.recipients[0] for m in outbox) == [
        tenant.owner.email,
        tenant.owner.email,
    ]


def test_concurrent_retries_of_one_key_count_once(
    app: Flask, committed_db: None, make_tenant: Any
) -> None:
    tenant = make_tenant()
    secret = tenant.add_api_key()
    payload = {"kind": "message", "quantity": 1, "idempotency_key": "retry-storm-1"}

    def retry(i: int) -> list[tuple[int, dict[str, Any], str]]:
        response = app.test_client().post(RECORD, json=payload, headers=key_headers(secret))
        return [(response.status_code, response.get_json(), response.headers["X-Quota-Remaining"])]

    results = run_together(RETRIES, retry)

    assert sorted(status for status, _body, _remaining in results) == [200] * (RETRIES - 1) + [201]
    bodies = [body for _status, body, _remaining in results]
    assert all(body == bodies[0] for body in bodies), bodies
    assert bodies[0]["used"] == 1 and bodies[0]["remaining"] == 999
    assert {remaining for _status, _body, remaining in results} == {"999"}
    assert tenant.counts() == (1, 1, 1)


def test_concurrent_batch_writers_at_the_quota_edge_never_exceed_it(
    app: Flask, committed_db: None, make_tenant: Any
) -> None:
    """50 writers, two batches each of 1 to 5 events, for the last 100 of 1,000 messages."""
    tenant = make_tenant()
    secret = tenant.add_api_key()
    assert tenant.api.post(RECORD, json={"kind": "message", "quantity": 900}).status_code == 201

    def writer(i: int) -> list[tuple[int, int, dict[str, Any]]]:
        client = app.test_client()
        results = []
        for batch in range(2):
            size = (i + batch) % 5 + 1
            events = [
                {"kind": "message", "idempotency_key": f"w{i}-b{batch}-e{n}"} for n in range(size)
            ]
            response = client.post(BATCH, json={"events": events}, headers=key_headers(secret))
            results.append((response.status_code, size, response.get_json()))
        return results

    results = run_together(WRITERS, writer)

    statuses = Counter(status for status, _size, _body in results)
    assert set(statuses) == {201, 429}, statuses
    accepted = [body["accepted"] for status, _size, body in results if status == 201]
    assert all(
        body["accepted"] == size and body["replayed"] == 0
        for status, size, body in results
        if status == 201
    )
    assert {body["error"] for status, _size, body in results if status == 429} == {"quota_exceeded"}
    used = 900 + sum(accepted)
    assert used <= 1000
    # Every refused batch did not fit when it was refused, and what remains only shrinks.
    assert 1000 - used < min(size for status, size, _body in results if status == 429)
    assert tenant.counts() == (used, 1 + sum(accepted), used)  # counter, records, rollup


def test_concurrent_overlapping_batches_count_each_key_once(
    app: Flask, committed_db: None, make_tenant: Any
) -> None:
    """Batches that share keys with each other (retries racing): every key once."""
    tenant = make_tenant()
    secret = tenant.add_api_key()
    writers, window = 30, 10

    def writer(i: int) -> list[tuple[int, dict[str, Any]]]:
        events = [{"kind": "message", "idempotency_key": f"k{n}"} for n in range(i, i + window)]
        response = app.test_client().post(
            BATCH, json={"events": events}, headers=key_headers(secret)
        )
        return [(response.status_code, response.get_json())]

    results = run_together(writers, writer)

    assert {status for status, _body in results} <= {200, 201}, results
    assert all(body["accepted"] + body["replayed"] == window for _status, body in results)
    keys = writers + window - 1
    assert sum(body["accepted"] for _status, body in results) == keys
    assert max(body["used"] for _status, body in results) == keys
    assert tenant.counts() == (keys, keys, keys)
