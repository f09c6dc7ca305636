"""Imports every feature's models so that SQLAlchemy and Alembic see the whole schema."""

from webapp.auth.models import AuthSession, User
from webapp.billing.models import Order, Plan, SentNotice, Subscription
from webapp.bots.models import ApiKey, Bot
from webapp.conversations.models import Attachment, Conversation, Message
from webapp.invoices.models import InvoiceRequest
from webapp.kb.models import FaqEntry
from webapp.learning.models import LearningItem
from webapp.orgs.models import Invitation, Organization, OrganizationMember
from webapp.payments.models import Payment, PaymentEvent, ProviderOrder, Refund
from webapp.usage.models import UsageCounter, UsageDaily, UsageRecord

__all__ = [
    "ApiKey",
    "Attachment",
    "AuthSession",
    "Bot",
    "Conversation",
    "FaqEntry",
    "Invitation",
    "InvoiceRequest",
    "LearningItem",
    "Message",
    "Order",
    "Organization",
    "OrganizationMember",
    "Payment",
    "PaymentEvent",
    "Plan",
    "ProviderOrder",
    "Refund",
    "SentNotice",
    "Subscription",
    "UsageCounter",
    "UsageDaily",
    "UsageRecord",
    "User",
]
