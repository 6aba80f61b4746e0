"""The code step against the fake Verify server through the real Twilio backend (R-O3, R-O8, R-O11, R-O14,
R-X1, R-X2, R-X4, R-X5)."""

from __future__ import annotations

import json
import logging
import time

import pytest
from starlette.testclient import TestClient

from tests.fakeverify.plugin import FakeVerify
from tests.support import (
    PARTIAL,
    PHONE,
    challenges_of,
    cookie_payload,
    csrf,
    enroll,
    events,
    fake_code,
    latest_challenge,
    location,
    login,
    make_2fa_user,
    path_of,
    rows,
    signup,
    token_post,
    tw_app,
    tw_client,
    tw_settings,
    user_row,
)
from webapp.settings import Settings

__all__ = ["tw_app", "tw_client", "tw_settings"]  # fixtures


def code_post(client: TestClient, code: str, headers: dict[str, str] | None = None) -> object:
    return client.post("/login/verify", data={"csrf_token": csrf(client, "/login"), "code": code},
                       headers=headers or {})


def signed_in_sessions(settings: Settings) -> list[dict[str, object]]:
    return rows(settings, "SELECT * FROM auth_sessions WHERE revoked_at IS NULL AND mfa_passed = :t", t=True)


def test_check_is_by_verification_sid_only(tw_client: TestClient, tw_settings: Settings,
                                           fake_verify: FakeVerify) -> None:
    """R-O8, K3, D-5: the check goes to /VerificationCheck with exactly Code + VerificationSid, no To."""
    make_2fa_user(tw_client, tw_settings)
    r = login(tw_client)
    assert location(r) == "/login/verify"
    sid = latest_challenge(tw_settings)["verification_sid"]
    assert sid and sid.startswith("VE")
    start = fake_verify.requests("start")[0]["form"]
    assert start["To"] == PHONE and start["Channel"] == "sms" and "CustomCode" not in start
    r = code_post(tw_client, fake_verify.code_for(sid))
    assert location(r) == "/profile"
    checks = fake_verify.requests("check")
    assert len(checks) == 1
    assert checks[0]["path"].endswith("/VerificationCheck")
    assert set(checks[0]["form"]) == {"Code", "VerificationSid"} and checks[0]["form"]["VerificationSid"] == sid


def test_replaced_challenge_is_cancelled_at_twilio(tw_client: TestClient, tw_settings: Settings,
                                                   fake_verify: FakeVerify) -> None:
    """R-O8, R-O16: a second password step cancels the first verification (Status=canceled)."""
    make_2fa_user(tw_client, tw_settings)
    login(tw_client)
    first = latest_challenge(tw_settings)["verification_sid"]
    login(tw_client)
    cancels = fake_verify.requests("cancel")
    assert [c["form"] for c in cancels] == [{"Status": "canceled"}]
    assert cancels[0]["path"].endswith(f"/Verifications/{first}")
    assert challenges_of(tw_settings)[1]["invalidated_at"] is not None


@pytest.mark.parametrize(("status", "code", "notice"), [(404, 20404, "login-expired"),
                                                        (429, 60202, "too-many-attempts")])
def test_check_answers_that_end_the_attempt(tw_client: TestClient, tw_settings: Settings, fake_verify: FakeVerify,
                                            status: int, code: int, notice: str) -> None:
    """R-O3, R-X4: 20404 → "expired, sign in again"; 60202 → "too many attempts", challenge invalidated;
    never a session."""
    make_2fa_user(tw_client, tw_settings)
    login(tw_client)
    right = fake_code(fake_verify, tw_settings)
    fake_verify.fault("check", status=status, code=code)
    r = code_post(tw_client, right)
    assert r.status_code == 303 and location(r) == f"/login?notice={notice}"
    assert latest_challenge(tw_settings)["invalidated_at"] is not None
    assert signed_in_sessions(tw_settings) == []
    assert path_of(tw_client.get("/profile")) == "/login"


def test_pending_check_is_a_wrong_code(tw_client: TestClient, tw_settings: Settings,
                                       fake_verify: FakeVerify) -> None:
    """R-O3: status `pending` (wrong code) → 422, counted, no session."""
    make_2fa_user(tw_client, tw_settings)
    login(tw_client)
    right = fake_code(fake_verify, tw_settings)
    r = code_post(tw_client, "000000" if right != "000000" else "111111")
    assert r.status_code == 422
    assert latest_challenge(tw_settings)["failed_checks"] == 1
    assert signed_in_sessions(tw_settings) == []


@pytest.mark.parametrize("fault", [
    {"status": 500, "code": 20500},
    {"status": 401, "code": 20003},
    {"drop": True},
    {"status": 502, "raw": "<html>Bad gateway</html>"},
    {"status": 400, "code": 60200},
])
def test_provider_failure_on_check_fails_closed_and_keeps_the_challenge(
        tw_client: TestClient, tw_settings: Settings, fake_verify: FakeVerify, fault: dict[str, object]) -> None:
    """R-X2, R-X3, K14: a failed check → 503 with a readable message, no session, challenge alive,
    failed_checks and mfa_failed_count unchanged; the right code still works afterwards."""
    make_2fa_user(tw_client, tw_settings)
    login(tw_client)
    right = fake_code(fake_verify, tw_settings)
    fake_verify.fault("check", **fault)  # type: ignore[arg-type]
    r = code_post(tw_client, right, PARTIAL)
    assert r.status_code == 503, r.text
    assert "<html" not in r.text and "couldn&#39;t reach the SMS service" in r.text
    ch = latest_challenge(tw_settings)
    assert ch["failed_checks"] == 0 and ch["invalidated_at"] is None and ch["consumed_at"] is None
    assert user_row(tw_settings)["mfa_failed_count"] == 0
    assert signed_in_sessions(tw_settings) == []
    r = code_post(tw_client, right)
    assert location(r) == "/profile"


SEND_ROWS = [
    # (fault kwargs, HTTP status the user gets, message fragment, call offered)
    ({"status": 429, "code": 60203}, 429, "Too many codes requested", False),
    ({"status": 403, "code": 60205}, 422, "can&#39;t receive text messages", True),
    ({"status": 429, "code": 60212}, 429, "busy", False),
    ({"status": 403, "code": 60410}, 422, "can&#39;t send a code to this number right now", False),
    ({"status": 403, "code": 60605}, 422, "can&#39;t send codes to that country", False),
    ({"status": 403, "code": 60238}, 422, "can&#39;t send a code", False),
    ({"status": 400, "code": 60006}, 422, "Check the number", False),
    ({"status": 429, "code": 20429, "times": 2}, 503, "busy", False),
    ({"status": 401, "code": 20003}, 503, "couldn&#39;t reach the SMS service", False),
    ({"status": 500, "code": 20500}, 503, "couldn&#39;t reach the SMS service", False),
    ({"drop": True}, 503, "couldn&#39;t reach the SMS service", False),
]


@pytest.mark.parametrize(("fault", "status", "message", "call"), SEND_ROWS,
                         ids=[str(r[0].get("code", "drop")) for r in SEND_ROWS])
def test_send_errors_at_the_password_step(tw_client: TestClient, tw_settings: Settings, fake_verify: FakeVerify,
                                          fault: dict[str, object], status: int, message: str, call: bool) -> None:
    """R-X4, R-X2, R-O11, K13: each Twilio error row → its status and message, no session, the challenge
    survives, no automatic voice fallback; "Call me instead" only after 60205."""
    make_2fa_user(tw_client, tw_settings)
    fake_verify.fault("start", **fault)  # type: ignore[arg-type]
    r = login(tw_client, headers=PARTIAL)
    assert r.status_code == status, r.text
    assert message in r.text and "<html" not in r.text
    assert ("Call me instead" in r.text) is call
    starts = fake_verify.requests("start")
    assert all(s["form"]["Channel"] == "sms" for s in starts)
    assert len(starts) == (2 if fault.get("code") == 20429 else 1)  # one retry, only after 20429 (R-X5)
    ch = latest_challenge(tw_settings)
    assert ch["invalidated_at"] is None and ch["sends"] == 0
    assert signed_in_sessions(tw_settings) == []
    assert path_of(tw_client.get("/profile")) == "/login"
    assert events(tw_settings, "mfa_code_send_failed")


def test_single_20429_is_retried_once(tw_client: TestClient, tw_settings: Settings, fake_verify: FakeVerify) -> None:
    """R-X5: one 20429 → one retry → the code is sent."""
    make_2fa_user(tw_client, tw_settings)
    fake_verify.fault("start", status=429, code=20429)
    r = login(tw_client)
    assert location(r) == "/login/verify"
    assert len(fake_verify.requests("start")) == 2


def test_landline_offers_an_explicit_call(tw_client: TestClient, tw_settings: Settings,
                                          fake_verify: FakeVerify) -> None:
    """R-O11: 60205 → "Call me instead"; POST /login/call sends one call on the same challenge."""
    make_2fa_user(tw_client, tw_settings, phone="+15005550006")
    r = login(tw_client)
    assert r.status_code == 422 and "Call me instead" in r.text
    r = token_post(tw_client, "/login/call", page="/login/verify")
    assert r.status_code == 200, r.text
    starts = fake_verify.requests("start")
    assert [s["form"]["Channel"] for s in starts] == ["sms", "call"]
    r = code_post(tw_client, fake_code(fake_verify, tw_settings))
    assert location(r) == "/profile"


@pytest.mark.parametrize("code", [60203, 60410, 60212])
def test_no_call_after_blocking_errors(tw_client: TestClient, tw_settings: Settings, fake_verify: FakeVerify,
                                       code: int) -> None:
    """R-O11: after 60203/60410/60212 no call is offered and none is made automatically."""
    make_2fa_user(tw_client, tw_settings)
    fake_verify.fault("start", status=429 if code != 60410 else 403, code=code)
    r = login(tw_client)
    assert "Call me instead" not in r.text
    assert [s["form"]["Channel"] for s in fake_verify.requests("start")] == ["sms"]
    if code == 60410:
        failed = events(tw_settings, "mfa_code_send_failed")
        details = failed[-1]["details"] if failed else {}
        details = json.loads(details) if isinstance(details, str) else details
        assert details["provider_code"] == 60410


def test_hung_provider_answers_within_the_timeout(tw_client: TestClient, tw_settings: Settings,
                                                  fake_verify: FakeVerify) -> None:
    """R-X1, R-X5: a start that hangs → 503 within timeout (1 s) + margin; not retried."""
    make_2fa_user(tw_client, tw_settings)
    fake_verify.fault("start", delay_s=5.0)
    began = time.monotonic()
    r = login(tw_client)
    elapsed = time.monotonic() - began
    assert r.status_code == 503, r.text
    assert elapsed < tw_settings.twilio_timeout_s + 2.0
    assert len(fake_verify.requests("start")) == 1
    assert latest_challenge(tw_settings)["invalidated_at"] is None


def test_no_code_or_number_in_logs_cookie_or_database(tw_client: TestClient, tw_settings: Settings,
                                                      fake_verify: FakeVerify,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    """R-O14, R-PR2, R-X6: enroll + sign in with caplog at DEBUG: no code, no full number anywhere; cookie clean."""
    caplog.set_level(logging.DEBUG)
    signup(tw_client)
    seen_codes: list[str] = []

    def code() -> str:
        seen_codes.append(fake_code(fake_verify, tw_settings))
        return seen_codes[-1]

    recovery = enroll(tw_client, code)
    assert set(cookie_payload(tw_client, tw_settings)) <= {"sid", "challenge_id", "csrf"}
    token_post(tw_client, "/logout")
    login(tw_client)
    payload = cookie_payload(tw_client, tw_settings)
    assert set(payload) <= {"sid", "challenge_id", "csrf"}
    r = code_post(tw_client, code())
    assert location(r) == "/profile"
    raw_cookie = tw_client.cookies.get(tw_settings.session_cookie) or ""
    # Database drivers at DEBUG and the test client's own httpx records are not the app's logging.
    mine = [rec for rec in caplog.records
            if not rec.name.startswith(("sqlalchemy", "aiosqlite", "psycopg", "httpx", "asyncio"))]
    logged = "".join(rec.getMessage() + str(rec.__dict__) for rec in mine)
    for secret in [*seen_codes, *recovery, *[c.replace("-", "") for c in recovery]]:
        assert secret not in logged
        assert secret not in str(payload) and secret not in raw_cookie
    for number in (PHONE, PHONE[1:], "4155550123"):
        assert number not in logged, [rec.name for rec in mine if number in rec.getMessage() + str(rec.__dict__)]
    assert not [r for r in caplog.records if r.name.startswith("twilio.http_client") and r.levelno < logging.WARNING]
    dump = str(rows(tw_settings, "SELECT * FROM mfa_challenges"))
    dump += str(rows(tw_settings, "SELECT * FROM security_events"))
    assert not any(c in dump for c in seen_codes)

