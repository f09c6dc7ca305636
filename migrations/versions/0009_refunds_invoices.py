"""payments and refunds, invoice requests

One row per payment received (an order paid through two channels has two), refunds
against them, the payment events' refund numbers, what an upgrade replaced (to end
its period on a refund), and 发票 requests. Orders paid before this revision get
their payment row from the order.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06 23:24:23.009177

"""

import sqlalchemy as sa
from alembic import op

import webapp.db

# revision identifiers, used by Alembic.
revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "invoice_requests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("organization_id", sa.Integer(), nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=False),
        sa.Column("requested_by_id", sa.Integer(), nullable=True),
        sa.Column("type", sa.String(length=16), nullable=False),
        sa.Column("title", sa.String(length=100), nullable=False),
        sa.Column("tax_id", sa.String(length=20), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("bank_name", sa.String(length=100), nullable=False),
        sa.Column("bank_account", sa.String(length=40), nullable=False),
        sa.Column("registered_address", sa.String(length=200), nullable=False),
        sa.Column("registered_phone", sa.String(length=30), nullable=False),
        sa.Column("amount_fen", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reject_reason", sa.String(length=255), nullable=False),
        sa.Column("pdf", sa.LargeBinary(), nullable=True),
        sa.Column("issued_at", webapp.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("rejected_at", webapp.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", webapp.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", webapp.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["order_id"],
            ["orders.id"],
            name=op.f("fk_invoice_requests_order_id_orders"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_invoice_requests_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["requested_by_id"],
            ["users.id"],
            name=op.f("fk_invoice_requests_requested_by_id_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_invoice_requests")),
    )
    with op.batch_alter_table("invoice_requests", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_invoice_requests_organization_id"), ["organization_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_invoice_requests_status"), ["status"], unique=False)
        batch_op.create_index(
            "uq_invoice_requests_order_id_active",
            ["order_id"],
            unique=True,
            postgresql_where=sa.text("status IN ('requested', 'issued')"),
            sqlite_where=sa.text("status IN ('requested', 'issued')"),
        )

    op.create_table(
        "payments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("provider_trade_no", sa.String(length=64), nullable=True),
        sa.Column("amount_fen", sa.BigInteger(), nullable=False),
        sa.Column("disposition", sa.String(length=16), nullable=False),
        sa.Column("paid_at", webapp.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_at", webapp.db.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint("amount_fen > 0", name=op.f("ck_payments_amount_positive")),
        sa.ForeignKeyConstraint(
            ["order_id"],
            ["orders.id"],
            name=op.f("fk_payments_order_id_orders"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payments")),
        sa.UniqueConstraint("order_id", "channel", name=op.f("uq_payments_order_id")),
    )
    with op.batch_alter_table("payments", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_payments_paid_at"), ["paid_at"], unique=False)
    op.execute(
        "INSERT INTO payments (order_id, channel, provider_trade_no, amount_fen, disposition,"
        " paid_at, created_at)"
        " SELECT id, channel, provider_trade_no, amount_fen, 'applied',"
        " COALESCE(paid_at, fulfilled_at, created_at), COALESCE(fulfilled_at, created_at)"
        " FROM orders"
        " WHERE status = 'paid' AND channel IN ('wechat', 'alipay') AND amount_fen > 0"
    )

    op.create_table(
        "refunds",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=False),
        sa.Column("payment_id", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("out_refund_no", sa.String(length=64), nullable=False),
        sa.Column("amount_fen", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=255), nullable=False),
        sa.Column("provider_refund_no", sa.String(length=64), nullable=True),
        sa.Column("failure_reason", sa.String(length=255), nullable=False),
        sa.Column("accepted_at", webapp.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("succeeded_at", webapp.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("failed_at", webapp.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", webapp.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", webapp.db.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint("amount_fen > 0", name=op.f("ck_refunds_amount_positive")),
        sa.ForeignKeyConstraint(
            ["order_id"], ["orders.id"], name=op.f("fk_refunds_order_id_orders"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["payment_id"],
            ["payments.id"],
            name=op.f("fk_refunds_payment_id_payments"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_refunds")),
        sa.UniqueConstraint("out_refund_no", name=op.f("uq_refunds_out_refund_no")),
    )
    with op.batch_alter_table("refunds", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_refunds_order_id"), ["order_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_refunds_payment_id"), ["payment_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_refunds_status"), ["status"], unique=False)
        batch_op.create_index(batch_op.f("ix_refunds_succeeded_at"), ["succeeded_at"], unique=False)

    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.add_column(sa.Column("replaced_plan_id", sa.Integer(), nullable=True))
        batch_op.add_column(
            sa.Column("replaced_period_end", webapp.db.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_orders_replaced_plan_id_plans"), "plans", ["replaced_plan_id"], ["id"]
        )

    with op.batch_alter_table("payment_events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("out_refund_no", sa.String(length=64), nullable=True))
        batch_op.create_index(
            batch_op.f("ix_payment_events_out_refund_no"), ["out_refund_no"], unique=False
        )


def downgrade():
    with op.batch_alter_table("payment_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_payment_events_out_refund_no"))
        batch_op.drop_column("out_refund_no")

    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_orders_replaced_plan_id_plans"), type_="foreignkey")
        batch_op.drop_column("replaced_period_end")
        batch_op.drop_column("replaced_plan_id")

    with op.batch_alter_table("refunds", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_refunds_succeeded_at"))
        batch_op.drop_index(batch_op.f("ix_refunds_status"))
        batch_op.drop_index(batch_op.f("ix_refunds_payment_id"))
        batch_op.drop_index(batch_op.f("ix_refunds_order_id"))

    op.drop_table("refunds")
    with op.batch_alter_table("payments", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_payments_paid_at"))

    op.drop_table("payments")
    with op.batch_alter_table("invoice_requests", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_invoice_requests_order_id_active",
            postgresql_where=sa.text("status IN ('requested', 'issued')"),
            sqlite_where=sa.text("status IN ('requested', 'issued')"),
        )
        batch_op.drop_index(batch_op.f("ix_invoice_requests_status"))
        batch_op.drop_index(batch_op.f("ix_invoice_requests_organization_id"))

    op.drop_table("invoice_requests")
