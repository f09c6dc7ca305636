"""Portal pages for billing."""

from __future__ import annotations

from flask import Blueprint
from flask_login import login_required

bp = Blueprint("billing", __name__)


@bp.get("/plans")
def plans() -> str:
    return ""


@bp.get("/billing")
@login_required
def index() -> str:
    return ""
