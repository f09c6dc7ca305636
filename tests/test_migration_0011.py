"""Migration 0011 moves the bots still at the old default answer threshold, and back."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from flask_migrate import downgrade, upgrade

from tests.test_migration_0010 import add_bots, migration, thresholds
from webapp import create_app
from webapp.bots.models import DEFAULT_ANSWER_THRESHOLD

MIGRATION = Path(__file__).parent.parent / "migrations" / "versions" / "0011_answer_threshold.py"


def test_it_moves_from_0010s_default_to_the_models() -> None:
    module = migration(MIGRATION)

    assert migration().NEW_DEFAULTS[0] == module.OLD_DEFAULT
    assert module.NEW_DEFAULT == DEFAULT_ANSWER_THRESHOLD


def test_bots_at_the_old_default_take_the_new_one_and_others_keep_theirs(
    tmp_path: Path,
) -> None:
    app = create_app("testing", SQLALCHEMY_DATABASE_URI=f"sqlite:///{tmp_path}/m.db")
    module = migration(MIGRATION)
    bots = [(1, 0.87, 0.02), (2, 0.9, 0.05), (3, 0.87, 0.85), (4, 0.5, 0.2)]
    with app.app_context():
        upgrade(revision=module.down_revision)
        engine = sa.create_engine(app.config["SQLALCHEMY_DATABASE_URI"])
        add_bots(engine, bots, handoff_words="[]")
        upgrade(revision=module.revision)
        moved = thresholds(engine)
        downgrade(revision=module.down_revision)
        back = thresholds(engine)
        engine.dispose()

    assert moved == {
        1: (pytest.approx(module.NEW_DEFAULT), 0.02),
        2: (0.9, 0.05),
        3: (pytest.approx(module.NEW_DEFAULT), pytest.approx(module.NEW_DEFAULT)),
        4: (0.5, 0.2),
    }
    assert back == {
        1: (pytest.approx(0.87), 0.02),
        2: (0.9, 0.05),
        3: (pytest.approx(0.87), pytest.approx(module.NEW_DEFAULT)),
        4: (0.5, 0.2),
    }
