"""`webapp prune` deletes exactly what no one will read again; `webapp check-config` says what is wrong."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from tests.operators.kit import cli, schema_behind
from tests.support import events, rows
from webapp.db import sync_url, utcnow
from webapp.health import migration_heads
from webapp.models import AuthSession, MailOutbox, MfaChallenge, SecurityEvent, Throttle, User
from webapp.settings import Settings

NOW = utcnow()
DAY = timedelta(days=1)
HOUR = timedelta(hours=1)


def seed(settings: Settings, *objects: Any) -> None:
    engine = create_engine(sync_url(settings.database_url))
    try:
        with Session(engine) as s, s.begin():
            s.add_all(objects)
    finally:
        engine.dispose()


def keys(settings: Settings, table: str, column: str) -> set[Any]:
    return {r[column] for r in rows(settings, f"SELECT {column} FROM {table}")}  # noqa: S608 - fixed names


def user(uid: int, name: str) -> User:
    return User(id=uid, username=name, display_name=name, email=f"{name}@example.com", password_hash="x",
                session_epoch=0, mfa_enabled=True, phone_e164="+14155550123")


def session(key: str, uid: int, *, created: Any = NOW, seen: Any = NOW, revoked: Any = None,
            remember: bool = False) -> AuthSession:
    return AuthSession(id_hash=key, user_id=uid, epoch=0, mfa_passed=True, remember=remember, created_at=created,
                       last_seen_at=seen, revoked_at=revoked)


def challenge(key: str, uid: int, created: Any, *, consumed: Any = None) -> MfaChallenge:
    return MfaChallenge(id_hash=key, user_id=uid, purpose="login", user_epoch=0, phone_e164="+14155550123",
                        created_at=created, expires_at=created + timedelta(minutes=10), consumed_at=consumed)


def throttle(key: str, started: Any, *, count: int = 1, locked: Any = None) -> Throttle:
    return Throttle(key=key, count=count, window_started_at=started, locked_until=locked)


def event(name: str, ts: Any) -> SecurityEvent:
    # No explicit ids: PostgreSQL's sequence would not know about them and the audit row prune adds would clash.
    return SecurityEvent(ts=ts, event=name, outcome="failure", details={})


def mail(key: str, status: str, created: Any) -> MailOutbox:
    return MailOutbox(to_addr="a@example.com", template="notice", context={}, status=status, created_at=created,
                      due_at=created, message_key=key)


def seed_everything(settings: Settings) -> None:
    seed(settings, user(1, "alice"), user(2, "bob"))
    seed(settings,
         session("live", 1), session("revoked-recently", 1, revoked=NOW - HOUR),
         session("revoked-long-ago", 1, revoked=NOW - 2 * DAY),
         session("idle-long-ago", 1, created=NOW - 4 * DAY, seen=NOW - 3 * DAY),
         session("remembered-live", 1, created=NOW - 20 * DAY, seen=NOW - 20 * DAY, remember=True),
         session("remembered-expired", 1, created=NOW - 40 * DAY, seen=NOW - 40 * DAY, remember=True),
         challenge("open", 1, NOW - timedelta(minutes=1)),
         challenge("expired-recently", 1, NOW - 2 * HOUR),
         challenge("alice-abandoned-then-signed-in", 1, NOW - 5 * DAY),
         challenge("alice-signed-in", 1, NOW - 4 * DAY, consumed=NOW - 4 * DAY),
         challenge("bob-abandoned", 2, NOW - 3 * DAY),
         throttle("login-ip:fresh", NOW), throttle("login-ip:old", NOW - 2 * DAY),
         throttle("login-user:quiet", NOW - 2 * DAY, count=3),
         throttle("login-user:locked", NOW - 2 * DAY, count=10, locked=NOW + HOUR),
         throttle("phone-bind:anchor", NOW - 30 * DAY, count=0),
         event("seed-400-days", NOW - 400 * DAY), event("seed-300-days", NOW - 300 * DAY), event("seed-now", NOW),
         mail("sent-long-ago", "sent", NOW - 2 * DAY), mail("failed-long-ago", "failed", NOW - 3 * DAY),
         mail("sent-recently", "sent", NOW - HOUR), mail("pending-long-ago", "pending", NOW - 2 * DAY))


def test_prune_deletes_only_what_is_dead_for_a_day_and_audit_rows_past_retention(settings: Settings) -> None:
    seed_everything(settings)
    result = cli(settings, "prune", "--yes")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == ["challenges: 3 deleted", "sessions: 3 deleted", "throttles: 2 deleted",
                                          "audit events: 1 deleted", "mail outbox: 2 deleted", "mail links: 0 deleted"]
    assert keys(settings, "mail_outbox", "message_key") == {"sent-recently", "pending-long-ago"}  # undelivered stays
    assert keys(settings, "auth_sessions", "id_hash") == {"live", "revoked-recently", "remembered-live"}
    assert keys(settings, "mfa_challenges", "id_hash") == {"open", "expired-recently"}
    assert keys(settings, "throttles", "key") == {"login-ip:fresh", "login-user:locked", "phone-bind:anchor"}
    assert {e["event"] for e in events(settings) if e["event"].startswith("seed-")} == {"seed-300-days", "seed-now"}
    [record] = events(settings, "admin_prune")
    details = record["details"] if isinstance(record["details"], dict) else json.loads(record["details"])
    assert details["operator"] == "ops-tester" and details["deleted"]["sessions"] == 3


def test_pruning_an_unfinished_sign_in_keeps_the_banner_its_owner_would_have_seen(settings: Settings) -> None:
    seed_everything(settings)
    assert cli(settings, "prune", "--yes").exit_code == 0
    notices = rows(settings, "SELECT user_id, kind, created_at FROM security_notices")
    assert [(n["user_id"], n["kind"]) for n in notices] == [(2, "second_step_failed")]  # alice signed in since
    assert cli(settings, "prune", "--yes").exit_code == 0  # nothing left to report twice
    assert len(rows(settings, "SELECT id FROM security_notices")) == 1


def test_prune_previews_the_counts_and_deletes_nothing_when_declined(settings: Settings) -> None:
    seed_everything(settings)
    result = cli(settings, "prune", input="n\n")
    assert result.exit_code == 1
    assert "sessions: 3 to delete" in result.stdout and "audit events: 1 to delete" in result.stdout
    assert len(keys(settings, "auth_sessions", "id_hash")) == 6


def test_audit_retention_days_is_a_setting(settings: Settings) -> None:
    seed_everything(settings)
    result = cli(settings, "prune", "--yes", AUDIT_RETENTION_DAYS="200")
    assert "audit events: 2 deleted" in result.stdout


def test_check_config_passes_on_a_working_installation(settings: Settings) -> None:
    result = cli(settings, "check-config")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert [line.split()[:2] for line in lines[:3]] == [["ok", "settings"], ["ok", "database"], ["ok", "schema"]]
    assert f"at {migration_heads()[0]}" in lines[2]
    checks = json.loads(cli(settings, "check-config", "--json").stdout)
    assert {c["name"]: c["ok"] for c in checks}["schema"] is True


def test_check_config_says_what_is_wrong_and_exits_non_zero(settings: Settings, tmp_path: Path) -> None:
    bad = cli(settings, "check-config", LOG_LEVEL="LOUD")
    assert bad.exit_code == 1 and "FAIL  settings" in bad.stdout and "LOG_LEVEL must be one of" in bad.stdout
    prod = cli(settings, "check-config", APP_ENV="production", SECRET_KEY="s" * 48, PASSWORD_PEPPER="p" * 48,
               BCRYPT_ROUNDS="12", APP_BASE_URL="https://accounts.example.com", SMTP_HOST="smtp.example.com",
               MAIL_FROM="no-reply@accounts.example.com")
    assert prod.exit_code == 1 and "production needs Twilio Verify" in prod.stdout
    gone = cli(settings, "check-config", DATABASE_URL=f"sqlite:///{tmp_path / 'missing' / 'app.db'}")
    assert gone.exit_code == 1 and "FAIL  database" in gone.stdout and "unable to open" in gone.stdout
    with schema_behind(settings):
        behind = cli(settings, "check-config")
    assert behind.exit_code == 1 and "FAIL  schema" in behind.stdout and "run the migrations" in behind.stdout


def test_check_config_never_prints_the_database_password(settings: Settings) -> None:
    url = "postgresql+psycopg://app:hunter2-secret@127.0.0.1:1/app"
    result = cli(settings, "check-config", DATABASE_URL=url)
    assert result.exit_code == 1 and "FAIL  database" in result.stdout
    assert "hunter2" not in result.output and "***" in result.stdout
