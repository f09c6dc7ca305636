"""Login throttling: one budget for portal and API logins, per client IP and per client IP
and account, counted atomically, that never refuses the owner elsewhere (issue 12, item 4)."""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

from flask import Flask

from tests.api import assert_error
from tests.factories import DEFAULT_PASSWORD
from tests.portal.conftest import Portal

LOGIN = "/api/v1/auth/login"
GUESSER = {"REMOTE_ADDR": "203.0.113.66"}
OWNER = {"REMOTE_ADDR": "198.51.100.23"}


def test_the_owner_from_another_address_is_not_refused(app: Flask, user: Any) -> None:
    guesser, owner = app.test_client(), app.test_client()
    for _ in range(12):
        response = guesser.post(
            LOGIN, json={"email": user.email, "password": "guess"}, environ_base=GUESSER
        )
        assert response.status_code in (401, 429)
    assert_error(
        guesser.post(
            LOGIN, json={"email": user.email, "password": DEFAULT_PASSWORD}, environ_base=GUESSER
        ),
        429,
        "rate_limited",
    )
    ok = owner.post(
        LOGIN, json={"email": user.email, "password": DEFAULT_PASSWORD}, environ_base=OWNER
    )
    assert ok.status_code == 200, ok.get_json()
    portal = Portal(app.test_client())
    portal.client.environ_base.update(OWNER)
    assert portal.login(user.email).status_code == 302


def test_portal_and_api_logins_share_one_budget(app: Flask, user: Any) -> None:
    api = app.test_client()
    portal = Portal(app.test_client())
    portal.client.environ_base.update(GUESSER)
    for _ in range(3):
        wrong = api.post(LOGIN, json={"email": user.email, "password": "x"}, environ_base=GUESSER)
        assert_error(wrong, 401, "invalid_credentials")
    for _ in range(2):
        assert portal.login(user.email, "wrong-password").status_code == 401
    blocked = portal.login(user.email)
    assert blocked.status_code == 429
    assert "Retry-After" in blocked.headers
    assert_error(
        api.post(
            LOGIN, json={"email": user.email, "password": DEFAULT_PASSWORD}, environ_base=GUESSER
        ),
        429,
        "rate_limited",
    )


def test_concurrent_guesses_evaluate_at_most_the_limit(
    app: Flask, committed_db: None, make_user: Any
) -> None:
    victim = make_user()
    attempts = 30
    barrier = threading.Barrier(attempts)
    outcomes: Counter[int] = Counter()
    lock = threading.Lock()

    def guess(n: int) -> None:
        client = app.test_client()
        barrier.wait()
        response = client.post(
            LOGIN, json={"email": victim.email, "password": f"guess-{n}"}, environ_base=GUESSER
        )
        with lock:
            outcomes[response.status_code] += 1

    threads = [threading.Thread(target=guess, args=(n,)) for n in range(attempts)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert outcomes == Counter({401: 5, 429: 25}), outcomes  # LOGIN_LIMIT_PER_ACCOUNT: 5/min
