"""Outgoing mail, sent by a job after the request commits.

Without an SMTP server configured (development), mails are written to the log
so that reset and invitation links can be followed.
"""

from __future__ import annotations

import logging

from flask import current_app
from flask_mail import Message

from webapp.core.jobs import enqueue_after_commit
from webapp.extensions import mail

log = logging.getLogger(__name__)


def send_mail(to: str, subject: str, body: str) -> None:
    """Send once the current transaction commits (nothing is sent if it rolls back)."""
    enqueue_after_commit(deliver_mail, to, subject, body)


def deliver_mail(to: str, subject: str, body: str) -> None:
    """The job: hand the mail to SMTP, or to the log when no SMTP server is configured."""
    config = current_app.config
    if not config["MAIL_SERVER"] and not config.get("MAIL_SUPPRESS_SEND"):
        if config["APP_ENV"] == "production":
            log.error("MAIL_SERVER is not set; a mail to %s was dropped", to)
        else:
            log.warning("MAIL_SERVER is not set; mail to %s:\n%s\n\n%s", to, subject, body)
        return
    mail.send(Message(subject=subject, recipients=[to], body=body))


def external_url(endpoint: str, **values: object) -> str:
    """An absolute link for mails, on BASE_URL: requests may come through proxies, and
    jobs have no request at all."""
    path = current_app.url_map.bind("").build(endpoint, values)
    return current_app.config["BASE_URL"] + path
