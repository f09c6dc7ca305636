"""Metering: record usage against the monthly quota, and read it back.

`record_usage` is one transaction: one conditional UPDATE that consumes the quota
only if it fits, the record (unique per idempotency key and scope), and the daily
rollup. If the quota does not fit, `QuotaExceeded` is raised and nothing is
written. `record_batch` does the same for up to 500 events at once.

Lock order: every path takes the organization's month counter row first (the
conditional upsert), then the idempotency key (the record's unique index entry),
then the rollup rows. Two paths that took the counter and a key in opposite orders
deadlocked when they raced on one key.

`record_with_api_key` is the HTTP endpoint's fast path for bots: on PostgreSQL it
authenticates the key and records in one statement (one round trip, then the
commit); anything but a plain success there is left to the general path (the
endpoint authenticates the key and calls `record_usage`), which gives the precise
answer (401, 403, 429, an idempotent replay).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from flask_babel import gettext as _

from webapp.billing.models import Plan
from webapp.billing.periods import SHANGHAI, month_start, next_month_start
from webapp.billing.services import claim_notice, plan_of
from webapp.bots.models import Bot
from webapp.bots.services import (
    LAST_USED_RESOLUTION,
    acting_bot_id,
    api_key_parts,
    bot_count,
    bot_of,
)
from webapp.core.mail import external_url, send_mail
from webapp.core.security import token_digest
from webapp.db import PreparedStatement, UTCDateTime, utcnow
from webapp.errors import AppError, Conflict, Forbidden, NotFound
from webapp.extensions import db
from webapp.orgs.models import Organization, OrganizationMember
from webapp.usage.models import API_SCOPE, UsageCounter, UsageDaily, UsageKind, UsageRecord

MAX_QUANTITY = 1000
QUOTA_THRESHOLDS = (80, 100)  # percent; a mail each, once per period
MAX_HISTORY_DAYS = 400
MAX_HISTORY_MONTHS = 36


@dataclass(frozen=True)
class UsageResult:
    used: int
    limit: int | None  # None: unlimited
    period_start: datetime
    period_end: datetime
    replayed: bool = False  # an idempotency key seen before: counted once, this is that answer

    @property
    def remaining(self) -> int | None:
        return None if self.limit is None else max(self.limit - self.used, 0)


# The hot path's SQL, built once (not per request) and valid on PostgreSQL and SQLite.
# A record is: the idempotency gate, the quota (one conditional upsert), the rollup,
# the record's result; the request then commits once.
_PLAN_TERMS = sa.text(
    "SELECT p.monthly_message_quota, p.features, s.current_period_end FROM subscriptions s "
    "JOIN plans p ON p.id = s.plan_id WHERE s.organization_id = :organization_id"
).columns(
    monthly_message_quota=sa.BigInteger(), features=sa.JSON(), current_period_end=UTCDateTime()
)
_INSERT_RECORD = sa.text(
    "INSERT INTO usage_records (organization_id, bot_id, api_key_id, kind, quantity, "
    "idempotency_scope, idempotency_key, period_start, used_after, created_at) VALUES "
    "(:organization_id, :bot_id, :api_key_id, :kind, :quantity, :idempotency_scope, "
    ":idempotency_key, :period_start, :used_after, :created_at) "
    "ON CONFLICT (organization_id, idempotency_scope, idempotency_key) DO NOTHING RETURNING id"
).bindparams(
    sa.bindparam("period_start", type_=UTCDateTime()),
    sa.bindparam("created_at", type_=UTCDateTime()),
)
# Adds `quantity` only if the month's total stays within `quota` (NULL: unlimited). The
# upsert locks the counter row, so checking and consuming are one atomic step.
_CONSUME_QUOTA = sa.text(
    "INSERT INTO usage_counters (organization_id, period_start, used) "
    "SELECT :organization_id, :period_start, :quantity "
    "WHERE :quota IS NULL OR :quantity <= :quota "
    "ON CONFLICT (organization_id, period_start) DO UPDATE "
    "SET used = usage_counters.used + excluded.used "
    "WHERE :quota IS NULL OR usage_counters.used + excluded.used <= :quota "
    "RETURNING used"
).bindparams(sa.bindparam("period_start", type_=UTCDateTime()))
_ROLL_UP = sa.text(
    "INSERT INTO usage_daily (organization_id, day, bot_id, kind, quantity) "
    "VALUES (:organization_id, :day, :bot_id, :kind, :quantity) "
    "ON CONFLICT (organization_id, day, bot_id, kind) DO UPDATE "
    "SET quantity = usage_daily.quantity + excluded.quantity"
).bindparams(sa.bindparam("day", type_=sa.Date()))
# A record found to be a replay after its quantity was consumed gives it back (the
# counter row is still locked by this transaction: nobody saw the interim value).
_GIVE_BACK = sa.text(
    "UPDATE usage_counters SET used = used - :quantity "
    "WHERE organization_id = :organization_id AND period_start = :period_start"
).bindparams(sa.bindparam("period_start", type_=UTCDateTime()))


@dataclass(frozen=True)
class PlanTerms:
    """What metering needs of the plan in force: the quota (None: unlimited) and features."""

    quota: int | None
    features: list[str]


def plan_terms(organization_id: int, now: datetime) -> PlanTerms:
    row = db.session.execute(_PLAN_TERMS, {"organization_id": organization_id}).one()
    if row.current_period_end is not None and row.current_period_end <= now:
        plan = plan_of(organization_id, now)  # the paid period is over: what follows it
        return PlanTerms(plan.monthly_message_quota, list(plan.features))
    return PlanTerms(row.monthly_message_quota, list(row.features or []))


class QuotaExceeded(AppError):
    status = 429
    error = "quota_exceeded"
    usage: UsageResult | None = None  # where the month's counter stood (X-Quota-* headers)


def record_usage(
    organization_id: int,
    kind: UsageKind,
    quantity: int = 1,
    *,
    bot_id: int | None = None,
    api_key_id: int | None = None,
    idempotency_key: str | None = None,
    idempotency_scope: str = API_SCOPE,
    now: datetime | None = None,
) -> UsageResult:
    """Count `quantity` against the month's quota, once per idempotency key and scope.

    The plan terms are read here, right before the counter, never taken from an earlier
    read: a plan changed meanwhile (a refund ending a paid period while a message was
    answered) must not be metered against the quota it had before."""
    now = now or utcnow()
    terms = plan_terms(organization_id, now)
    _require_feature(terms, kind)
    if not 1 <= quantity <= MAX_QUANTITY:
        raise AppError(
            _("Quantity must be from 1 to %(max)d.", max=MAX_QUANTITY),
            error="validation_error",
            status=422,
        )
    if bot_id is not None and not bot_of(organization_id, bot_id).is_enabled:
        raise Forbidden(_("This bot is disabled."), error="bot_disabled")
    period_start, period_end = month_start(now), next_month_start(now)
    quota = terms.quota
    counter = {"organization_id": organization_id, "period_start": period_start}

    record = {
        **counter,
        "bot_id": bot_id,
        "api_key_id": api_key_id,
        "quota": quota,
        "kind": kind.value,
        "quantity": quantity,
        "scope": idempotency_scope,
        "idempotency_key": idempotency_key,
        "now": now,
        "day": now.astimezone(SHANGHAI).date(),
    }
    connection = db.session.connection()
    if connection.dialect.name == "postgresql":  # one round trip
        used, recorded = RECORD.run(connection, record).one()
    else:
        used, recorded = _record_portable(record)
    if used is None:
        if idempotency_key is not None and (
            replay := _replay(organization_id, idempotency_scope, idempotency_key, quota)
        ):
            return replay  # counted before, when it still fitted
        raise _quota_exceeded(organization_id, quota or 0, period_start, period_end)
    if not recorded:  # this idempotency key was recorded before
        db.session.execute(_GIVE_BACK, {**counter, "quantity": quantity})
        replay = _replay(organization_id, idempotency_scope, idempotency_key, quota)
        assert replay is not None  # the conflict was with a committed record
        return replay
    _notify_thresholds(organization_id, quota, period_start, used - quantity, used)
    return UsageResult(used, quota, period_start, period_end)


def _record_portable(record: dict[str, Any]) -> tuple[int | None, bool]:
    """`RECORD` as separate statements (SQLite): the month's total after the record (None:
    over quota, nothing written) and whether the record was written (False: a replay,
    with the counter raised)."""
    # The counter first (see the lock order above), then the key.
    used = db.session.scalar(_CONSUME_QUOTA, record)
    if used is None:
        return None, False
    record_id = db.session.scalar(
        _INSERT_RECORD,
        {
            **record,
            "idempotency_scope": record["scope"],
            "used_after": used,
            "created_at": record["now"],
        },
    )
    if record_id is None:
        return used, False
    db.session.execute(_ROLL_UP, {**record, "bot_id": record["bot_id"] or 0})
    return used, True


def _require_feature(terms: PlanTerms, kind: UsageKind) -> None:
    feature = kind.required_feature
    if feature is not None and feature not in terms.features:
        raise Forbidden(
            _(
                "Your plan does not include %(kind)s messages; upgrade to use them.",
                kind=kind.value,
            ),
            error="feature_not_in_plan",
        )


def _month_used(organization_id: int, period_start: datetime) -> int:
    used = db.session.scalar(
        sa.select(UsageCounter.used).where(
            UsageCounter.organization_id == organization_id,
            UsageCounter.period_start == period_start,
        )
    )
    return used or 0


def _quota_exceeded(
    organization_id: int, quota: int, period_start: datetime, period_end: datetime
) -> QuotaExceeded:
    exceeded = QuotaExceeded(
        _(
            "The monthly quota of %(limit)d messages is used up; it resets on %(reset)s.",
            limit=quota,
            reset=f"{period_end.astimezone(SHANGHAI):%Y-%m-%d}",
        )
    )
    used = _month_used(organization_id, period_start)
    exceeded.usage = UsageResult(used, quota, period_start, period_end)
    return exceeded


def refuse_early(organization_id: int, kind: UsageKind, now: datetime | None = None) -> None:
    """What `record_usage` would refuse whatever happens meanwhile: a kind the plan lacks,
    or a month whose quota is already used up. A plain read that locks nothing, for
    callers with slow work to do before recording (answering a message); `record_usage`
    stays the atomic check (and reads the plan terms again)."""
    now = now or utcnow()
    terms = plan_terms(organization_id, now)
    _require_feature(terms, kind)
    period_start = month_start(now)
    if terms.quota is not None and _month_used(organization_id, period_start) >= terms.quota:
        raise _quota_exceeded(organization_id, terms.quota, period_start, next_month_start(now))


# The writes of one record, in the lock order: the quota (the conditional upsert, which
# locks the month counter row and checks and consumes in one step), the record (ON
# CONFLICT DO NOTHING on its idempotency key: a key seen before, or committed by a
# concurrent retry meanwhile, leaves `record` empty with the counter already raised),
# the daily rollup (only with the record). They read `terms`: organization_id, bot_id,
# id (the API key's) and quota (NULL: unlimited). The statements' CTEs share one snapshot
# and cannot see each other's rows, so each write takes its input from the one before.
_RECORD_WRITES = """counter AS (
    INSERT INTO usage_counters AS c (organization_id, period_start, used)
    SELECT organization_id, %(period_start)s, %(quantity)s FROM terms
    WHERE quota IS NULL OR %(quantity)s <= quota
    ON CONFLICT (organization_id, period_start) DO UPDATE SET used = c.used + excluded.used
    WHERE (SELECT quota FROM terms) IS NULL OR c.used + excluded.used <= (SELECT quota FROM terms)
    RETURNING used
), record AS (
    INSERT INTO usage_records (organization_id, bot_id, api_key_id, kind, quantity,
        idempotency_scope, idempotency_key, period_start, used_after, created_at)
    SELECT terms.organization_id, terms.bot_id, terms.id, %(kind)s, %(quantity)s,
        %(scope)s, %(idempotency_key)s, %(period_start)s, counter.used, %(now)s
    FROM terms, counter
    ON CONFLICT (organization_id, idempotency_scope, idempotency_key) DO NOTHING
    RETURNING id
), daily AS (
    INSERT INTO usage_daily AS d (organization_id, day, bot_id, kind, quantity)
    SELECT terms.organization_id, %(day)s, COALESCE(terms.bot_id, 0), %(kind)s, %(quantity)s
    FROM terms, record
    ON CONFLICT (organization_id, day, bot_id, kind) DO UPDATE
    SET quantity = d.quantity + excluded.quantity
)"""

# `record_usage`'s writes as one statement, for a caller that has read the plan terms.
_RECORD = (
    """
WITH terms AS (
    SELECT %(organization_id)s AS organization_id, %(bot_id)s AS bot_id, %(api_key_id)s AS id,
        %(quota)s AS quota
), """
    + _RECORD_WRITES
    + """
SELECT (SELECT used FROM counter), EXISTS (SELECT 1 FROM record)
"""
)
RECORD = PreparedStatement(
    "usage_record",
    _RECORD,
    {
        "organization_id": "integer",
        "bot_id": "integer",
        "api_key_id": "integer",
        "quota": "bigint",
        "kind": "text",
        "quantity": "integer",
        "scope": "text",
        "idempotency_key": "text",
        "period_start": "timestamptz",
        "now": "timestamptz",
        "day": "date",
    },
)

# The same record plus the API-key check, as one PostgreSQL statement. Every write is
# gated on every rule: a live key (digest match, not revoked), a bound key asked for its
# own bot only, an enabled bot of the organization, a plan period still running, the
# kind in the plan, and the quota. If any gate fails nothing is written and `recorded` is
# false; a replay leaves it false with the counter raised, and the caller rolls back.
_RECORD_WITH_KEY = (
    """
WITH key AS (
    SELECT id, organization_id, COALESCE(bot_id, %(bot_id)s) AS bot_id
    FROM api_keys
    WHERE prefix = %(prefix)s AND secret_hash = %(digest)s AND revoked_at IS NULL
      AND (bot_id IS NULL OR %(bot_id)s IS NULL OR bot_id = %(bot_id)s)
), terms AS (
    SELECT key.*, p.monthly_message_quota AS quota
    FROM key
    JOIN subscriptions s ON s.organization_id = key.organization_id
    JOIN plans p ON p.id = s.plan_id
    WHERE (s.current_period_end IS NULL OR s.current_period_end > %(now)s)
      AND (%(feature)s IS NULL OR p.features::jsonb @> jsonb_build_array(%(feature)s))
      AND (key.bot_id IS NULL OR EXISTS (
          SELECT 1 FROM bots b
          WHERE b.id = key.bot_id AND b.organization_id = key.organization_id AND b.is_enabled))
), """
    + _RECORD_WRITES
    + """, touch AS (
    UPDATE api_keys SET last_used_at = %(now)s
    FROM record
    WHERE api_keys.prefix = %(prefix)s
      AND (api_keys.last_used_at IS NULL OR api_keys.last_used_at <= %(touch_before)s)
)
SELECT terms.organization_id, terms.quota, counter.used, EXISTS (SELECT 1 FROM record)
FROM terms, counter
"""
)
# Prepared once per database connection: planning this statement costs PostgreSQL three
# times what executing it does.
RECORD_WITH_KEY = PreparedStatement(
    "usage_record_with_key",
    _RECORD_WITH_KEY,
    {
        "prefix": "text",
        "digest": "text",
        "bot_id": "integer",
        "now": "timestamptz",
        "touch_before": "timestamptz",
        "feature": "text",
        "kind": "text",
        "quantity": "integer",
        "scope": "text",
        "idempotency_key": "text",
        "period_start": "timestamptz",
        "day": "date",
    },
)


def record_with_api_key(
    token: str,
    kind: UsageKind,
    quantity: int = 1,
    *,
    bot_id: int | None = None,
    idempotency_key: str | None = None,
) -> UsageResult | None:
    """Authenticate a bot's API key and record its usage in one statement, on PostgreSQL.

    None when that is not a plain success (or not PostgreSQL): nothing is left of the
    attempt, and the caller authenticates the key and calls `record_usage`, which
    answers precisely.
    """
    connection = db.session.connection()
    if connection.dialect.name != "postgresql":
        return None
    result = _record_in_one_statement(
        connection, token, kind, quantity, bot_id, idempotency_key, utcnow()
    )
    if result is None:
        db.session.rollback()
    return result


def _record_in_one_statement(
    connection: sa.Connection,
    token: str,
    kind: UsageKind,
    quantity: int,
    bot_id: int | None,
    idempotency_key: str | None,
    now: datetime,
) -> UsageResult | None:
    """The recorded result, or None when a gate refused or the key was a replay."""
    parts = api_key_parts(token)
    if parts is None or not 1 <= quantity <= MAX_QUANTITY:
        return None
    parameters = record_parameters(parts, kind, quantity, bot_id, idempotency_key, now)
    row = RECORD_WITH_KEY.run(connection, parameters).first()
    if row is None or not row[3]:
        return None
    organization_id, quota, used, _recorded = row
    period_start = month_start(now)
    _notify_thresholds(organization_id, quota, period_start, used - quantity, used)
    return UsageResult(used, quota, period_start, next_month_start(now))


def record_parameters(
    key: tuple[str, str],
    kind: UsageKind,
    quantity: int,
    bot_id: int | None,
    idempotency_key: str | None,
    now: datetime,
) -> dict[str, object]:
    """The one-statement record's parameters (also what bench/run.py sends it)."""
    prefix, secret = key
    return {
        "prefix": prefix,
        "digest": token_digest(secret),
        "bot_id": bot_id,
        "now": now,
        "touch_before": now - LAST_USED_RESOLUTION,
        "feature": kind.required_feature,
        "kind": kind.value,
        "quantity": quantity,
        "scope": API_SCOPE,
        "idempotency_key": idempotency_key,
        "period_start": month_start(now),
        "day": now.astimezone(SHANGHAI).date(),
    }


# --- batches -----------------------------------------------------------------

MAX_BATCH_EVENTS = 500


@dataclass(frozen=True)
class UsageEvent:
    kind: UsageKind
    quantity: int
    idempotency_key: str
    bot_id: int | None = None


@dataclass(frozen=True)
class BatchResult:
    usage: UsageResult  # `replayed`: every event was counted before (the batch was retried)
    accepted: int  # events this call counted
    replayed: int  # events counted before (their keys were seen), not counted again


# A batch as one PostgreSQL statement: the events as arrays (`unnest`), the keys already
# recorded (one probe of the unique index per event), then the same writes as a single
# record, in the same lock order: the conditional upsert of the month counter by the sum
# of the new events (all of them fit, or none is written), the records, the rollup (one
# row per bot and kind). The statement's snapshot may predate a concurrent retry of the
# same keys that committed while this one waited for the counter: its records then
# conflict and fewer are inserted than counted (see `_write_batch_postgresql`).
_RECORD_BATCH = """
WITH events AS (
    SELECT * FROM unnest(%(kinds)s, %(quantities)s, %(bot_ids)s, %(keys)s)
        AS e(kind, quantity, bot_id, idempotency_key)
), seen AS (
    SELECT r.* FROM events CROSS JOIN LATERAL (
        SELECT id, idempotency_key, used_after, period_start FROM usage_records
        WHERE organization_id = %(organization_id)s AND idempotency_scope = %(scope)s
          AND idempotency_key = events.idempotency_key
        LIMIT 1  -- keeps the lookup a per-event probe of the unique index, whatever the stats
    ) AS r
), fresh AS (
    SELECT events.* FROM events
    WHERE NOT EXISTS (SELECT 1 FROM seen WHERE seen.idempotency_key = events.idempotency_key)
), total AS (
    SELECT count(*) AS events, COALESCE(sum(quantity), 0) AS quantity FROM fresh
), counter AS (
    INSERT INTO usage_counters AS c (organization_id, period_start, used)
    SELECT %(organization_id)s, %(period_start)s, total.quantity FROM total
    WHERE total.events > 0 AND (%(quota)s IS NULL OR total.quantity <= %(quota)s)
    ON CONFLICT (organization_id, period_start) DO UPDATE SET used = c.used + excluded.used
    WHERE %(quota)s IS NULL OR c.used + excluded.used <= %(quota)s
    RETURNING used
), record AS (
    INSERT INTO usage_records (organization_id, bot_id, api_key_id, kind, quantity,
        idempotency_scope, idempotency_key, period_start, used_after, created_at)
    SELECT %(organization_id)s, fresh.bot_id, %(api_key_id)s, fresh.kind, fresh.quantity,
        %(scope)s, fresh.idempotency_key, %(period_start)s, counter.used, %(now)s
    FROM fresh, counter
    ON CONFLICT (organization_id, idempotency_scope, idempotency_key) DO NOTHING
    RETURNING 1
), daily AS (
    INSERT INTO usage_daily AS d (organization_id, day, bot_id, kind, quantity)
    SELECT %(organization_id)s, %(day)s, COALESCE(fresh.bot_id, 0), fresh.kind, sum(fresh.quantity)
    FROM fresh, counter
    GROUP BY COALESCE(fresh.bot_id, 0), fresh.kind
    ON CONFLICT (organization_id, day, bot_id, kind) DO UPDATE
    SET quantity = d.quantity + excluded.quantity
)
SELECT total.events, total.quantity, (SELECT used FROM counter), (SELECT count(*) FROM record),
    latest.used_after, latest.period_start
FROM total LEFT JOIN (SELECT * FROM seen ORDER BY id DESC LIMIT 1) AS latest ON true
"""
RECORD_BATCH = PreparedStatement(
    "usage_record_batch",
    _RECORD_BATCH,
    {
        "organization_id": "integer",
        "scope": "text",
        "api_key_id": "integer",
        "quota": "bigint",
        "now": "timestamptz",
        "period_start": "timestamptz",
        "day": "date",
        "kinds": "text[]",
        "quantities": "integer[]",
        "bot_ids": "integer[]",
        "keys": "text[]",
    },
)


@dataclass(frozen=True)
class _Written:
    """What a batch's writes did: `used` is None when the new events did not fit."""

    new_events: int
    new_quantity: int
    used: int | None
    last_seen: tuple[int, datetime] | None  # (used_after, period_start) of the latest seen


def record_batch(
    organization_id: int,
    events: Sequence[UsageEvent],
    *,
    bound_bot_id: int | None = None,
    api_key_id: int | None = None,
    now: datetime | None = None,
) -> BatchResult:
    """Count a batch of events against the month's quota, all or nothing.

    Every event is checked first (its kind in the plan, its bot: an API key bound to a
    bot, `bound_bot_id`, records for that bot only); the first event that breaks a rule
    refuses the batch, naming its index. Events whose key was counted before are left
    out; the others are counted together if they all fit in what remains of the quota,
    and otherwise none is (429).
    """
    now = now or utcnow()
    terms = plan_terms(organization_id, now)
    bot_ids = _event_bots(organization_id, bound_bot_id, terms, events)
    period_start, period_end = month_start(now), next_month_start(now)
    parameters: dict[str, Any] = {
        "organization_id": organization_id,
        "scope": API_SCOPE,
        "api_key_id": api_key_id,
        "quota": terms.quota,
        "now": now,
        "period_start": period_start,
        "day": now.astimezone(SHANGHAI).date(),
        "kinds": [event.kind.value for event in events],
        "quantities": [event.quantity for event in events],
        "bot_ids": bot_ids,
        "keys": [event.idempotency_key for event in events],
    }
    write = (
        _write_batch_postgresql
        if db.session.connection().dialect.name == "postgresql"
        else _write_batch_portable
    )
    written = write(parameters)
    replayed = len(events) - written.new_events
    if written.new_events == 0:
        assert written.last_seen is not None
        used, first_period = written.last_seen
        usage = UsageResult(
            used, terms.quota, first_period, next_month_start(first_period), replayed=True
        )
        return BatchResult(usage, 0, replayed)
    if written.used is None:
        exceeded = _quota_exceeded(organization_id, terms.quota or 0, period_start, period_end)
        assert exceeded.usage is not None
        exceeded.message = _(
            "These events need %(needed)d messages, but %(remaining)d remain of this "
            "month's quota; nothing was counted.",
            needed=written.new_quantity,
            remaining=exceeded.usage.remaining or 0,
        )
        raise exceeded
    _notify_thresholds(
        organization_id,
        terms.quota,
        period_start,
        written.used - written.new_quantity,
        written.used,
    )
    return BatchResult(
        UsageResult(written.used, terms.quota, period_start, period_end),
        written.new_events,
        replayed,
    )


def _event_bots(
    organization_id: int, bound_bot_id: int | None, terms: PlanTerms, events: Sequence[UsageEvent]
) -> list[int | None]:
    """Each event's bot, once every event has passed the checks of a single record."""
    wanted = {event.bot_id or bound_bot_id for event in events} - {None}
    enabled: dict[int, bool] = {}
    if wanted:
        query = sa.select(Bot.id, Bot.is_enabled).where(
            Bot.organization_id == organization_id, Bot.id.in_(wanted)
        )
        enabled.update((bot_id, is_enabled) for bot_id, is_enabled in db.session.execute(query))
    bots = []
    for index, event in enumerate(events):
        try:
            _require_feature(terms, event.kind)
            bot_id = acting_bot_id(bound_bot_id, event.bot_id)
            if bot_id is not None and bot_id not in enabled:
                raise NotFound(_("Bot not found."), error="bot_not_found")
            if bot_id is not None and not enabled[bot_id]:
                raise Forbidden(_("This bot is disabled."), error="bot_disabled")
        except AppError as refused:
            field = "kind" if refused.error == "feature_not_in_plan" else "bot_id"
            refused.errors = {"events": {str(index): {field: [refused.message]}}}
            refused.message = _(
                "Event %(index)d: %(problem)s", index=index, problem=refused.message
            )
            raise
        bots.append(bot_id)
    return bots


def _write_batch_postgresql(parameters: dict[str, Any]) -> _Written:
    connection = db.session.connection()
    written = _run_batch_statement(connection, parameters)
    if written is None:
        # A concurrent call recorded some of these keys after this statement's snapshot was
        # taken. Again, with the counter locked first: every record of the month takes that
        # lock before its key, so the new snapshot sees all there will be.
        db.session.rollback()
        connection = db.session.connection()
        connection.execute(
            _CONSUME_QUOTA,  # of nothing, without a quota: it only locks the row
            {
                "organization_id": parameters["organization_id"],
                "period_start": parameters["period_start"],
                "quantity": 0,
                "quota": None,
            },
        )
        written = _run_batch_statement(connection, parameters)
    elif written.used is None and written.new_events:
        # Refused, with the same doubt about the snapshot; the refused upsert has locked
        # the counter, so a second look sees every key recorded for this month.
        written = _run_batch_statement(connection, parameters)
    if written is None:  # the same key recorded for another month at its very end
        raise Conflict(
            _("Another call is recording these events right now; retry."),
            error="concurrent_batch",
        )
    return written


def _run_batch_statement(connection: sa.Connection, parameters: dict[str, Any]) -> _Written | None:
    """What the statement did, or None if a concurrent call recorded some keys meanwhile."""
    row = RECORD_BATCH.run(connection, parameters).one()
    new_events, new_quantity, used, inserted, last_used, last_period = row
    if used is not None and inserted != new_events:
        return None
    last_seen = None if last_used is None else (last_used, last_period)
    return _Written(new_events, new_quantity, used, last_seen)


def _write_batch_portable(parameters: dict[str, Any]) -> _Written:
    """The same writes as statements SQLAlchemy runs anywhere, for SQLite (one writer at
    a time: no concurrent retry can slip in between)."""
    scope, organization_id = parameters["scope"], parameters["organization_id"]
    seen = db.session.execute(
        sa.select(UsageRecord.idempotency_key, UsageRecord.used_after, UsageRecord.period_start)
        .where(
            UsageRecord.organization_id == organization_id,
            UsageRecord.idempotency_scope == scope,
            UsageRecord.idempotency_key.in_(parameters["keys"]),
        )
        .order_by(UsageRecord.id)
    ).all()
    last_seen = (seen[-1].used_after, seen[-1].period_start) if seen else None
    seen_keys = {row.idempotency_key for row in seen}
    fresh = [
        (kind, quantity, bot_id, key)
        for kind, quantity, bot_id, key in zip(
            parameters["kinds"],
            parameters["quantities"],
            parameters["bot_ids"],
            parameters["keys"],
            strict=True,
        )
        if key not in seen_keys
    ]
    total = sum(quantity for _kind, quantity, _bot, _key in fresh)
    if not fresh:
        return _Written(0, 0, None, last_seen)
    used = db.session.scalar(
        _CONSUME_QUOTA,
        {
            "organization_id": organization_id,
            "period_start": parameters["period_start"],
            "quantity": total,
            "quota": parameters["quota"],
        },
    )
    if used is None:
        return _Written(len(fresh), total, None, last_seen)
    db.session.execute(
        sa.insert(UsageRecord),
        [
            {
                "organization_id": organization_id,
                "bot_id": bot_id,
                "api_key_id": parameters["api_key_id"],
                "kind": kind,
                "quantity": quantity,
                "idempotency_scope": scope,
                "idempotency_key": key,
                "period_start": parameters["period_start"],
                "used_after": used,
                "created_at": parameters["now"],
            }
            for kind, quantity, bot_id, key in fresh
        ],
    )
    daily: dict[tuple[int, str], int] = defaultdict(int)
    for kind, quantity, bot_id, _key in fresh:
        daily[bot_id or 0, kind] += quantity
    db.session.execute(
        _ROLL_UP,
        [
            {
                "organization_id": organization_id,
                "day": parameters["day"],
                "bot_id": bot_id,
                "kind": kind,
                "quantity": quantity,
            }
            for (bot_id, kind), quantity in daily.items()
        ],
    )
    return _Written(len(fresh), total, used, last_seen)


def _replay(
    organization_id: int, idempotency_scope: str, idempotency_key: str | None, quota: int | None
) -> UsageResult | None:
    """The first call's result for a key already recorded, or None."""
    record = db.session.scalar(
        sa.select(UsageRecord).where(
            UsageRecord.organization_id == organization_id,
            UsageRecord.idempotency_scope == idempotency_scope,
            UsageRecord.idempotency_key == idempotency_key,
        )
    )
    if record is None:
        return None
    return UsageResult(
        record.used_after,
        quota,
        record.period_start,
        next_month_start(record.period_start),
        replayed=True,
    )


def _notify_thresholds(
    organization_id: int, limit: int | None, period_start: datetime, before: int, after: int
) -> None:
    if not limit:
        return
    for percent in QUOTA_THRESHOLDS:
        mark = limit * percent / 100
        if before < mark <= after and claim_notice(
            organization_id, f"quota_{percent}", period_start.isoformat()
        ):
            organization = db.session.get(Organization, organization_id)
            assert organization is not None
            for email in db.session.scalars(OrganizationMember.manager_emails(organization_id)):
                send_mail(
                    email,
                    _(
                        "%(org)s has used %(percent)d%% of its monthly messages",
                        org=organization.name,
                        percent=percent,
                    ),
                    _(
                        "%(org)s has used %(used)d of %(limit)d messages this month. "
                        "Upgrade your plan to avoid interruptions:\n%(link)s",
                        org=organization.name,
                        used=after,
                        limit=limit,
                        link=external_url("billing.plans"),
                    ),
                )


# --- reading ---------------------------------------------------------------


@dataclass(frozen=True)
class UsageStats:
    plan: Plan
    period_start: datetime
    period_end: datetime
    used: int
    by_kind: dict[str, int]
    bots_used: int

    @property
    def limit(self) -> int | None:
        return self.plan.monthly_message_quota

    @property
    def remaining(self) -> int | None:
        return None if self.limit is None else max(self.limit - self.used, 0)

    @property
    def percent_used(self) -> int | None:
        return None if not self.limit else min(100, self.used * 100 // self.limit)


def usage_stats(organization_id: int, now: datetime | None = None) -> UsageStats:
    """The current calendar month: the counter plus a per-kind sum over at most 31 rollup days."""
    now = now or utcnow()
    period_start, period_end = month_start(now), next_month_start(now)
    used = _month_used(organization_id, period_start)
    by_kind = {kind.value: 0 for kind in UsageKind}
    rows = db.session.execute(
        sa.select(UsageDaily.kind, sa.func.sum(UsageDaily.quantity))
        .where(
            UsageDaily.organization_id == organization_id,
            UsageDaily.day >= period_start.astimezone(SHANGHAI).date(),
            UsageDaily.day < period_end.astimezone(SHANGHAI).date(),
        )
        .group_by(UsageDaily.kind)
    )
    for kind, total in rows:
        by_kind[kind] = int(total)
    return UsageStats(
        plan=plan_of(organization_id, now),
        period_start=period_start,
        period_end=period_end,
        used=used,
        by_kind=by_kind,
        bots_used=bot_count(organization_id),
    )


@dataclass(frozen=True)
class UsagePoint:
    period: date  # the day, or the first day of the month
    by_kind: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.by_kind.values())


def usage_history(
    organization_id: int,
    start: date,
    end: date,
    granularity: str = "day",
    bot_id: int | None = None,
) -> list[UsagePoint]:
    """Every day (or month) from `start` to `end` inclusive, zeros included, from the rollup."""
    if start > end:
        raise AppError(_("`from` must not be after `to`."), error="validation_error", status=422)
    if granularity == "month":
        start = start.replace(day=1)
        if (end.year - start.year) * 12 + end.month - start.month >= MAX_HISTORY_MONTHS:
            raise AppError(
                _("Ask for at most %(n)d months.", n=MAX_HISTORY_MONTHS),
                error="validation_error",
                status=422,
            )
    elif (end - start).days >= MAX_HISTORY_DAYS:
        raise AppError(
            _("Ask for at most %(n)d days.", n=MAX_HISTORY_DAYS),
            error="validation_error",
            status=422,
        )
    if bot_id is not None:
        bot_of(organization_id, bot_id)
    query = (
        sa.select(UsageDaily.day, UsageDaily.kind, sa.func.sum(UsageDaily.quantity))
        .where(
            UsageDaily.organization_id == organization_id,
            UsageDaily.day >= start,
            UsageDaily.day <= end,
        )
        .group_by(UsageDaily.day, UsageDaily.kind)
    )
    if bot_id is not None:
        query = query.where(UsageDaily.bot_id == bot_id)
    totals: dict[date, dict[str, int]] = defaultdict(lambda: {k.value: 0 for k in UsageKind})
    for day, kind, quantity in db.session.execute(query):
        bucket = day.replace(day=1) if granularity == "month" else day
        totals[bucket][kind] += int(quantity)
    return [
        UsagePoint(bucket, dict(totals[bucket])) for bucket in _buckets(start, end, granularity)
    ]


def _buckets(start: date, end: date, granularity: str) -> list[date]:
    """Never steps past `end` (stepping past 9999-12-31 would overflow)."""
    if granularity == "month":
        months = (end.year - start.year) * 12 + end.month - start.month
        index = start.year * 12 + start.month - 1
        return [date((index + i) // 12, (index + i) % 12 + 1, 1) for i in range(months + 1)]
    return [start + timedelta(days=i) for i in range((end - start).days + 1)]
