"""Answer vectors: the FAQ texts' sentence vectors; thresholds on the calibrated scale.

The confidence is now a calibrated probability (webapp/kb/calibration.py), so the bots'
thresholds move to that scale: a threshold left at its old default takes the new
default; one an owner changed takes the probability that the lexical calibration gives
its old value (the confidence it was set against), so that the lexical engine answers
exactly as before and the hybrid engine at the same certainty.

Revision ID: 0010
Revises: 0009
"""

import math

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

# webapp.kb.calibration and webapp.bots.models when this was written (they may move on).
LEXICAL = (-3.591, 8.0907)  # intercept, slope
OLD_DEFAULTS = (0.45, 0.25)  # answer, suggest
NEW_DEFAULTS = (0.87, 0.02)


def _to_probability(confidence: float) -> float:
    return round(1 / (1 + math.exp(-(LEXICAL[0] + LEXICAL[1] * confidence))), 4)


def _to_confidence(probability: float) -> float:
    probability = min(max(probability, 1e-6), 1 - 1e-6)
    confidence = (math.log(probability / (1 - probability)) - LEXICAL[0]) / LEXICAL[1]
    return round(min(max(confidence, 0.0), 1.0), 4)


def _move_thresholds(old: tuple[float, float], new: tuple[float, float], convert) -> None:
    bots = sa.table(
        "bots",
        sa.column("id", sa.Integer()),
        sa.column("answer_threshold", sa.Double()),
        sa.column("suggest_threshold", sa.Double()),
    )
    connection = op.get_bind()
    rows = connection.execute(
        sa.select(bots.c.id, bots.c.answer_threshold, bots.c.suggest_threshold)
    ).all()
    for bot_id, answer, suggest in rows:
        answer = new[0] if math.isclose(answer, old[0]) else convert(answer)
        suggest = new[1] if math.isclose(suggest, old[1]) else convert(suggest)
        connection.execute(
            bots.update()
            .where(bots.c.id == bot_id)
            .values(answer_threshold=answer, suggest_threshold=min(suggest, answer))
        )


def upgrade():
    op.create_table(
        "faq_vectors",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("entry_id", sa.Integer(), nullable=False),
        sa.Column("model", sa.String(length=40), nullable=False),
        sa.Column("digest", sa.LargeBinary(length=16), nullable=False),
        sa.Column("vector", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["entry_id"],
            ["faq_entries.id"],
            name=op.f("fk_faq_vectors_entry_id_faq_entries"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_faq_vectors")),
        sa.UniqueConstraint("entry_id", "model", "digest", name=op.f("uq_faq_vectors_entry_id")),
    )
    _move_thresholds(OLD_DEFAULTS, NEW_DEFAULTS, _to_probability)


def downgrade():
    _move_thresholds(NEW_DEFAULTS, OLD_DEFAULTS, _to_confidence)
    op.drop_table("faq_vectors")
