"""/api/v1/subscriptions: plans (public), the organization's subscription and its orders.

Everything but the plan list is for people (access JWT), never for API keys: a
valid API key gets 401 `api_key_not_allowed`, as on every people's endpoint.
The organization comes from `X-Organization-ID` (or `?organization_id=`),
defaulting to the caller's only one. Reading is open to every member; what
costs or changes money (upgrade, cancel, resume) is for owners and admins.
"""

from __future__ import annotations

from typing import Any

from flask.views import MethodView
from flask_smorest import Blueprint
from flask_smorest.pagination import PaginationParameters

from webapp.api import PEOPLE_DECORATORS, PEOPLE_IN_ORGANIZATION, person_membership
from webapp.billing import services
from webapp.billing.models import Plan, Subscription
from webapp.billing.schemas import (
    OrderSchema,
    PlanSchema,
    SubscriptionSchema,
    UpgradeSchema,
    order_view,
)
from webapp.core.pagination import paginate
from webapp.db import utcnow
from webapp.extensions import db

blp = Blueprint(
    "billing_api",
    __name__,
    url_prefix="/api/v1/subscriptions",
    description="Plans, the organization's subscription and its orders",
)


@blp.route("/plans")
class Plans(MethodView):
    @blp.response(200, PlanSchema(many=True))
    def get(self) -> list[Plan]:
        """The plans on offer, with prices in fen, limits and features"""
        return services.public_plans()


@blp.route("/current")
class Current(MethodView):
    decorators = PEOPLE_DECORATORS

    @blp.response(200, SubscriptionSchema)
    @blp.doc(**PEOPLE_IN_ORGANIZATION)
    def get(self) -> Subscription:
        """The organization's plan and paid period"""
        return services.subscription_of(person_membership().organization_id)


@blp.route("/upgrade")
class Upgrade(MethodView):
    decorators = PEOPLE_DECORATORS

    @blp.arguments(UpgradeSchema)
    @blp.response(201, OrderSchema)
    @blp.doc(**PEOPLE_IN_ORGANIZATION)
    def post(self, data: dict[str, Any]) -> dict[str, Any]:
        """Order months of a plan (owner or admin): a pending order priced by the server

        Same plan: extends the period. Higher plan: starts when paid, crediting the
        unused part of the current period. Lower plan: starts when the period ends.
        """
        now = utcnow()
        order = services.create_order(person_membership(), data["plan"], data["months"], now)
        db.session.commit()
        return order_view(order, now)


@blp.route("/cancel")
class Cancel(MethodView):
    decorators = PEOPLE_DECORATORS

    @blp.response(200, SubscriptionSchema)
    @blp.doc(**PEOPLE_IN_ORGANIZATION)
    def post(self) -> Subscription:
        """Fall back to free when the paid period ends (owner or admin)"""
        subscription = services.cancel(person_membership())
        db.session.commit()
        return subscription


@blp.route("/resume")
class Resume(MethodView):
    decorators = PEOPLE_DECORATORS

    @blp.response(200, SubscriptionSchema)
    @blp.doc(**PEOPLE_IN_ORGANIZATION)
    def post(self) -> Subscription:
        """Undo a cancellation while the paid period lasts (owner or admin)"""
        subscription = services.resume(person_membership())
        db.session.commit()
        return subscription


@blp.route("/orders")
class Orders(MethodView):
    decorators = PEOPLE_DECORATORS

    @blp.response(200, OrderSchema(many=True))
    @blp.paginate()
    @blp.doc(**PEOPLE_IN_ORGANIZATION)
    def get(self, pagination_parameters: PaginationParameters) -> list[dict[str, Any]]:
        """The organization's orders, newest first"""
        organization_id = person_membership().organization_id
        orders = paginate(services.orders_of(organization_id), pagination_parameters)
        now = utcnow()
        return [order_view(order, now) for order in orders]


@blp.route("/orders/<int:order_id>")
class OrderDetail(MethodView):
    decorators = PEOPLE_DECORATORS

    @blp.response(200, OrderSchema)
    @blp.doc(**PEOPLE_IN_ORGANIZATION)
    def get(self, order_id: int) -> dict[str, Any]:
        """One order with its amount breakdown and status"""
        return order_view(services.order_of(person_membership().organization_id, order_id))
