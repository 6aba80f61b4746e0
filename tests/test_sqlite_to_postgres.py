"""Moving a SQLite installation to PostgreSQL (scripts/sqlite_to_postgres.py): the accounts work afterwards."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from tests.conftest import PG_URL
from tests.support import csrf, enroll, login, register, signup
from webapp import create_app
from webapp.migrate import upgrade
from webapp.settings import Settings
from webapp.verify.dev import DevVerifyBackend

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "sqlite_to_postgres.py"
pytestmark = pytest.mark.skipif(not PG_URL, reason="needs PostgreSQL (TEST_DATABASE_URL) as the target")


def serve(settings: Settings, verify: DevVerifyBackend) -> TestClient:
    return TestClient(create_app(settings, verify=verify), base_url="https://testserver", follow_redirects=False)


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=120,
                          check=False)


def test_an_installation_copied_to_postgres_keeps_its_accounts(settings: Settings, tmp_path: Path) -> None:
    sqlite_url = f"sqlite:///{tmp_path / 'old.db'}"
    upgrade(sqlite_url)
    old = settings.with_overrides(database_url=sqlite_url)
    verify = DevVerifyBackend()
    with serve(old, verify) as c:
        signup(c, "alice")
        codes = enroll(c, lambda: verify.outbox[0].code)
    with serve(old, verify) as c:
        signup(c, "bob")

    done = run(sqlite_url, settings.database_url)  # the test database: migrated and emptied
    assert done.returncode == 0, done.stderr
    assert "users: 2 rows copied" in done.stdout and "recovery_codes: 10 rows copied" in done.stdout

    with serve(settings, DevVerifyBackend()) as c:
        assert login(c, "bob").headers["location"] == "/profile"  # type: ignore[attr-defined]
        c.cookies.clear()
        assert login(c, "alice").headers["location"] == "/login/verify"  # type: ignore[attr-defined]
        r = c.post("/login/recovery", data={"csrf_token": csrf(c, "/login/recovery"), "recovery_code": codes[0]})
        assert r.headers["location"] == "/2fa/recovery-used"
        c.cookies.clear()
        assert register(c, "carol", email="c@example.com").status_code == 303  # type: ignore[attr-defined]

    again = run(sqlite_url, settings.database_url)
    assert again.returncode == 1 and "already holds accounts" in again.stderr

