"""Payment jobs, run by the worker on a schedule (see `worker.py`); each order or refund
commits alone.

All are idempotent: an order or refund that is no longer pending is skipped, and the
bill differences of a day are mailed once. The polling jobs that follow each new
provider order and each new refund are `services.poll_order` and `refunds.poll_refund`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from datetime import date, timedelta

from flask import current_app

from webapp.billing.models import OrderStatus
from webapp.core.jobs import redis_connection
from webapp.core.mail import send_mail
from webapp.db import utcnow
from webapp.extensions import db
from webapp.payments import bills, refunds, services
from webapp.payments.models import RefundStatus

log = logging.getLogger(__name__)


def close_expired_orders() -> dict[str, int]:
    """Close pending orders past `expires_at`, at the providers first (every few minutes).

    An order a provider reports paid meanwhile is fulfilled instead. An order that
    fails (provider or database trouble) is left pending for the next run.
    """
    return _each_alone(
        services.pending_order_ids(expired_only=True),
        lambda order_id: services.close_if_expired(order_id).status,
        {OrderStatus.CLOSED: "closed", OrderStatus.PAID: "fulfilled"},
        errors="failed",
        failure="could not close expired order %s",
        summary="expired orders: %s",
    )


def reconcile_pending_orders() -> dict[str, int]:
    """Ask the providers about every pending order; fulfil the paid, close the expired (daily)."""
    return services.reconcile_pending_orders()


def poll_pending_refunds() -> dict[str, int]:
    """Ask the channels about refunds still pending after a minute (every 10 minutes).

    A refund the channel never received is sent again under the same number.
    """
    return _each_alone(
        refunds.pending_refund_ids(before=utcnow() - timedelta(minutes=1)),
        lambda refund_id: refunds.check_refund(refund_id).status,
        {RefundStatus.SUCCEEDED: "succeeded", RefundStatus.FAILED: "failed"},
        errors="errors",
        failure="could not check refund %s",
        summary="pending refunds: %s",
    )


def _each_alone(
    ids: Iterable[int],
    step: Callable[[int], str],
    outcomes: dict[str, str],
    *,
    errors: str,
    failure: str,
    summary: str,
) -> dict[str, int]:
    """Run `step` on each id and commit it alone; one that raises is rolled back, logged,
    counted under `errors` and left for the next run. Counts "checked", the statuses
    `step` returns (named by `outcomes`) and the errors."""
    counts = {"checked": 0, **dict.fromkeys(outcomes.values(), 0), errors: 0}
    for each in ids:
        counts["checked"] += 1
        try:
            status = step(each)
            db.session.commit()
        except Exception:
            db.session.rollback()
            log.exception(failure, each)
            counts[errors] += 1
            continue
        if status in outcomes:
            counts[outcomes[status]] += 1
    if counts["checked"]:
        log.info(summary, counts)
    return counts


def reconcile_bills(day: date | None = None) -> list[bills.Difference]:
    """Compare the channels' bills of the latest billed day with our records (daily) and
    mail the differences to OPERATOR_EMAIL, once per day."""
    day = day or bills.latest_billed_day()
    differences = bills.reconcile(day)
    operator = current_app.config["OPERATOR_EMAIL"]
    if differences and operator and _first_report(day):
        send_mail(
            operator,
            f"Payment bills of {day.isoformat()}: {len(differences)} difference(s)",
            "\n".join(difference.describe() for difference in differences)
            + "\n\nCheck with: flask payments bills --date "
            + day.isoformat(),
        )
    db.session.commit()
    log.info("bills of %s: %s difference(s)", day, len(differences))
    return differences


def _first_report(day: date) -> bool:
    """Whether this is the first report of the day's differences (a restarted worker
    runs the daily jobs again)."""
    key = f"payments:bills-reported:{day.isoformat()}"
    return bool(
        redis_connection().set(key, "1", nx=True, ex=int(timedelta(days=7).total_seconds()))
    )
