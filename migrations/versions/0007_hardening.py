"""hardening: portal session generations, the widget's daily cap per bot

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06 23:45:00

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("session_generation", sa.Integer(), nullable=False, server_default="0")
        )
    with op.batch_alter_table("bots", schema=None) as batch_op:
        batch_op.add_column(sa.Column("widget_daily_cap", sa.Integer(), nullable=True))
    op.create_table(
        "widget_daily_counts",
        sa.Column("bot_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("used", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["bot_id"],
            ["bots.id"],
            name=op.f("fk_widget_daily_counts_bot_id_bots"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("bot_id", "day", name=op.f("pk_widget_daily_counts")),
    )


def downgrade():
    op.drop_table("widget_daily_counts")
    with op.batch_alter_table("bots", schema=None) as batch_op:
        batch_op.drop_column("widget_daily_cap")
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("session_generation")
