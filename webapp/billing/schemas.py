from datetime import datetime
from typing import Any

from marshmallow import Schema, fields, validate

from webapp.billing import services
from webapp.billing.models import Order
from webapp.billing.services import MAX_MONTHS_PER_ORDER
from webapp.core.validation import Text


class PlanLimitsSchema(Schema):
    monthly_messages = fields.Integer(allow_none=True, metadata={"description": "null = unlimited"})
    bots = fields.Integer(allow_none=True, metadata={"description": "null = unlimited"})


class PlanSchema(Schema):
    code = fields.String()
    name = fields.String()
    name_en = fields.String()
    price_fen = fields.Integer()
    currency = fields.String()
    limits = fields.Nested(PlanLimitsSchema)
    features = fields.List(fields.String())


class PlanRefSchema(Schema):
    code = fields.String()
    name = fields.String()
    name_en = fields.String()


class SubscriptionSchema(Schema):
    organization_id = fields.Integer()
    plan = fields.Nested(PlanSchema)
    status = fields.String()
    current_period_start = fields.AwareDateTime()
    current_period_end = fields.AwareDateTime(
        allow_none=True, metadata={"description": "null on the free plan, which never ends"}
    )
    cancel_at_period_end = fields.Boolean()
    scheduled_plan = fields.Nested(
        PlanRefSchema,
        allow_none=True,
        metadata={"description": "A prepaid lower plan that starts when the period ends"},
    )
    scheduled_months = fields.Integer(allow_none=True)


class UpgradeSchema(Schema):
    plan = Text(required=True, validate=validate.Length(min=1, max=32))
    months = fields.Integer(
        required=True, strict=True, validate=validate.Range(min=1, max=MAX_MONTHS_PER_ORDER)
    )


class PeriodSchema(Schema):
    start = fields.AwareDateTime()
    end = fields.AwareDateTime()


class OrderSchema(Schema):
    id = fields.Integer()
    organization_id = fields.Integer()
    kind = fields.String(metadata={"description": "new, renewal, upgrade, downgrade or grant"})
    plan = fields.Nested(PlanRefSchema)
    months = fields.Integer()
    list_price_fen = fields.Integer(metadata={"description": "Plan price × months"})
    credit_fen = fields.Integer(
        metadata={"description": "Unused part of the current period (upgrades)"}
    )
    amount_fen = fields.Integer(metadata={"description": "To pay: list_price_fen - credit_fen"})
    currency = fields.String()
    status = fields.String(metadata={"description": "pending, paid or closed"})
    channel = fields.String(allow_none=True)
    out_trade_no = fields.String()
    created_at = fields.AwareDateTime()
    expires_at = fields.AwareDateTime()
    paid_at = fields.AwareDateTime(allow_none=True)
    closed_at = fields.AwareDateTime(allow_none=True)
    period = fields.Nested(
        PeriodSchema,
        allow_none=True,
        metadata={"description": "The period a pending order buys if paid now; null once settled"},
    )


ORDER_FIELDS = tuple(name for name in OrderSchema().fields if name != "period")


def order_view(order: Order, now: datetime | None = None) -> dict[str, Any]:
    """An order as `OrderSchema` shows it, with the period it buys if paid now."""
    view = {name: getattr(order, name) for name in ORDER_FIELDS}
    period = services.period_if_paid(order, now)
    view["period"] = {"start": period[0], "end": period[1]} if period else None
    return view
