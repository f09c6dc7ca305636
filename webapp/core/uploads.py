"""File uploads above the app's body limit, for the few endpoints that take them.

`MAX_CONTENT_LENGTH` (1 MB) guards every other request; an endpoint that takes a
file raises the limit for its own requests only, before anything reads the form
(CSRF does, in `before_request`; a blueprint's URL value preprocessor runs earlier).
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, request

MULTIPART_OVERHEAD = 64 * 1024  # boundaries, headers and the other form fields


def allow_uploads(blueprint: Blueprint, endpoints: set[str], max_file_bytes: int) -> None:
    """Let POSTs to these endpoints (names within the blueprint) carry one such file."""
    names = {f"{blueprint.name}.{endpoint}" for endpoint in endpoints}

    @blueprint.url_value_preprocessor
    def _raise_body_limit(endpoint: str | None, _values: dict[str, Any] | None) -> None:
        if endpoint in names and request.method == "POST":
            request.max_content_length = max_file_bytes + MULTIPART_OVERHEAD
