"""/api/v1/usage: metering and usage statistics."""

from __future__ import annotations

from flask_smorest import Blueprint

blp = Blueprint("usage_api", __name__, url_prefix="/api/v1/usage", description="Usage and quotas")
