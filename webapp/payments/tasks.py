"""Payment jobs, run by the worker on a schedule (see `worker.py`); each order or refund
commits alone.

All are idempotent: an order or refund that is no longer pending is skipped, and the
bill differences of a day are mailed once. The polling jobs that follow each new
provider order and each new refund are `services.poll_order` and `refunds.poll_refund`.
"""

from __future__ import annotations

import logging
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
    counts = {"checked": 0, "closed": 0, "fulfilled": 0, "failed": 0}
    for order_id in services.pending_order_ids(expired_only=True):
        counts["checked"] += 1
        try:
            order = services.close_if_expired(order_id)
            status = order.status
            db.session.commit()
        except Exception:
            db.session.rollback()
            log.exception("could not close expired order %s", order_id)
            counts["failed"] += 1
            continue
        counts["closed"] += status == OrderStatus.CLOSED
        counts["fulfilled"] += status == OrderStatus.PAID
    if counts["checked"]:
        log.info("expired orders: %s", counts)
    return counts


def reconcile_pending_orders() -> dict[str, int]:
    """Ask the providers about every pending order; fulfil the paid, close the expired (daily)."""
    return services.reconcile_pending_orders()


def poll_pending_refunds() -> dict[str, int]:
    """Ask the channels about refunds still pending after a minute (every 10 minutes).

    A refund the channel never received is sent again under the same number.
    """
    counts = {"checked": 0, "succeeded": 0, "failed": 0, "errors": 0}
    for refund_id in refunds.pending_refund_ids(before=utcnow() - timedelta(minutes=1)):
        counts["checked"] += 1
        try:
            status = refunds.check_refund(refund_id).status
            db.session.commit()
        except Exception:
            db.session.rollback()
            log.exception("could not check refund %s", refund_id)
            counts["errors"] += 1
            continue
        counts["succeeded"] += status == RefundStatus.SUCCEEDED
        counts["failed"] += status == RefundStatus.FAILED
    if counts["checked"]:
        log.info("pending refunds: %s", counts)
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
