"""Imports every feature's models so that SQLAlchemy and Alembic see the whole schema."""

from webapp.auth.models import AuthSession, User
from webapp.billing.models import Order, Plan, SentNotice, Subscription
from webapp.bots.models import ApiKey, Bot
from webapp.conversations.models import Attachment, Conversation, Message
from webapp.kb.models import FaqEntry
from webapp.learning.models import LearningItem
from webapp.orgs.models import Invitation, Organization, OrganizationMember
from webapp.payments.models import PaymentEvent, ProviderOrder
from webapp.usage.models import UsageCounter, UsageDaily, UsageRecord

__all__ = [
    "ApiKey",
    "Attachment",
    "AuthSession",
    "Bot",
    "Conversation",
    "FaqEntry",
    "Invitation",
    "LearningItem",
    "Message",
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
