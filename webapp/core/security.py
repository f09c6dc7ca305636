"""Small security helpers shared by the features."""

from __future__ import annotations

import hashlib
import secrets
from urllib.parse import urlsplit


def new_token() -> str:
    return secrets.token_urlsafe(32)


def token_digest(token: str) -> str:
    """What we store for a bearer secret: enough to find it, useless if leaked."""
    return hashlib.sha256(token.encode()).hexdigest()


def is_safe_next_url(target: str | None) -> bool:
    """Only same-site paths (`/dashboard`), never `//evil.com` or `https://evil.com`."""
    if not target or not target.startswith("/") or target.startswith("//"):
        return False
    if "\\" in target or any(ord(c) < 32 for c in target):
        return False
    parts = urlsplit(target)
    return not parts.scheme and not parts.netloc


def safe_next_url(target: str | None, fallback: str) -> str:
    return target if target is not None and is_safe_next_url(target) else fallback
