"""Migration 0010 moves the bots' thresholds to the calibrated scale, and back."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest
import sqlalchemy as sa
from flask_migrate import downgrade, upgrade

from webapp import create_app
from webapp.bots.models import DEFAULT_ANSWER_THRESHOLD, DEFAULT_SUGGEST_THRESHOLD
from webapp.kb import calibration
from webapp.kb.engines import lexical_probability

MIGRATION = Path(__file__).parent.parent / "migrations" / "versions" / "0010_answer_vectors.py"


def migration() -> ModuleType:
    spec = importlib.util.spec_from_file_location("migration_0010", MIGRATION)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_its_constants_are_the_calibration_it_was_written_with() -> None:
    module = migration()

    assert module.NEW_DEFAULTS == (DEFAULT_ANSWER_THRESHOLD, DEFAULT_SUGGEST_THRESHOLD)
    assert pytest.approx(calibration.LEXICAL, abs=1e-4) == module.LEXICAL
    for old in (0.0, 0.3, 0.6, 1.0):
        assert module._to_probability(old) == pytest.approx(lexical_probability(old), abs=1e-4)
        assert module._to_confidence(module._to_probability(old)) == pytest.approx(old, abs=1e-3)


def test_default_thresholds_take_the_new_defaults_and_custom_ones_are_mapped(
    tmp_path: Path,
) -> None:
    app = create_app("testing", SQLALCHEMY_DATABASE_URI=f"sqlite:///{tmp_path}/m.db")
    module = migration()
    bots = [(1, 0.45, 0.25), (2, 0.6, 0.3), (3, 0.45, 0.1), (4, 0.2, 0.2)]
    with app.app_context():
        upgrade(revision="0005")  # the bots' columns below are 0005's
        engine = sa.create_engine(app.config["SQLALCHEMY_DATABASE_URI"])
        with engine.begin() as connection:
            connection.execute(
                sa.text(
                    "INSERT INTO organizations (id, name, created_at, updated_at) "
                    "VALUES (1, 'o', '2026-01-01', '2026-01-01')"
                )
            )
            for bot_id, answer, suggest in bots:
                connection.execute(
                    sa.text(
                        "INSERT INTO bots (id, organization_id, name, description, greeting, "
                        "is_enabled, created_at, updated_at, answer_threshold, "
                        "suggest_threshold, fallback_text, knowledge_version, publishable_key, "
                        "allowed_origins, widget_title, widget_color, widget_logo_url, "
                        "show_powered_by) VALUES (:id, 1, 'b', '', '', 1, '2026-01-01', "
                        "'2026-01-01', :answer, :suggest, '', 0, :key, '[]', '', '#1677ff', "
                        "'', 1)"
                    ),
                    {"id": bot_id, "answer": answer, "suggest": suggest, "key": f"pk{bot_id}"},
                )

        def thresholds() -> dict[int, tuple[float, float]]:
            with engine.connect() as connection:
                rows = connection.execute(
                    sa.text("SELECT id, answer_threshold, suggest_threshold FROM bots")
                )
                return {row[0]: (row[1], row[2]) for row in rows}

        upgrade()
        moved = thresholds()
        downgrade(revision=module.down_revision)
        back = thresholds()
        engine.dispose()

    assert moved[1] == (DEFAULT_ANSWER_THRESHOLD, DEFAULT_SUGGEST_THRESHOLD)
    assert moved[2] == (module._to_probability(0.6), module._to_probability(0.3))
    assert moved[3] == (DEFAULT_ANSWER_THRESHOLD, module._to_probability(0.1))
    assert moved[4][0] == moved[4][1] == module._to_probability(0.2)
    assert back == {
        bot_id: (pytest.approx(answer, abs=1e-3), pytest.approx(suggest, abs=1e-3))
        for bot_id, answer, suggest in bots
    }
