"""Outgoing mail. Without an SMTP server configured, mail goes to the log."""

from __future__ import annotations

import logging

from flask import current_app
from flask_mail import Message

from webapp.extensions import mail

log = logging.getLogger(__name__)


def send_mail(to: str, subject: str, body: str) -> None:
    if not current_app.config["MAIL_SERVER"] and not current_app.testing:
        log.warning("MAIL_SERVER is not set; mail to %s not sent:\n%s\n%s", to, subject, body)
        return
    mail.send(Message(subject=subject, recipients=[to], body=body))


def external_url(path: str) -> str:
    """An absolute link for mails, built on BASE_URL (requests may come through proxies)."""
    return current_app.config["BASE_URL"] + path
