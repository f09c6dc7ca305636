"""Answer bands: a bot's suggest threshold, below its answer threshold.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("bots", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("suggest_threshold", sa.Double(), nullable=False, server_default="0.25")
        )
    # A bot whose answer threshold was set below the new default keeps its bands in order.
    bots = sa.table(
        "bots",
        sa.column("answer_threshold", sa.Double()),
        sa.column("suggest_threshold", sa.Double()),
    )
    op.execute(
        bots.update()
        .where(bots.c.answer_threshold < bots.c.suggest_threshold)
        .values(suggest_threshold=bots.c.answer_threshold)
    )
    with op.batch_alter_table("bots", schema=None) as batch_op:
        batch_op.alter_column("suggest_threshold", server_default=None)


def downgrade():
    with op.batch_alter_table("bots", schema=None) as batch_op:
        batch_op.drop_column("suggest_threshold")
