"""Running the operator CLI in-process against the test database, with the app's own secrets (no tests here)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from click.testing import CliRunner, Result
from sqlalchemy import create_engine, text

from webapp.cli import main
from webapp.db import sync_url
from webapp.health import migration_heads
from webapp.settings import Settings

TWILIO_VARS = ("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "TWILIO_API_KEY_SID", "TWILIO_API_KEY_SECRET",
               "TWILIO_VERIFY_SERVICE_SID", "TWILIO_VERIFY_BASE_URL")


def cli_env(settings: Settings, **extra: str) -> dict[str, str]:
    """The environment an operator's shell would have: the same database and secrets as the app."""
    env = {
        "APP_ENV": "development",
        "DATABASE_URL": settings.database_url,
        "SECRET_KEY": settings.secret_key,
        "PASSWORD_PEPPER": settings.pepper.decode(),
        "INSTANCE_DIR": str(settings.instance_dir),
        "BCRYPT_ROUNDS": "4",
        "LOG_LEVEL": "WARNING",
        **{name: "" for name in TWILIO_VARS},  # empty values also override a developer's .env
    }
    env.update(extra)
    return env


def cli(settings: Settings, *args: str, input: str | None = None, **env: str) -> Result:
    return CliRunner().invoke(main, ["--operator", "ops-tester", *args], env=cli_env(settings, **env), input=input,
                              catch_exceptions=False)


@contextlib.contextmanager
def schema_behind(settings: Settings) -> Iterator[None]:
    """The database claims an older migration; put back afterwards (PostgreSQL's test database is shared)."""
    def set_version(version: str) -> None:
        engine = create_engine(sync_url(settings.database_url))
        try:
            with engine.begin() as conn:
                conn.execute(text("UPDATE alembic_version SET version_num = :v"), {"v": version})
        finally:
            engine.dispose()

    set_version("0001")
    try:
        yield
    finally:
        set_version(migration_heads()[0])
