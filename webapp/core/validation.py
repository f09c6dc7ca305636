"""What text the application accepts, decided once for every request.

The rule: no text field holds Unicode control or format characters (categories
Cc and Cf: NUL, escape codes, zero-width and bidirectional controls, ...) nor
lone surrogates (Cs, which are not text at all), except tab, line feed and
carriage return (browsers send a textarea's line breaks as CR LF) and the zero-width
(non-)joiners, which are part of emoji and some scripts. PostgreSQL refuses NUL,
spreadsheets refuse the C0 controls (the FAQ's XLSX export failed on them), and
bidirectional controls disguise text in the portal. Besides, a JSON body nests at
most `MAX_JSON_DEPTH` levels: Python's parser otherwise recurses until it fails.

`check_request` applies both to every request (query string, form fields and
file names, JSON body) before any view or parser sees it; the FAQ importer
applies `refused_character` to the cells of the files it reads. Provider callbacks
(payment notifies, the sandbox's gateways) are exempt: they are verified by their
signatures and answered in the provider's own format.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from typing import Any

from flask import request
from flask_babel import gettext as _
from marshmallow import fields

from webapp.errors import AppError, wants_json

MAX_JSON_DEPTH = 32
ALLOWED_CONTROLS = frozenset("\t\n\r\u200c\u200d")
REFUSED_CATEGORIES = frozenset({"Cc", "Cf", "Cs"})
# Strings in a JSON text (with their escapes), removed before counting brackets.
JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
INNERMOST_PAIRS = (b"[]", b"{}", b"[}", b"{]")  # a mismatched pair is the parser's to refuse


def refused_character(text: str) -> str | None:
    """The first character of `text` the rule refuses, or None."""
    for character in text:
        if (
            not character.isprintable()  # a fast pre-filter: printable is never refused
            and character not in ALLOWED_CONTROLS
            and unicodedata.category(character) in REFUSED_CATEGORIES
        ):
            return character
    return None


def refused_message(character: str) -> str:
    return _(
        "Contains a control character (U+%(code)s) that is not allowed.",
        code=f"{ord(character):04X}",
    )


def json_too_deep(body: bytes, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether the brackets of a JSON text nest deeper than `limit`.

    Linear passes in C: strings are cut out, then each pass removes the innermost
    pairs (one level). Brackets that do not pair are left to the parser to refuse,
    unless they open more levels than `limit`.
    """
    brackets = JSON_STRING.sub(b"", body).translate(None, NOT_BRACKETS)
    for level in range(limit + 1):
        if not brackets:
            return False
        shorter = brackets
        for pair in INNERMOST_PAIRS:
            shorter = shorter.replace(pair, b"")
        if shorter == brackets:  # closers first, then openers: count those still open
            opened = len(brackets.lstrip(b"]}"))
            return level + opened > limit
        brackets = shorter
    return True


def _strings(value: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], str]]:
    """(path, text) of every key and string in a parsed JSON value."""
    if isinstance(value, str):
        yield path or ("_body",), value
    elif isinstance(value, dict):
        for key, item in value.items():
            inner = (*path, str(key))
            yield inner, str(key)
            yield from _strings(item, inner)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _strings(item, (*path, str(index)))


def _request_texts() -> Iterator[tuple[str, tuple[str, ...], str]]:
    """(location, field path, text) of every piece of text the request carries."""
    for name, value in request.args.items(multi=True):
        yield "query", (name,), name
        yield "query", (name,), value
    if request.is_json:
        body = request.get_json(silent=True)
        for path, text in _strings(body):
            yield "json", path, text
    elif request.mimetype in ("application/x-www-form-urlencoded", "multipart/form-data"):
        for name, value in request.form.items(multi=True):
            yield "form", (name,), value
        for name, file in request.files.items(multi=True):
            yield "files", (name,), file.filename or ""


def _add_error(errors: dict[str, Any], path: tuple[str, ...], message: str) -> None:
    """Nest `message` under `path`, as marshmallow nests field errors (a list position is a
    key); a field already refused keeps its first message."""
    node = errors
    for part in path[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            return
        node = child
    node.setdefault(path[-1], [message])


def _is_provider_callback() -> bool:
    path = request.path
    return path.startswith("/sandbox/") or (
        path.startswith("/api/v1/payments/") and path.endswith("notify")
    )


def check_request() -> Any:
    """Refuse a request with a too deeply nested JSON body or a refused character (see above).

    The API answers 400 `json_too_deep` or 422 `validation_error` (the field in `errors`),
    the portal its 400 page.
    """
    if _is_provider_callback():
        return None
    if request.is_json and json_too_deep(request.get_data(cache=True)):
        raise AppError(
            _("The JSON body nests more than %(n)d levels.", n=MAX_JSON_DEPTH),
            error="json_too_deep",
            status=400,
        )
    errors: dict[str, Any] = {}
    for location, path, text in _request_texts():
        character = refused_character(text)
        if character is not None:
            _add_error(errors, (location, *path), refused_message(character))
    if not errors:
        return None
    if not wants_json():
        raise AppError(_("The form contains characters that are not allowed."), status=400)
    raise AppError(
        _("The request contains characters that are not allowed."),
        error="validation_error",
        status=422,
        errors=errors,
    )


class Text(fields.String):
    """A text field under the rule above (also where a schema loads data outside a request)."""

    default_error_messages = {"refused": "Contains a character that is not allowed."}

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        text = super()._deserialize(value, attr, data, **kwargs)
        character = refused_character(text)
        if character is not None:
            raise self.make_error("refused")
        return text


class Email(Text, fields.Email):
    """An email address under the rule above."""
