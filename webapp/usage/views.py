"""Portal pages for usage."""

from __future__ import annotations

from flask import Blueprint
from flask_login import login_required

bp = Blueprint("usage", __name__)


@bp.get("/usage")
@login_required
def index() -> str:
    return ""
