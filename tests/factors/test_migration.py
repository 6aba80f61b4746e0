"""The authenticators migration moves every enrolled phone into the new table; nothing is lost for SMS users.

Runs Alembic to 0002, inserts users as the old schema had them, upgrades to head and checks the rows; then signs one
of them in by SMS. On PostgreSQL it runs in a schema of its own, so the session's migrated database is untouched.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, text
from starlette.testclient import TestClient

from tests.support import CountingVerify, form_post, login, path_of
from webapp import create_app
from webapp.db import sync_url
from webapp.settings import ROOT, Settings

PG_URL = os.environ.get("TEST_DATABASE_URL", "")
SCHEMA = "migration_check"


@pytest.fixture
def old_db(tmp_path: Path) -> Iterator[str]:
    if not PG_URL:
        yield f"sqlite+aiosqlite:///{tmp_path / 'old.db'}"
        return
    engine = create_engine(sync_url(PG_URL))
    with engine.begin() as conn:
        conn.execute(text(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE; CREATE SCHEMA {SCHEMA}"))
    yield sync_url(PG_URL) + f"?options=-csearch_path%3D{SCHEMA}"
    with engine.begin() as conn:
        conn.execute(text(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE"))
    engine.dispose()


def alembic(url: str, target: str) -> None:
    cfg = Config(str(ROOT / "alembic.ini"))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    command.upgrade(cfg, target)


def run(url: str, sql: str, **params: object) -> list[dict[str, object]]:
    engine = create_engine(sync_url(url))
    try:
        with engine.begin() as conn:
            result = conn.execute(text(sql), params)
            return [dict(r._mapping) for r in result] if result.returns_rows else []
    finally:
        engine.dispose()


OLD_USER = ("INSERT INTO users (username, display_name, email, password_hash, pepper_id, phone_e164, phone_verified_at,"
            " mfa_enabled, mfa_failed_count, session_epoch, created_at) VALUES (:u, :u, :e, :h, 1, :p, :v, :m, 0, 0,"
            " CURRENT_TIMESTAMP)")


def test_enrolled_phones_become_sms_authenticators(old_db: str) -> None:
    alembic(old_db, "0002")
    run(old_db, OLD_USER, u="enrolled", e="a@example.com", h="x", p="+14155550123", v="2026-11-01 10:00:00", m=True)
    run(old_db, OLD_USER, u="plain", e="b@example.com", h="x", p=None, v=None, m=False)
    run(old_db, OLD_USER, u="stale", e="c@example.com", h="x", p="+14155550199", v=None, m=False)
    alembic(old_db, "head")
    moved = run(old_db, "SELECT u.username, a.kind, a.label, a.phone_e164, a.created_at FROM authenticators a "
                        "JOIN users u ON u.id = a.user_id")
    assert len(moved) == 1
    assert moved[0]["username"] == "enrolled" and moved[0]["kind"] == "sms"
    assert moved[0]["phone_e164"] == "+14155550123" and str(moved[0]["created_at"]).startswith("2026-11-01")
    still = run(old_db, "SELECT phone_e164, mfa_enabled FROM users WHERE username = 'enrolled'")[0]
    assert still["phone_e164"] == "+14155550123" and still["mfa_enabled"] in (True, 1)
    assert run(old_db, "SELECT method FROM mfa_challenges") == []


def test_a_migrated_sms_user_signs_in_with_a_text_message(old_db: str, settings: Settings, tmp_path: Path) -> None:
    if PG_URL:
        pytest.skip("the app's engine takes no search_path option; the SQLite run covers the sign-in")
    alembic(old_db, "0002")
    with TestClient(create_app(settings)) as c:  # a real password hash, made by the app itself
        from tests.support import register

        register(c)
    password_hash = run(settings.database_url, "SELECT password_hash FROM users")[0]["password_hash"]
    run(old_db, OLD_USER, u="alice", e="a@example.com", h=password_hash, p="+14155550123", v=None, m=True)
    alembic(old_db, "head")
    verify = CountingVerify()
    app = create_app(settings.with_overrides(database_url=old_db), verify=verify)
    with TestClient(app, base_url="https://testserver", follow_redirects=False) as client:
        assert path_of(login(client)) == "/login/verify"
        assert verify.starts == [("+14155550123", "sms")]
        r = form_post(client, "/login/verify", client.get("/login/verify").text, {"code": verify.code})
        assert path_of(r) == "/profile"
        assert "Phone" in client.get("/profile").text and "number ending 23" in client.get("/profile").text
