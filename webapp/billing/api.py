"""/api/v1/subscriptions: plans (public)."""

from __future__ import annotations

from flask.views import MethodView
from flask_smorest import Blueprint

from webapp.billing import services
from webapp.billing.models import Plan
from webapp.billing.schemas import PlanSchema

blp = Blueprint(
    "billing_api",
    __name__,
    url_prefix="/api/v1/subscriptions",
    description="Plans and subscriptions",
)


@blp.route("/plans")
class Plans(MethodView):
    @blp.response(200, PlanSchema(many=True))
    def get(self) -> list[Plan]:
        """The plans on offer, with prices in fen, limits and features"""
        return services.public_plans()
