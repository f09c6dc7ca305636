"""Delivering the providers' asynchronous notifies to the merchant, with retries.

Like the real gateways, the sandbox POSTs a signed notify to the trade's
notify_url and, until the merchant acknowledges it (WeChat Pay: HTTP 200/204;
Alipay: the exact text `success`), tries again after growing delays. Delivery
runs in a daemon thread (so a single-worker web server can answer the notify
that its own request triggered) and every attempt is recorded in the store.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import requests
from flask import current_app

from webapp.payments.sandbox.store import NotifyAttempt, Store

log = logging.getLogger(__name__)

# Seconds to wait before each retry (the first delivery is immediate): bounded.
DEFAULT_RETRY_DELAYS: tuple[float, ...] = (2, 5, 15, 30, 60, 120, 300, 600)
HTTP_TIMEOUT = (3.0, 10.0)
MAX_RECORDED_BODY = 2000


@dataclass(frozen=True)
class OutgoingNotify:
    """One notify to deliver: `build` makes each attempt's headers and body (WeChat Pay
    signs every attempt afresh); `accepted` reads the merchant's answer."""

    channel: str  # wechat or alipay
    out_trade_no: str
    url: str
    build: Callable[[], tuple[dict[str, str], bytes]]
    accepted: Callable[[int, str], bool]


def retry_delays() -> tuple[float, ...]:
    configured = current_app.config.get("SANDBOX_NOTIFY_RETRY_DELAYS")
    if configured is None:
        return DEFAULT_RETRY_DELAYS
    return tuple(float(delay) for delay in configured)


def send_once(notify: OutgoingNotify, store: Store, attempt: int = 1) -> NotifyAttempt:
    """POST the notify once and record what happened."""
    status: int | None = None
    body: str | None = None
    error: str | None = None
    succeeded = False
    try:
        headers, payload = notify.build()
        response = requests.post(
            notify.url, data=payload, headers=headers, timeout=HTTP_TIMEOUT, allow_redirects=False
        )
        status, body = response.status_code, response.text
        succeeded = notify.accepted(status, body)
    except Exception as exc:  # refused, timed out, bad URL: all mean "try again later"
        error = f"{type(exc).__name__}: {exc}"
    record = store.record_attempt(
        notify.channel,
        notify.out_trade_no,
        notify.url,
        attempt,
        status,
        None if body is None else body[:MAX_RECORDED_BODY],
        error,
        succeeded,
    )
    log.info(
        "sandbox %s notify for %s, attempt %s: %s",
        notify.channel,
        notify.out_trade_no,
        attempt,
        "acknowledged" if succeeded else (error or f"HTTP {status}"),
    )
    return record


@dataclass(eq=False)  # compared and hashed by identity (kept in a set)
class Delivery:
    """A notify being delivered in the background."""

    notify: OutgoingNotify
    store: Store
    delays: Sequence[float]
    attempts: list[NotifyAttempt] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> Delivery:
        self._thread = threading.Thread(
            target=self._run, name=f"sandbox-notify-{self.notify.out_trade_no}", daemon=True
        )
        with _active_lock:
            _active.add(self)
        self._thread.start()
        return self

    def _run(self) -> None:
        try:
            for attempt, delay in enumerate((0.0, *self.delays), start=1):
                if delay and self._stop.wait(delay):
                    return
                if self._stop.is_set():
                    return
                record = send_once(self.notify, self.store, attempt)
                self.attempts.append(record)
                if record.succeeded:
                    return
            log.warning(
                "sandbox %s notify for %s given up after %s attempts",
                self.notify.channel,
                self.notify.out_trade_no,
                len(self.attempts),
            )
        finally:
            with _active_lock:
                _active.discard(self)

    @property
    def done(self) -> bool:
        return self._thread is not None and not self._thread.is_alive()

    @property
    def succeeded(self) -> bool:
        return bool(self.attempts) and self.attempts[-1].succeeded

    def wait(self, timeout: float | None = None) -> list[NotifyAttempt]:
        """Block until delivery succeeded or was given up (or `timeout` passed)."""
        if self._thread is not None:
            self._thread.join(timeout)
        return list(self.attempts)

    def stop(self) -> None:
        self._stop.set()


_active: set[Delivery] = set()
_active_lock = threading.Lock()


def deliver(notify: OutgoingNotify, store: Store, delays: Sequence[float]) -> Delivery:
    return Delivery(notify, store, tuple(delays)).start()


def stop_deliveries(timeout: float = 5.0) -> None:
    """Stop every pending retry (tests call this when their server goes away)."""
    with _active_lock:
        pending = list(_active)
    for delivery in pending:
        delivery.stop()
    for delivery in pending:
        delivery.wait(timeout)
