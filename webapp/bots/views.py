"""Portal pages for bots."""

from __future__ import annotations

from flask import Blueprint
from flask_login import login_required

bp = Blueprint("bots", __name__)


@bp.get("/bots")
@login_required
def index() -> str:
    return ""
