"""Every metering path takes the organization's month counter before the idempotency key.

A record by API key (one statement: counter, then record) and a record by a person
(the general path) raced on the same idempotency key: when the general path took the
key first and the counter second, the two waited on each other and PostgreSQL broke
the deadlock by failing one of them (a 500). These tests stop the person's request
after its first write (on PostgreSQL the general path's writes are one statement too),
let the other caller run into whatever that first write holds, then let the person go on:
with one lock order the second caller waits and answers as a replay; with two it deadlocks.
Real commits, real threads.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from tests.usage.conftest import BATCH, RECORD, Tenant, key_headers

WAIT = 10  # seconds; each step takes milliseconds


@contextmanager
def paused_before_second_write(app: Flask) -> Iterator[tuple[threading.Event, threading.Event]]:
    """Stop the thread named `paused` just before its second write (INSERT, UPDATE or a
    prepared statement's EXECUTE), or before its commit when it wrote once (a path whose
    writes are one statement).

    Yields (reached, release): `reached` is set when that thread waits, holding the
    locks of its first write; it goes on once `release` is set.
    """
    reached, release = threading.Event(), threading.Event()
    writes = 0

    def pause() -> None:
        reached.set()
        assert release.wait(WAIT), "never released"

    def before(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        nonlocal writes
        if threading.current_thread().name != "paused":
            return
        if statement.lstrip().upper().startswith(("INSERT", "UPDATE", "EXECUTE")):
            writes += 1
            if writes == 2:
                pause()

    def before_commit(_conn: Any) -> None:
        if threading.current_thread().name == "paused" and writes == 1:
            pause()

    sa.event.listen(sa.engine.Engine, "before_cursor_execute", before)
    sa.event.listen(sa.engine.Engine, "commit", before_commit)
    try:
        yield reached, release
    finally:
        release.set()
        sa.event.remove(sa.engine.Engine, "before_cursor_execute", before)
        sa.event.remove(sa.engine.Engine, "commit", before_commit)


def wait_for_a_lock_wait(app: Flask) -> None:
    """Until some session of the test database waits for a row or key lock."""
    engine = sa.create_engine(app.config["SQLALCHEMY_DATABASE_URI"], poolclass=sa.pool.NullPool)
    deadline = time.monotonic() + WAIT
    try:
        with engine.connect() as connection:
            while time.monotonic() < deadline:
                waiting = connection.scalar(
                    sa.text(
                        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                        "AND wait_event_type = 'Lock'"
                    )
                )
                connection.rollback()
                if waiting:
                    return
                time.sleep(0.01)
    finally:
        engine.dispose()
    raise AssertionError("the second caller never waited for a lock")


def race(app: Flask, first: Callable[[], Any], second: Callable[[], Any]) -> tuple[Any, Any]:
    """`first` in the thread `paused`, stopped after its first write; `second` meanwhile."""
    results: dict[str, Any] = {}

    def run(name: str, work: Callable[[], Any]) -> threading.Thread:
        thread = threading.Thread(target=lambda: results.update({name: work()}), name=name)
        thread.start()
        return thread

    with paused_before_second_write(app) as (reached, release):
        paused = run("paused", first)
        assert reached.wait(WAIT), "the first caller never wrote"
        other = run("other", second)
        wait_for_a_lock_wait(app)
        release.set()
        paused.join(WAIT * 2)
        other.join(WAIT * 2)
    return results["paused"], results["other"]


@pytest.fixture
def racing_tenant(committed_db: None, make_tenant: Any) -> Tenant:
    return make_tenant()


def test_a_person_and_a_key_recording_one_idempotency_key(
    app: Flask, racing_tenant: Tenant
) -> None:
    tenant = racing_tenant
    secret = tenant.add_api_key()
    payload = {"kind": "message", "idempotency_key": "race-1"}
    token = tenant.api.token

    def by_person() -> Any:
        return app.test_client().post(
            RECORD, json=payload, headers={"Authorization": f"Bearer {token}"}
        )

    def by_key() -> Any:
        return app.test_client().post(RECORD, json=payload, headers=key_headers(secret))

    person, key = race(app, by_person, by_key)

    assert (person.status_code, key.status_code) == (201, 200), (
        person.get_json(),
        key.get_json(),
    )
    assert key.get_json() == person.get_json()
    assert tenant.counts() == (1, 1, 1)


def test_a_person_and_a_batch_recording_one_idempotency_key(
    app: Flask, racing_tenant: Tenant
) -> None:
    tenant = racing_tenant
    secret = tenant.add_api_key()
    token = tenant.api.token
    events = [
        {"kind": "message", "idempotency_key": "race-2"},
        {"kind": "message", "quantity": 2, "idempotency_key": "race-3"},
    ]

    def by_person() -> Any:
        return app.test_client().post(
            RECORD, json=events[0], headers={"Authorization": f"Bearer {token}"}
        )

    def by_batch() -> Any:
        return app.test_client().post(BATCH, json={"events": events}, headers=key_headers(secret))

    person, batch = race(app, by_person, by_batch)

    assert (person.status_code, batch.status_code) == (201, 201), (
        person.get_json(),
        batch.get_json(),
    )
    assert (batch.get_json()["accepted"], batch.get_json()["replayed"]) == (1, 1)
    assert batch.get_json()["used"] == 3
    assert tenant.counts() == (3, 2, 3)


def test_a_batch_waiting_on_the_record_of_its_own_key_at_the_quota_edge_is_a_replay(
    app: Flask, racing_tenant: Tenant
) -> None:
    """The batch's first look at its keys predates the record it waited for: a refusal
    is looked at again before it is answered, and this one is a replay, not a 429."""
    tenant = racing_tenant
    secret = tenant.add_api_key()
    token = tenant.api.token
    assert tenant.api.post(RECORD, json={"kind": "message", "quantity": 998}).status_code == 201
    event = {"kind": "message", "quantity": 2, "idempotency_key": "edge"}

    def by_person() -> Any:
        return app.test_client().post(
            RECORD, json=event, headers={"Authorization": f"Bearer {token}"}
        )

    def by_batch() -> Any:
        return app.test_client().post(BATCH, json={"events": [event]}, headers=key_headers(secret))

    person, batch = race(app, by_person, by_batch)

    assert (person.status_code, batch.status_code) == (201, 200), batch.get_json()
    assert (batch.get_json()["replayed"], batch.get_json()["used"]) == (1, 1000)
    assert tenant.counts() == (1000, 2, 1000)
