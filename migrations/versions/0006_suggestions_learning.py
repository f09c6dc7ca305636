"""Suggestions and learning: what an unsure bot offered, misses in a row, handoff words, and
the questions to learn from.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

import webapp.db

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

DEFAULT_HANDOFF_WORDS = '["人工", "转人工", "找客服"]'


def upgrade():
    with op.batch_alter_table("bots", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "handoff_words",
                sa.JSON(),
                nullable=False,
                server_default=sa.text(f"'{DEFAULT_HANDOFF_WORDS}'"),
            )
        )
    with op.batch_alter_table("bots", schema=None) as batch_op:
        batch_op.alter_column("handoff_words", server_default=None)

    with op.batch_alter_table("conversations", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("bot_misses", sa.Integer(), nullable=False, server_default="0")
        )
    with op.batch_alter_table("conversations", schema=None) as batch_op:
        batch_op.alter_column("bot_misses", server_default=None)

    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.add_column(sa.Column("suggestions", sa.JSON(), nullable=True))

    op.create_table(
        "learning_items",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("organization_id", sa.Integer(), nullable=False),
        sa.Column("bot_id", sa.Integer(), nullable=False),
        sa.Column("question_key", sa.String(length=500), nullable=False),
        sa.Column("text", sa.String(length=500), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("first_seen_at", webapp.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", webapp.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("proposed_entry_id", sa.Integer(), nullable=True),
        sa.Column("candidates", sa.JSON(), nullable=False),
        sa.Column("proposed_answer", sa.String(length=5000), nullable=True),
        sa.Column("learned_entry_id", sa.Integer(), nullable=True),
        sa.Column("resolved_at", webapp.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["bot_id"], ["bots.id"], name=op.f("fk_learning_items_bot_id_bots"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["learned_entry_id"],
            ["faq_entries.id"],
            name=op.f("fk_learning_items_learned_entry_id_faq_entries"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_learning_items_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["proposed_entry_id"],
            ["faq_entries.id"],
            name=op.f("fk_learning_items_proposed_entry_id_faq_entries"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_learning_items")),
        sa.UniqueConstraint("bot_id", "question_key", name=op.f("uq_learning_items_bot_id")),
    )
    with op.batch_alter_table("learning_items", schema=None) as batch_op:
        batch_op.create_index(
            "ix_learning_items_bot_id_status_last_seen_at",
            ["bot_id", "status", "last_seen_at"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_learning_items_organization_id"), ["organization_id"], unique=False
        )


def downgrade():
    with op.batch_alter_table("learning_items", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_learning_items_organization_id"))
        batch_op.drop_index("ix_learning_items_bot_id_status_last_seen_at")
    op.drop_table("learning_items")
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_column("suggestions")
    with op.batch_alter_table("conversations", schema=None) as batch_op:
        batch_op.drop_column("bot_misses")
    with op.batch_alter_table("bots", schema=None) as batch_op:
        batch_op.drop_column("handoff_words")
