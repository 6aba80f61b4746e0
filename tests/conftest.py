"""Shared fixtures: a migrated database (SQLite, or PostgreSQL with TEST_DATABASE_URL), the app, clients."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from starlette.applications import Starlette
from starlette.testclient import TestClient

from tests.counting import CountingVerify
from webapp import create_app
from webapp.db import sync_url
from webapp.migrate import upgrade
from webapp.models import Base
from webapp.settings import Settings
from webapp.verify.dev import DevVerifyBackend

pytest_plugins = ["tests.fakeverify.plugin"]

PG_URL = os.environ.get("TEST_DATABASE_URL", "")


@pytest.fixture(scope="session")
def migrated_template(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Run the real Alembic migrations once per session; tests copy or truncate from here."""
    if PG_URL:
        engine = create_engine(sync_url(PG_URL))
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
        engine.dispose()
        upgrade(PG_URL)
        return PG_URL
    path = tmp_path_factory.mktemp("db") / "template.db"
    upgrade(f"sqlite+aiosqlite:///{path}")
    return str(path)


@pytest.fixture
def database_url(migrated_template: str, tmp_path: Path) -> str:
    if PG_URL:
        engine = create_engine(sync_url(PG_URL))
        tables = ", ".join(t.name for t in Base.metadata.sorted_tables)
        with engine.begin() as conn:
            conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
        engine.dispose()
        return PG_URL
    path = tmp_path / "app.db"
    shutil.copy(migrated_template, path)
    return f"sqlite+aiosqlite:///{path}"


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(
        env="development",
        secret_key="test-secret-key-" + "k" * 40,
        pepper=b"test-pepper-" + b"p" * 40,
        database_url=database_url,
        instance_dir=tmp_path,
        bcrypt_rounds=4,
        app_base_url="http://localhost:8000",  # what load_settings gives development by default
    )


@pytest.fixture
def verify() -> CountingVerify:
    """The development backend, recording every call the app makes (to assert "no check call", "one send")."""
    return CountingVerify()


@pytest.fixture
def app(settings: Settings, verify: DevVerifyBackend) -> Starlette:
    return create_app(settings, verify=verify)


@pytest.fixture
def client(app: Starlette) -> Iterator[TestClient]:
    with TestClient(app, base_url="https://testserver", follow_redirects=False) as c:
        yield c


@pytest.fixture
def other_client(app: Starlette) -> Iterator[TestClient]:
    """A second browser against the same app and database."""
    with TestClient(app, base_url="https://testserver", follow_redirects=False) as c:
        yield c
