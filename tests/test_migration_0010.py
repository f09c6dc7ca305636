"""Migration 0010 moves the bots' thresholds to the calibrated scale, and back."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest
import sqlalchemy as sa
from flask_migrate import downgrade, upgrade

from webapp import create_app
from webapp.bots.models import DEFAULT_SUGGEST_THRESHOLD
from webapp.kb import calibration
from webapp.kb.engines import lexical_probability

MIGRATION = Path(__file__).parent.parent / "migrations" / "versions" / "0010_answer_vectors.py"


# a bot's columns as of migration 0005, but its id and thresholds
BOT_COLUMNS: dict[str, object] = {
    "organization_id": 1,
    "name": "b",
    "description": "",
    "greeting": "",
    "is_enabled": 1,
    "created_at": "2026-01-01",
    "updated_at": "2026-01-01",
    "fallback_text": "",
    "knowledge_version": 0,
    "allowed_origins": "[]",
    "widget_title": "",
    "widget_color": "#1677ff",
    "widget_logo_url": "",
    "show_powered_by": 1,
}


def migration(path: Path = MIGRATION) -> ModuleType:
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def add_bots(
    engine: sa.Engine, bots: list[tuple[int, float, float]], **later_columns: object
) -> None:
    """An organization and its `bots` (id, answer threshold, suggest threshold), with
    0005's columns and `later_columns` (those later migrations added)."""
    with engine.begin() as connection:
        connection.execute(
            sa.text(
                "INSERT INTO organizations (id, name, created_at, updated_at) "
                "VALUES (1, 'o', '2026-01-01', '2026-01-01')"
            )
        )
        for bot_id, answer, suggest in bots:
            values = {
                **BOT_COLUMNS,
                **later_columns,
                "id": bot_id,
                "answer_threshold": answer,
                "suggest_threshold": suggest,
                "publishable_key": f"pk{bot_id}",
            }
            columns = ", ".join(values)
            placeholders = ", ".join(f":{name}" for name in values)
            connection.execute(
                sa.text(f"INSERT INTO bots ({columns}) VALUES ({placeholders})"), values
            )


def thresholds(engine: sa.Engine) -> dict[int, tuple[float, float]]:
    with engine.connect() as connection:
        rows = connection.execute(
            sa.text("SELECT id, answer_threshold, suggest_threshold FROM bots")
        )
        return {row[0]: (row[1], row[2]) for row in rows}


def test_its_constants_are_the_calibration_it_was_written_with() -> None:
    module = migration()

    # the answer threshold's default moved on in 0011 (tests/test_migration_0011.py)
    assert module.NEW_DEFAULTS[1] == DEFAULT_SUGGEST_THRESHOLD
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
        upgrade(revision="0005")  # the bots' columns of BOT_COLUMNS
        engine = sa.create_engine(app.config["SQLALCHEMY_DATABASE_URI"])
        add_bots(engine, bots)
        upgrade(revision=module.revision)
        moved = thresholds(engine)
        downgrade(revision=module.down_revision)
        back = thresholds(engine)
        engine.dispose()

    assert moved[1] == module.NEW_DEFAULTS
    assert moved[2] == (module._to_probability(0.6), module._to_probability(0.3))
    assert moved[3] == (module.NEW_DEFAULTS[0], module._to_probability(0.1))
    assert moved[4][0] == moved[4][1] == module._to_probability(0.2)
    assert back == {
        bot_id: (pytest.approx(answer, abs=1e-3), pytest.approx(suggest, abs=1e-3))
        for bot_id, answer, suggest in bots
    }
