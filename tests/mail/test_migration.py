"""Migration 0003 creates exactly what the models describe, and goes down and up again cleanly."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect

from webapp.migrate import upgrade
from webapp.models import Base
from webapp.settings import ROOT


def test_the_migrated_schema_matches_the_models_and_0003_downgrades(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'm.db'}"
    upgrade(url)
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []
        cfg = Config(str(ROOT / "alembic.ini"))
        cfg.set_main_option("sqlalchemy.url", url)
        command.downgrade(cfg, "0002")
        tables = set(inspect(engine).get_table_names())
        assert not {"mail_outbox", "email_tokens"} & tables
        assert "email_verified_at" not in {c["name"] for c in inspect(engine).get_columns("users")}
        command.upgrade(cfg, "head")
        assert {"mail_outbox", "email_tokens"} <= set(inspect(engine).get_table_names())
    finally:
        engine.dispose()
