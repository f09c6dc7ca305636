"""The payment audit trail: everything a provider said or was asked, in `payment_events`."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from webapp.billing.models import Order
from webapp.extensions import db
from webapp.payments.models import PaymentEvent

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Verdict:
    """What a provider's message came to: accepted (genuine and consistent with our
    records: the provider is told to stop resending) and the outcome recorded."""

    accepted: bool
    outcome: str
    reason: str = ""


def record_event(
    channel: str,
    source: str,
    outcome: str,
    *,
    order: Order | None = None,
    out_trade_no: str | None = None,
    out_refund_no: str | None = None,
    verified: bool = False,
    reason: str = "",
    raw: str = "",
    details: dict[str, Any] | None = None,
) -> PaymentEvent:
    event = PaymentEvent(
        order_id=order.id if order is not None else None,
        channel=channel,
        source=source,
        out_trade_no=out_trade_no or (order.out_trade_no if order is not None else None),
        out_refund_no=out_refund_no,
        verified=verified,
        outcome=outcome,
        # PostgreSQL text cannot hold NUL, which anyone can post to a notify endpoint.
        reason=reason[:255].replace("\x00", "\ufffd"),
        raw=raw.replace("\x00", "\ufffd"),
        details=details,
    )
    db.session.add(event)
    if outcome == "rejected":
        log.warning("%s %s rejected for %s: %s", channel, source, out_trade_no, reason)
    return event
