"""/api/v1/bots and /api/v1/api-keys."""

from __future__ import annotations

from flask_smorest import Blueprint

blp = Blueprint("bots_api", __name__, url_prefix="/api/v1", description="Bots and API keys")
