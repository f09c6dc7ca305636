"""Marshmallow fields for text that reaches the database or the password hasher.

JSON can carry characters PostgreSQL refuses (NUL) and lone surrogates that
cannot be encoded as UTF-8; either used to end in a 500. These fields answer
422 instead.
"""

from __future__ import annotations

from typing import Any

from marshmallow import fields


class Text(fields.String):
    """A string without NUL characters or lone surrogates."""

    default_error_messages = {
        "nul": "Must not contain NUL characters.",
        "encoding": "Must be valid Unicode text.",
    }

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        text = super()._deserialize(value, attr, data, **kwargs)
        if "\x00" in text:
            raise self.make_error("nul")
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise self.make_error("encoding") from None
        return text


class Email(Text, fields.Email):
    """An email address without NUL characters or lone surrogates."""
