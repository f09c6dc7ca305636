"""URL converters shared by every route, portal and API."""

from __future__ import annotations

from flask import Flask
from werkzeug.routing import IntegerConverter


class AsciiIntegerConverter(IntegerConverter):
    """Werkzeug's `int`, ASCII digits only.

    Werkzeug matches `\\d+`, which in Python's `re` takes any Unicode digit, and
    `int("１")` is 1: `/bots/１` would reach bot 1 under a second URL.
    """

    regex = r"[0-9]+"


def register_converters(app: Flask) -> None:
    """Replace `int` for every route, before any is added (the API documents it as an integer:
    webapp.extensions)."""
    app.url_map.converters["int"] = AsciiIntegerConverter
