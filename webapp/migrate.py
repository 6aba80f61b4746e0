"""`python -m webapp.migrate` applies every Alembic migration to the configured database."""

from __future__ import annotations

from alembic import command
from alembic.config import Config

from webapp.settings import ROOT, load_settings


def upgrade(database_url: str) -> None:
    cfg = Config(str(ROOT / "alembic.ini"))
    cfg.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    command.upgrade(cfg, "head")


if __name__ == "__main__":
    upgrade(load_settings().database_url)
