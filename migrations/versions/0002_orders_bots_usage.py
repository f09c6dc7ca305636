"""orders, bots, api keys and usage metering

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24 22:33:30.503340

"""

import sqlalchemy as sa
from alembic import op

import webapp.db

# revision identifiers, used by Alembic.
revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "bots",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("organization_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("description", sa.String(length=500), nullable=False),
        sa.Column("greeting", sa.String(length=500), nullable=False),
        sa.Column("is_enabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", webapp.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", webapp.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_bots_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bots")),
    )
    with op.batch_alter_table("bots", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_bots_organization_id"), ["organization_id"], unique=False
        )

    op.create_table(
        "orders",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("organization_id", sa.Integer(), nullable=False),
        sa.Column("plan_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("months", sa.Integer(), nullable=False),
        sa.Column("list_price_fen", sa.BigInteger(), nullable=False),
        sa.Column("credit_fen", sa.BigInteger(), nullable=False),
        sa.Column("amount_fen", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=True),
        sa.Column("out_trade_no", sa.String(length=32), nullable=False),
        sa.Column("provider_trade_no", sa.String(length=64), nullable=True),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("expires_at", webapp.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("paid_at", webapp.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("closed_at", webapp.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("fulfilled_at", webapp.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", webapp.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", webapp.db.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "amount_fen = list_price_fen - credit_fen", name=op.f("ck_orders_amount_adds_up")
        ),
        sa.CheckConstraint(
            "amount_fen >= 0 AND credit_fen >= 0", name=op.f("ck_orders_amounts_not_negative")
        ),
        sa.CheckConstraint("months BETWEEN 1 AND 120", name=op.f("ck_orders_months_range")),
        sa.ForeignKeyConstraint(
            ["created_by_id"],
            ["users.id"],
            name=op.f("fk_orders_created_by_id_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_orders_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(["plan_id"], ["plans.id"], name=op.f("fk_orders_plan_id_plans")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_orders")),
        sa.UniqueConstraint("out_trade_no", name=op.f("uq_orders_out_trade_no")),
    )
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_orders_organization_id"), ["organization_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_orders_status"), ["status"], unique=False)

    op.create_table(
        "sent_notices",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("organization_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("period_key", sa.String(length=64), nullable=False),
        sa.Column("sent_at", webapp.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_sent_notices_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sent_notices")),
        sa.UniqueConstraint(
            "organization_id", "kind", "period_key", name=op.f("uq_sent_notices_organization_id")
        ),
    )
    op.create_table(
        "usage_counters",
        sa.Column("organization_id", sa.Integer(), nullable=False),
        sa.Column("period_start", webapp.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("used", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_usage_counters_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("organization_id", "period_start", name=op.f("pk_usage_counters")),
    )
    op.create_table(
        "usage_daily",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("organization_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("bot_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("quantity", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_usage_daily_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_usage_daily")),
        sa.UniqueConstraint(
            "organization_id", "day", "bot_id", "kind", name=op.f("uq_usage_daily_organization_id")
        ),
    )
    op.create_table(
        "api_keys",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("organization_id", sa.Integer(), nullable=False),
        sa.Column("bot_id", sa.Integer(), nullable=True),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("prefix", sa.String(length=16), nullable=False),
        sa.Column("secret_hash", sa.String(length=64), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", webapp.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_used_at", webapp.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", webapp.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["bot_id"], ["bots.id"], name=op.f("fk_api_keys_bot_id_bots"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["created_by_id"],
            ["users.id"],
            name=op.f("fk_api_keys_created_by_id_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_api_keys_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_keys")),
        sa.UniqueConstraint("prefix", name=op.f("uq_api_keys_prefix")),
    )
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_api_keys_bot_id"), ["bot_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_api_keys_organization_id"), ["organization_id"], unique=False
        )

    op.create_table(
        "usage_records",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("organization_id", sa.Integer(), nullable=False),
        sa.Column("bot_id", sa.Integer(), nullable=True),
        sa.Column("api_key_id", sa.Integer(), nullable=True),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("idempotency_key", sa.String(length=255), nullable=True),
        sa.Column("period_start", webapp.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("used_after", sa.BigInteger(), nullable=False),
        sa.Column("created_at", webapp.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["api_key_id"],
            ["api_keys.id"],
            name=op.f("fk_usage_records_api_key_id_api_keys"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["bot_id"], ["bots.id"], name=op.f("fk_usage_records_bot_id_bots"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_usage_records_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_usage_records")),
        sa.UniqueConstraint(
            "organization_id", "idempotency_key", name=op.f("uq_usage_records_organization_id")
        ),
    )
    with op.batch_alter_table("usage_records", schema=None) as batch_op:
        batch_op.create_index(
            "ix_usage_records_organization_id_created_at",
            ["organization_id", "created_at"],
            unique=False,
        )

    with op.batch_alter_table("subscriptions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("scheduled_plan_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("scheduled_months", sa.Integer(), nullable=True))
        batch_op.create_index(
            batch_op.f("ix_subscriptions_current_period_end"), ["current_period_end"], unique=False
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_subscriptions_scheduled_plan_id_plans"),
            "plans",
            ["scheduled_plan_id"],
            ["id"],
        )


def downgrade():
    with op.batch_alter_table("subscriptions", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_subscriptions_scheduled_plan_id_plans"), type_="foreignkey"
        )
        batch_op.drop_index(batch_op.f("ix_subscriptions_current_period_end"))
        batch_op.drop_column("scheduled_months")
        batch_op.drop_column("scheduled_plan_id")

    with op.batch_alter_table("usage_records", schema=None) as batch_op:
        batch_op.drop_index("ix_usage_records_organization_id_created_at")

    op.drop_table("usage_records")
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_api_keys_organization_id"))
        batch_op.drop_index(batch_op.f("ix_api_keys_bot_id"))

    op.drop_table("api_keys")
    op.drop_table("usage_daily")
    op.drop_table("usage_counters")
    op.drop_table("sent_notices")
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_orders_status"))
        batch_op.drop_index(batch_op.f("ix_orders_organization_id"))

    op.drop_table("orders")
    with op.batch_alter_table("bots", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_bots_organization_id"))

    op.drop_table("bots")
