"""Payment jobs, run by the worker on a schedule (see `worker.py`); each order commits alone.

Both are idempotent: an order that is no longer pending is skipped. The polling
job that follows each new provider order is `services.poll_order`.
"""

from __future__ import annotations

import logging

from webapp.billing.models import OrderStatus
from webapp.extensions import db
from webapp.payments import services

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
