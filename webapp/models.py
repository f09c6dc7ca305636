"""Imports every feature's models so that SQLAlchemy and Alembic see the whole schema."""

from webapp.auth.models import AuthSession, User
from webapp.billing.models import Order, Plan, SentNotice, Subscription
from webapp.bots.models import ApiKey, Bot
from webapp.orgs.models import Invitation, Organization, OrganizationMember
from webapp.payments.models import PaymentEvent, ProviderOrder
from webapp.usage.models import UsageCounter, UsageDaily, UsageRecord

__all__ = [
    "ApiKey",
    "AuthSession",
    "Bot",
    "Invitation",
    "Order",
    "Organization",
    "OrganizationMember",
    "PaymentEvent",
    "Plan",
    "ProviderOrder",
    "SentNotice",
    "Subscription",
    "UsageCounter",
    "UsageDaily",
    "UsageRecord",
    "User",
]
