"""The sandbox's own state: trades, rotated platform certificates and notify attempts.

A SQLite file under the instance folder (never the app's database), opened in
WAL mode with one connection per call, so the web process, the worker and the
tests (and the sandbox's notify threads) all see the same trades.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from flask import current_app

DB_FILE = "payment-sandbox.db"

SCHEMA = """
CREATE TABLE IF NOT EXISTS wechat_trades (
    out_trade_no TEXT PRIMARY KEY,
    token TEXT NOT NULL UNIQUE,
    appid TEXT NOT NULL,
    mchid TEXT NOT NULL,
    description TEXT NOT NULL,
    total INTEGER NOT NULL,
    currency TEXT NOT NULL,
    time_expire TEXT,
    notify_url TEXT NOT NULL,
    params TEXT NOT NULL,
    public_key_mode INTEGER NOT NULL,
    trade_state TEXT NOT NULL,
    transaction_id TEXT UNIQUE,
    success_time TEXT,
    payer_openid TEXT,
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS alipay_trades (
    out_trade_no TEXT PRIMARY KEY,
    token TEXT NOT NULL UNIQUE,
    app_id TEXT NOT NULL,
    method TEXT NOT NULL,
    subject TEXT NOT NULL,
    total_amount TEXT NOT NULL,
    time_expire TEXT,
    notify_url TEXT,
    return_url TEXT,
    opened INTEGER NOT NULL,
    trade_status TEXT NOT NULL,
    trade_no TEXT NOT NULL UNIQUE,
    buyer_id TEXT NOT NULL,
    buyer_logon_id TEXT NOT NULL,
    gmt_create TEXT NOT NULL,
    gmt_payment TEXT,
    gmt_close TEXT,
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS platform_certificates (
    serial_no TEXT PRIMARY KEY,
    certificate TEXT NOT NULL,
    private_key TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS notify_attempts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    channel TEXT NOT NULL,
    out_trade_no TEXT NOT NULL,
    url TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    status INTEGER,
    response_body TEXT,
    error TEXT,
    succeeded INTEGER NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS notify_attempts_trade ON notify_attempts (out_trade_no);
CREATE TABLE IF NOT EXISTS refunds (
    channel TEXT NOT NULL,
    out_refund_no TEXT NOT NULL,
    out_trade_no TEXT NOT NULL,
    refund_id TEXT NOT NULL UNIQUE,
    amount INTEGER NOT NULL,
    total INTEGER NOT NULL,
    reason TEXT NOT NULL,
    notify_url TEXT,
    public_key_mode INTEGER NOT NULL,
    status TEXT NOT NULL,
    created_at TEXT NOT NULL,
    success_time TEXT,
    PRIMARY KEY (channel, out_refund_no)
);
CREATE INDEX IF NOT EXISTS refunds_trade ON refunds (channel, out_trade_no);
CREATE TABLE IF NOT EXISTS settings (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS bills (
    token TEXT PRIMARY KEY,
    channel TEXT NOT NULL,
    content BLOB NOT NULL,
    created_at TEXT NOT NULL
);
"""


def utc_now_text() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


@dataclass(frozen=True)
class WechatTradeRecord:
    out_trade_no: str
    token: str
    appid: str
    mchid: str
    description: str
    total: int
    currency: str
    time_expire: str | None  # RFC 3339, as the merchant sent it
    notify_url: str
    params: str  # the create request's fields, canonical JSON (to spot a changed repeat)
    public_key_mode: bool  # the creating request named the platform public key id
    trade_state: str  # NOTPAY, SUCCESS, CLOSED
    transaction_id: str | None
    success_time: str | None
    payer_openid: str | None
    created_at: str


@dataclass(frozen=True)
class AlipayTradeRecord:
    out_trade_no: str
    token: str
    app_id: str
    method: str  # alipay.trade.page.pay or alipay.trade.precreate
    subject: str
    total_amount: str
    time_expire: str | None  # "yyyy-MM-dd HH:mm:ss", Asia/Shanghai
    notify_url: str | None
    return_url: str | None
    opened: bool  # the buyer opened the cashier (before that Alipay does not know the trade)
    trade_status: str  # WAIT_BUYER_PAY, TRADE_SUCCESS, TRADE_CLOSED
    trade_no: str
    buyer_id: str
    buyer_logon_id: str
    gmt_create: str
    gmt_payment: str | None
    gmt_close: str | None
    created_at: str


@dataclass(frozen=True)
class RefundRecord:
    channel: str  # wechat or alipay
    out_refund_no: str  # WeChat Pay's out_refund_no, Alipay's out_request_no
    out_trade_no: str
    refund_id: str  # WeChat Pay's refund_id (Alipay has none; kept unique anyway)
    amount: int  # fen
    total: int  # the trade's total, fen
    reason: str
    notify_url: str | None
    public_key_mode: bool
    status: str  # PROCESSING, SUCCESS, CLOSED, ABNORMAL
    created_at: str  # RFC 3339, Asia/Shanghai
    success_time: str | None  # RFC 3339, Asia/Shanghai


# What a refund holds of its trade's money: failed ones give it back.
HOLDING_REFUND_STATES = ("PROCESSING", "SUCCESS")


@dataclass(frozen=True)
class CertificateRecord:
    serial_no: str
    certificate: str
    private_key: str
    created_at: str


@dataclass(frozen=True)
class NotifyAttempt:
    id: int
    channel: str  # wechat or alipay
    out_trade_no: str
    url: str
    attempt: int  # 1 for the first delivery
    status: int | None  # None: no HTTP answer (refused, timed out)
    response_body: str | None
    error: str | None
    succeeded: bool
    created_at: str


Record = TypeVar("Record")

_initialized: set[Path] = set()
_init_lock = threading.Lock()


def _record(kind: type[Record], row: sqlite3.Row | None) -> Record | None:
    if row is None:
        return None
    values: dict[str, Any] = {}
    for field in fields(kind):  # type: ignore[arg-type]
        value = row[field.name]
        if field.type in ("bool", bool):
            value = bool(value)
        values[field.name] = value
    return kind(**values)


class Store:
    """The sandbox's SQLite file; cheap to create, safe to pass to other threads."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @classmethod
    def current(cls) -> Store:
        return cls(Path(current_app.instance_path) / DB_FILE)

    @contextmanager
    def connect(self) -> Iterator[sqlite3.Connection]:
        self._ensure_schema()
        connection = sqlite3.connect(self.path, timeout=15, isolation_level=None)
        connection.row_factory = sqlite3.Row
        try:
            connection.execute("PRAGMA busy_timeout = 15000")
            yield connection
        finally:
            connection.close()

    def _ensure_schema(self) -> None:
        if self.path in _initialized and self.path.exists():
            return
        with _init_lock:
            if self.path in _initialized and self.path.exists():
                return
            self.path.parent.mkdir(parents=True, exist_ok=True)
            connection = sqlite3.connect(self.path, timeout=15, isolation_level=None)
            try:
                connection.execute("PRAGMA journal_mode = WAL")
                connection.executescript(SCHEMA)
            finally:
                connection.close()
            _initialized.add(self.path)

    def _one(self, kind: type[Record], sql: str, *args: Any) -> Record | None:
        with self.connect() as connection:
            return _record(kind, connection.execute(sql, args).fetchone())

    def _insert(self, table: str, record: object) -> bool:
        """Insert a record; False if its primary or unique key is taken."""
        values = {f.name: getattr(record, f.name) for f in fields(record)}  # type: ignore[arg-type]
        names = ", ".join(values)
        marks = ", ".join("?" for _ in values)
        with self.connect() as connection:
            try:
                connection.execute(
                    f"INSERT INTO {table} ({names}) VALUES ({marks})", tuple(values.values())
                )
            except sqlite3.IntegrityError:
                return False
        return True

    def _update(self, sql: str, *args: Any) -> bool:
        with self.connect() as connection:
            return connection.execute(sql, args).rowcount > 0

    # --- WeChat Pay ------------------------------------------------------------------

    def wechat_trade(self, out_trade_no: str) -> WechatTradeRecord | None:
        return self._one(
            WechatTradeRecord, "SELECT * FROM wechat_trades WHERE out_trade_no = ?", out_trade_no
        )

    def wechat_trade_by_token(self, token: str) -> WechatTradeRecord | None:
        return self._one(WechatTradeRecord, "SELECT * FROM wechat_trades WHERE token = ?", token)

    def wechat_trade_by_transaction_id(self, transaction_id: str) -> WechatTradeRecord | None:
        return self._one(
            WechatTradeRecord,
            "SELECT * FROM wechat_trades WHERE transaction_id = ?",
            transaction_id,
        )

    def insert_wechat_trade(self, record: WechatTradeRecord) -> bool:
        return self._insert("wechat_trades", record)

    def pay_wechat_trade(
        self, out_trade_no: str, transaction_id: str, success_time: str, openid: str
    ) -> bool:
        """NOTPAY → SUCCESS; False if the trade was not NOTPAY (paid or closed meanwhile)."""
        return self._update(
            "UPDATE wechat_trades SET trade_state = 'SUCCESS', transaction_id = ?,"
            " success_time = ?, payer_openid = ? WHERE out_trade_no = ? AND trade_state = 'NOTPAY'",
            transaction_id,
            success_time,
            openid,
            out_trade_no,
        )

    def close_wechat_trade(self, out_trade_no: str) -> bool:
        return self._update(
            "UPDATE wechat_trades SET trade_state = 'CLOSED'"
            " WHERE out_trade_no = ? AND trade_state = 'NOTPAY'",
            out_trade_no,
        )

    def set_wechat_time_expire(self, out_trade_no: str, time_expire: str) -> bool:
        return self._update(
            "UPDATE wechat_trades SET time_expire = ? WHERE out_trade_no = ?",
            time_expire,
            out_trade_no,
        )

    # --- Alipay ----------------------------------------------------------------------

    def alipay_trade(self, out_trade_no: str) -> AlipayTradeRecord | None:
        return self._one(
            AlipayTradeRecord, "SELECT * FROM alipay_trades WHERE out_trade_no = ?", out_trade_no
        )

    def alipay_trade_by_trade_no(self, trade_no: str) -> AlipayTradeRecord | None:
        return self._one(
            AlipayTradeRecord, "SELECT * FROM alipay_trades WHERE trade_no = ?", trade_no
        )

    def alipay_trade_by_token(self, token: str) -> AlipayTradeRecord | None:
        return self._one(AlipayTradeRecord, "SELECT * FROM alipay_trades WHERE token = ?", token)

    def insert_alipay_trade(self, record: AlipayTradeRecord) -> bool:
        return self._insert("alipay_trades", record)

    def open_alipay_trade(self, out_trade_no: str, notify_url: str | None) -> bool:
        """The buyer reached the cashier: from now on Alipay knows the trade."""
        return self._update(
            "UPDATE alipay_trades SET opened = 1, notify_url = COALESCE(notify_url, ?)"
            " WHERE out_trade_no = ?",
            notify_url,
            out_trade_no,
        )

    def update_alipay_return(
        self, out_trade_no: str, return_url: str | None, notify_url: str | None
    ) -> bool:
        return self._update(
            "UPDATE alipay_trades SET return_url = ?, notify_url = COALESCE(?, notify_url)"
            " WHERE out_trade_no = ?",
            return_url,
            notify_url,
            out_trade_no,
        )

    def pay_alipay_trade(self, out_trade_no: str, gmt_payment: str) -> bool:
        return self._update(
            "UPDATE alipay_trades SET trade_status = 'TRADE_SUCCESS', opened = 1,"
            " gmt_payment = ? WHERE out_trade_no = ? AND trade_status = 'WAIT_BUYER_PAY'",
            gmt_payment,
            out_trade_no,
        )

    def close_alipay_trade(self, out_trade_no: str, gmt_close: str) -> bool:
        return self._update(
            "UPDATE alipay_trades SET trade_status = 'TRADE_CLOSED', gmt_close = ?"
            " WHERE out_trade_no = ? AND trade_status = 'WAIT_BUYER_PAY'",
            gmt_close,
            out_trade_no,
        )

    def set_alipay_time_expire(self, out_trade_no: str, time_expire: str) -> bool:
        return self._update(
            "UPDATE alipay_trades SET time_expire = ? WHERE out_trade_no = ?",
            time_expire,
            out_trade_no,
        )

    def close_refunded_alipay_trade(self, out_trade_no: str, gmt_close: str) -> bool:
        """A paid trade refunded in full is closed (TRADE_CLOSED), as Alipay does."""
        return self._update(
            "UPDATE alipay_trades SET trade_status = 'TRADE_CLOSED', gmt_close = ?"
            " WHERE out_trade_no = ? AND trade_status = 'TRADE_SUCCESS'",
            gmt_close,
            out_trade_no,
        )

    def mark_wechat_trade_refunded(self, out_trade_no: str) -> bool:
        """A paid trade with a refund is REFUND (转入退款), as WeChat Pay shows it."""
        return self._update(
            "UPDATE wechat_trades SET trade_state = 'REFUND'"
            " WHERE out_trade_no = ? AND trade_state = 'SUCCESS'",
            out_trade_no,
        )

    def trades_paid_on(self, channel: str, day_prefix: str) -> list[Any]:
        """The trades paid on a day (Asia/Shanghai), by the date prefix of their payment time."""
        if channel == "wechat":
            sql = "SELECT * FROM wechat_trades WHERE success_time LIKE ? ORDER BY success_time"
            kind: type[Any] = WechatTradeRecord
        else:
            sql = "SELECT * FROM alipay_trades WHERE gmt_payment LIKE ? ORDER BY gmt_payment"
            kind = AlipayTradeRecord
        with self.connect() as connection:
            rows = connection.execute(sql, (day_prefix + "%",)).fetchall()
        return [_record(kind, row) for row in rows]

    # --- refunds -------------------------------------------------------------------------

    def refund(self, channel: str, out_refund_no: str) -> RefundRecord | None:
        return self._one(
            RefundRecord,
            "SELECT * FROM refunds WHERE channel = ? AND out_refund_no = ?",
            channel,
            out_refund_no,
        )

    def refunds(
        self, channel: str | None = None, out_trade_no: str | None = None
    ) -> list[RefundRecord]:
        sql, args = "SELECT * FROM refunds WHERE 1 = 1", list[str]()
        if channel is not None:
            sql, args = sql + " AND channel = ?", [*args, channel]
        if out_trade_no is not None:
            sql, args = sql + " AND out_trade_no = ?", [*args, out_trade_no]
        with self.connect() as connection:
            rows = connection.execute(sql + " ORDER BY created_at, rowid", args).fetchall()
        return [r for r in (_record(RefundRecord, row) for row in rows) if r is not None]

    def refunds_succeeded_on(self, channel: str, day_prefix: str) -> list[RefundRecord]:
        with self.connect() as connection:
            rows = connection.execute(
                "SELECT * FROM refunds WHERE channel = ? AND status = 'SUCCESS'"
                " AND success_time LIKE ? ORDER BY success_time",
                (channel, day_prefix + "%"),
            ).fetchall()
        return [r for r in (_record(RefundRecord, row) for row in rows) if r is not None]

    def refunded(self, channel: str, out_trade_no: str, states: tuple[str, ...]) -> int:
        marks = ", ".join("?" for _ in states)
        with self.connect() as connection:
            row = connection.execute(
                "SELECT COALESCE(SUM(amount), 0) FROM refunds WHERE channel = ?"
                f" AND out_trade_no = ? AND status IN ({marks})",
                (channel, out_trade_no, *states),
            ).fetchone()
        return int(row[0])

    def insert_refund_within(self, record: RefundRecord) -> str:
        """Add a refund unless its trade's refunds would exceed the total, atomically:
        "created", "exists" (the number is taken) or "exceeds"."""
        values = {f.name: getattr(record, f.name) for f in fields(record)}
        with self.connect() as connection:
            connection.execute("BEGIN IMMEDIATE")
            try:
                taken = connection.execute(
                    "SELECT 1 FROM refunds WHERE channel = ? AND out_refund_no = ?",
                    (record.channel, record.out_refund_no),
                ).fetchone()
                held = connection.execute(
                    "SELECT COALESCE(SUM(amount), 0) FROM refunds WHERE channel = ?"
                    " AND out_trade_no = ? AND status IN (?, ?)",
                    (record.channel, record.out_trade_no, *HOLDING_REFUND_STATES),
                ).fetchone()[0]
                if taken is not None:
                    outcome = "exists"
                elif held + record.amount > record.total:
                    outcome = "exceeds"
                else:
                    connection.execute(
                        f"INSERT INTO refunds ({', '.join(values)})"
                        f" VALUES ({', '.join('?' for _ in values)})",
                        tuple(values.values()),
                    )
                    outcome = "created"
                connection.execute("COMMIT")
            except BaseException:
                connection.execute("ROLLBACK")
                raise
        return outcome

    def settle_refund(
        self, channel: str, out_refund_no: str, status: str, success_time: str | None
    ) -> bool:
        """PROCESSING → SUCCESS, CLOSED or ABNORMAL; False if it was not processing."""
        return self._update(
            "UPDATE refunds SET status = ?, success_time = ?"
            " WHERE channel = ? AND out_refund_no = ? AND status = 'PROCESSING'",
            status,
            success_time,
            channel,
            out_refund_no,
        )

    # --- behaviour switches (refund outcomes) and bills ----------------------------------

    def setting(self, name: str, default: str) -> str:
        with self.connect() as connection:
            row = connection.execute(
                "SELECT value FROM settings WHERE name = ?", (name,)
            ).fetchone()
        return str(row[0]) if row is not None else default

    def set_setting(self, name: str, value: str) -> None:
        with self.connect() as connection:
            connection.execute(
                "INSERT INTO settings (name, value) VALUES (?, ?)"
                " ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                (name, value),
            )

    def save_bill(self, token: str, channel: str, content: bytes) -> None:
        with self.connect() as connection:
            connection.execute(
                "INSERT INTO bills (token, channel, content, created_at) VALUES (?, ?, ?, ?)",
                (token, channel, content, utc_now_text()),
            )

    def bill(self, token: str, channel: str) -> bytes | None:
        with self.connect() as connection:
            row = connection.execute(
                "SELECT content FROM bills WHERE token = ? AND channel = ?", (token, channel)
            ).fetchone()
        return bytes(row[0]) if row is not None else None

    # --- platform certificates (rotations; the first one lives in the keys file) -------

    def certificates(self) -> list[CertificateRecord]:
        with self.connect() as connection:
            rows = connection.execute(
                "SELECT * FROM platform_certificates ORDER BY created_at, rowid"
            ).fetchall()
        return [r for r in (_record(CertificateRecord, row) for row in rows) if r is not None]

    def add_certificate(self, serial_no: str, certificate: str, private_key: str) -> None:
        self._insert(
            "platform_certificates",
            CertificateRecord(serial_no, certificate, private_key, utc_now_text()),
        )

    # --- notify attempts ---------------------------------------------------------------

    def record_attempt(
        self,
        channel: str,
        out_trade_no: str,
        url: str,
        attempt: int,
        status: int | None,
        response_body: str | None,
        error: str | None,
        succeeded: bool,
    ) -> NotifyAttempt:
        created_at = utc_now_text()
        with self.connect() as connection:
            cursor = connection.execute(
                "INSERT INTO notify_attempts (channel, out_trade_no, url, attempt, status,"
                " response_body, error, succeeded, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    channel,
                    out_trade_no,
                    url,
                    attempt,
                    status,
                    response_body,
                    error,
                    int(succeeded),
                    created_at,
                ),
            )
            attempt_id = int(cursor.lastrowid or 0)
        return NotifyAttempt(
            attempt_id,
            channel,
            out_trade_no,
            url,
            attempt,
            status,
            response_body,
            error,
            succeeded,
            created_at,
        )

    def attempts(self, out_trade_no: str | None = None) -> list[NotifyAttempt]:
        sql = "SELECT * FROM notify_attempts"
        args: tuple[str, ...] = ()
        if out_trade_no is not None:
            sql += " WHERE out_trade_no = ?"
            args = (out_trade_no,)
        with self.connect() as connection:
            rows = connection.execute(sql + " ORDER BY id", args).fetchall()
        return [r for r in (_record(NotifyAttempt, row) for row in rows) if r is not None]
