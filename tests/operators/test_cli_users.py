"""`webapp users …` as an operator uses it, against the same database the app serves (SQLite, or PostgreSQL)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from starlette.testclient import TestClient

from tests.fakeverify.plugin import FakeVerify
from tests.operators.kit import cli
from tests.support import (
    PASSWORD,
    PHONE,
    enroll,
    events,
    execute,
    form_post,
    login,
    make_2fa_user,
    register,
    rows,
    signup,
    tw_app,
    tw_client,
    tw_settings,
    user_row,
)
from webapp.settings import Settings
from webapp.verify.dev import DevVerifyBackend

__all__ = ["tw_app", "tw_client", "tw_settings"]  # fixtures
ROOT = Path(__file__).resolve().parents[2]
WRONG = "not-the-password-at-all"


def signed_in(client: TestClient) -> bool:
    return client.get("/profile").status_code == 200


def test_python_dash_m_webapp_runs_the_cli() -> None:
    done = subprocess.run([sys.executable, "-m", "webapp", "--help"], cwd=ROOT, capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    for command in ("users", "prune", "check-config"):
        assert command in done.stdout


def test_list_shows_status_two_step_last_sign_in_and_locks(client: TestClient, other_client: TestClient,
                                                           settings: Settings, verify: DevVerifyBackend) -> None:
    signup(client, "alice")
    enroll(client, lambda: verify.outbox[0].code)
    register(other_client, "bob", email="bob@example.com")
    for _ in range(settings.login_max_failures):
        login(other_client, "bob", WRONG)
    text = cli(settings, "users", "list")
    assert text.exit_code == 0, text.output
    alice_line = next(line for line in text.stdout.splitlines() if " alice " in line)
    bob_line = next(line for line in text.stdout.splitlines() if " bob " in line)
    assert "active" in alice_line and " on " in alice_line and "UTC" in alice_line and alice_line.endswith("-")
    assert " off " in bob_line and "never" in bob_line and bob_line.endswith("sign-in")
    data = json.loads(cli(settings, "users", "list", "--json").stdout)
    by_name = {row["username"]: row for row in data}
    assert by_name["alice"]["two_step"] is True and by_name["alice"]["last_sign_in"]
    assert by_name["bob"]["locks"]["login_locked_s"] > 0 and by_name["bob"]["last_sign_in"] is None


def test_show_gives_methods_sessions_and_events_but_never_a_secret_or_full_number(
        client: TestClient, settings: Settings, verify: DevVerifyBackend) -> None:
    signup(client, "alice")
    enroll(client, lambda: verify.outbox[0].code)
    user = user_row(settings)
    for args in (("users", "show", "Alice"), ("users", "show", f"#{user['id']}", "--json")):
        result = cli(settings, *args)
        assert result.exit_code == 0, result.output
        for secret in (user["password_hash"], PHONE, PHONE[2:], settings.secret_key, PASSWORD):
            assert secret not in result.output
    shown = cli(settings, "users", "show", "alice").stdout
    assert "sms +1" in shown and PHONE[-2:] in shown and "recovery codes (10 unused)" in shown
    assert "1 active" in shown and "mfa_enabled" in shown
    data = json.loads(cli(settings, "users", "show", "alice", "--json").stdout)
    assert data["methods"][0] == "password" and data["sessions_active"] == 1 and data["status"] == "active"


def test_unknown_users_are_a_clear_non_zero_exit_for_every_command(client: TestClient, settings: Settings) -> None:
    for command in ("show", "reset-2fa", "revoke-sessions", "unlock", "disable", "enable"):
        args = ["users", command, "nobody"] + ([] if command == "show" else ["--yes"])
        result = cli(settings, *args)
        assert result.exit_code == 1, (command, result.output)
        assert "no user 'nobody'" in result.stderr


def notices_mailed(settings: Settings) -> int:
    return int(rows(settings, "SELECT count(*) AS n FROM mail_outbox WHERE template = 'notice' "
                              "AND to_addr = 'alice@example.com'")[0]["n"])


def test_reset_2fa_removes_every_method_and_ends_every_session_and_step(
        client: TestClient, other_client: TestClient, settings: Settings, verify: DevVerifyBackend) -> None:
    signup(client, "alice")
    enroll(client, lambda: verify.outbox[0].code)
    execute(settings, "UPDATE auth_sessions SET remember = :t", t=True)  # a remembered browser
    assert login(other_client, "alice").status_code == 303
    code_page = other_client.get("/login/verify")  # another browser half-way through the code step
    assert code_page.status_code == 200

    declined = cli(settings, "users", "reset-2fa", "alice", input="n\n")
    assert declined.exit_code == 1 and "Aborted" in declined.output
    assert user_row(settings)["mfa_enabled"]

    mailed_before = notices_mailed(settings)
    result = cli(settings, "users", "reset-2fa", "alice", input="y\n")
    assert result.exit_code == 0, result.output
    assert "10 recovery codes deleted; 1 sessions ended" in result.stdout
    user = user_row(settings)
    assert not user["mfa_enabled"] and user["phone_e164"] is None
    assert rows(settings, "SELECT count(*) AS n FROM recovery_codes")[0]["n"] == 0
    assert not signed_in(client)
    r = form_post(other_client, "/login/verify", code_page.text, {"code": verify.outbox[0].code})
    assert r.status_code == 303 and r.headers["location"].startswith("/login")  # the open step was closed
    [event] = events(settings, "admin_mfa_reset")
    assert event["ip"] == "cli"
    details = event["details"] if isinstance(event["details"], dict) else json.loads(event["details"])
    assert details["operator"] == "ops-tester" and details["recovery_codes_removed"] == 10
    assert notices_mailed(settings) == mailed_before + 1  # the owner is told by mail, with the change
    assert login(client, "alice").headers["location"] == "/profile"
    assert "An administrator turned off two-step verification" in client.get("/profile").text


def test_revoke_sessions_ends_sessions_on_every_browser(client: TestClient, other_client: TestClient,
                                                        settings: Settings) -> None:
    signup(client, "alice")
    assert login(other_client, "alice").status_code == 303
    result = cli(settings, "users", "revoke-sessions", "alice", "--yes")
    assert result.exit_code == 0, result.output
    assert "2 sessions ended" in result.stdout
    assert not signed_in(client) and not signed_in(other_client)
    assert len(events(settings, "admin_sessions_revoked")) == 1


def test_unlock_lifts_the_sign_in_lock_and_the_two_step_lock(client: TestClient, settings: Settings) -> None:
    make_2fa_user(client, settings)
    for _ in range(settings.login_max_failures):
        login(client, "alice", WRONG)
    execute(settings, "UPDATE users SET mfa_locked_until = :t, mfa_failed_count = 3",
            t="2999-01-01 00:00:00")
    assert login(client, "alice").status_code == 429
    shown = cli(settings, "users", "show", "alice").stdout
    assert "sign-in lock:   locked for" in shown and "two-step lock:  locked for" in shown
    result = cli(settings, "users", "unlock", "alice", "--yes")
    assert result.exit_code == 0, result.output
    assert "unlocked sign-in and two-step verification" in result.stdout
    assert login(client, "alice").status_code == 303  # the code step again
    assert user_row(settings)["mfa_locked_until"] is None
    assert "was not locked" in cli(settings, "users", "unlock", "alice", "--yes").stdout


def test_a_disabled_account_is_refused_like_a_wrong_password_and_its_sessions_end(
        client: TestClient, other_client: TestClient, settings: Settings) -> None:
    signup(client, "alice")
    result = cli(settings, "users", "disable", "alice", "--yes")
    assert result.exit_code == 0, result.output
    assert "disabled; 1 sessions ended" in result.stdout
    assert not signed_in(client)
    right = login(other_client, "alice")
    wrong = login(other_client, "nobody-here", WRONG)
    assert right.status_code == wrong.status_code == 422
    assert right.text.replace("alice", "") == wrong.text.replace("nobody-here", "")
    assert not signed_in(other_client)
    assert "already disabled" in cli(settings, "users", "disable", "alice", "--yes").stdout
    assert "status:         disabled since" in cli(settings, "users", "show", "alice").stdout

    assert cli(settings, "users", "enable", "alice", "--yes").exit_code == 0
    assert login(other_client, "alice").status_code == 303
    assert signed_in(other_client)
    assert [e["event"] for e in events(settings) if e["event"].startswith("admin_")] == [
        "admin_user_disabled", "admin_user_enabled"]


def test_reset_2fa_cancels_the_verifications_still_open_at_twilio(tw_client: TestClient, tw_settings: Settings,
                                                                  fake_verify: FakeVerify) -> None:
    make_2fa_user(tw_client, tw_settings)
    assert login(tw_client, "alice").headers["location"] == "/login/verify"
    [sid] = [c["verification_sid"] for c in rows(tw_settings, "SELECT verification_sid FROM mfa_challenges")]
    twilio = {"TWILIO_ACCOUNT_SID": fake_verify.account_sid, "TWILIO_AUTH_TOKEN": fake_verify.auth_token,
              "TWILIO_VERIFY_SERVICE_SID": fake_verify.service_sid, "TWILIO_VERIFY_BASE_URL": fake_verify.base_url}
    result = cli(tw_settings, "users", "reset-2fa", "alice", "--yes", **twilio)
    assert result.exit_code == 0, result.output
    assert [r["path"].rsplit("/", 1)[1] for r in fake_verify.requests("cancel")] == [sid]
