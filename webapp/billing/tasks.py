"""Billing jobs, run by the worker on a schedule (see `worker.py`); each commits once.

Both are idempotent: a second run finds nothing left to do and mails nobody twice.
"""

from __future__ import annotations

from webapp.billing import services
from webapp.extensions import db


def end_finished_periods() -> int:
    """Start prepaid scheduled plans, or fall back to free, where a paid period has ended."""
    changed = services.end_finished_periods()
    db.session.commit()
    return changed


def send_renewal_reminders() -> int:
    """Mail owners and admins 7 days and 1 day before a paid period ends (once each)."""
    sent = services.send_renewal_reminders()
    db.session.commit()
    return sent
