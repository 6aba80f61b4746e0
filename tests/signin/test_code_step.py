"""The sign-in code step (R-O4…R-O7, R-O15, R-O16, R-PR1, R-S3, R-H2, R-H3) with the development backend."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from starlette.testclient import TestClient

from tests.support import (
    CLIENT_KINDS,
    NO_JS,
    PARTIAL,
    PASSWORD,
    PHONE,
    CountingVerify,
    challenges_of,
    code_post,
    cookie_payload,
    csrf,
    events,
    execute,
    latest_challenge,
    location,
    make_2fa_user,
    password_step,
    path_of,
    rows,
    token_post,
    user_row,
    wrong,
)
from webapp.settings import Settings


@pytest.mark.parametrize("kind", list(CLIENT_KINDS))
def test_password_then_code_signs_in_for_each_client_kind(client: TestClient, settings: Settings,
                                                          verify: CountingVerify, kind: str) -> None:
    """R-O4, R-H3: the password step leads to the code step; the right code crosses the boundary."""
    headers = CLIENT_KINDS[kind]
    make_2fa_user(client, settings)
    r = password_step(client, headers=headers)
    assert len(verify.starts) == 1 and verify.starts[0] == (PHONE, "sms")
    if kind == "partial":
        assert r.status_code == 200 and "<html" not in r.text
        assert r.headers["HX-Push-Url"] == "/login/verify"
        assert 'autocomplete="one-time-code"' in r.text and 'inputmode="numeric"' in r.text
    elif kind == "boosted":
        assert path_of(r) == "/login/verify"  # boosted: a full-page navigation (HX-Redirect)
    else:
        assert r.status_code == 303 and location(r) == "/login/verify"
    # Pending grants nothing (R-O15).
    assert path_of(client.get("/profile")) == "/login"
    r = code_post(client, verify.code, headers)
    if headers.get("HX-Request"):
        assert r.status_code == 200 and r.headers["HX-Redirect"] == "/profile"
    else:
        assert r.status_code == 303 and location(r) == "/profile"
    assert client.get("/profile").status_code == 200
    ch = latest_challenge(settings)
    assert ch["consumed_at"] is not None
    assert set(cookie_payload(client, settings)) <= {"sid", "challenge_id", "csrf"}


def test_replaying_the_pending_cookie_after_success_is_refused_without_a_check(
        client: TestClient, settings: Settings, verify: CountingVerify) -> None:
    """R-O4, R-S3: consumed once; the captured pending cookie + code → 303 /login and no second check call."""
    make_2fa_user(client, settings)
    password_step(client)
    pending = dict(client.cookies)
    token = csrf(client, "/login/verify")
    code = verify.code
    r = client.post("/login/verify", data={"csrf_token": token, "code": code})
    assert r.status_code == 303 and location(r) == "/profile"
    assert len(verify.checks) == 1
    with TestClient(client.app, base_url="https://testserver", follow_redirects=False, cookies=pending) as replay:
        r = replay.post("/login/verify", data={"csrf_token": token, "code": code})
        assert r.status_code == 303 and path_of(r) == "/login"
        assert path_of(replay.get("/profile")) == "/login"
    assert len(verify.checks) == 1
    sessions = rows(
        settings, "SELECT * FROM auth_sessions WHERE revoked_at IS NULL AND mfa_passed = :t", t=True)
    assert len(sessions) == 1


def test_five_wrong_codes_end_the_attempt_and_cookie_replay_does_not_reset(
        client: TestClient, settings: Settings, verify: CountingVerify) -> None:
    """R-O5, K11: the 5th wrong code invalidates the challenge; restoring the old cookie does not help."""
    make_2fa_user(client, settings)
    password_step(client)
    pending = dict(client.cookies)
    bad = wrong(verify)
    for attempt in range(1, 5):
        r = code_post(client, bad)
        assert r.status_code == 422, r.text
        left = 5 - attempt
        assert f"{left} attempt" in r.text
    assert latest_challenge(settings)["failed_checks"] == 4
    r = code_post(client, bad)
    assert r.status_code == 303 and location(r) == "/login?notice=too-many-attempts"
    assert "Too many wrong codes" in client.get(location(r)).text
    assert latest_challenge(settings)["invalidated_at"] is not None
    checks_before = len(verify.checks)
    client.cookies.clear()
    client.cookies.update(pending)
    r = code_post(client, verify.code)
    assert r.status_code == 303 and path_of(r) == "/login"
    assert len(verify.checks) == checks_before
    assert path_of(client.get("/profile")) == "/login"
    assert user_row(settings)["mfa_failed_count"] == 5


def test_resend_does_not_reset_counters(client: TestClient, settings: Settings, verify: CountingVerify) -> None:
    """R-O6: 4 wrong, resend, 1 wrong → challenge and user counters at 5, not 1."""
    make_2fa_user(client, settings)
    with time_machine.travel(datetime(2030, 1, 1, 12, tzinfo=UTC), tick=False) as traveller:
        password_step(client)
        bad = wrong(verify)
        for _ in range(4):
            assert code_post(client, bad).status_code == 422
        traveller.shift(timedelta(seconds=31))
        r = token_post(client, "/login/resend", page="/login/verify")
        assert r.status_code == 200, r.text
        assert len(verify.starts) == 2
        assert latest_challenge(settings)["failed_checks"] == 4
        r = code_post(client, bad)
    assert user_row(settings)["mfa_failed_count"] == 5
    assert path_of(r) == "/login"  # the challenge's 5th failure ends it


def test_user_lock_at_ten_failures_blocks_sends_until_cooldown_then_success_resets(
        client: TestClient, settings: Settings, verify: CountingVerify) -> None:
    """R-O6: failures accumulate across challenges; at 10 the password step says "temporarily locked", sends
    nothing; after the cooldown a right code works and the counter is 0."""
    make_2fa_user(client, settings)
    with time_machine.travel(datetime(2030, 1, 1, 12, tzinfo=UTC), tick=False) as traveller:
        for _ in range(2):
            password_step(client)
            bad = wrong(verify)
            for _ in range(5):
                r = code_post(client, bad)
        assert path_of(r) == "/login"
        assert user_row(settings)["mfa_locked_until"] is not None
        assert events(settings, "mfa_lock")
        sends = len(verify.starts)
        r = password_step(client)
        assert r.status_code == 429
        assert "temporarily locked" in r.text
        assert "Retry-After" in r.headers
        assert len(verify.starts) == sends
        traveller.shift(timedelta(seconds=settings.mfa_lock_s + 1))
        r = password_step(client)
        assert r.status_code == 303, r.text
        assert len(verify.starts) == sends + 1
        code_post(client, wrong(verify))
        assert user_row(settings)["mfa_failed_count"] == 1
        r = code_post(client, verify.code)
        assert location(r) == "/profile"
    assert user_row(settings)["mfa_failed_count"] == 0
    assert user_row(settings)["mfa_locked_until"] is None


def test_code_after_ten_minutes_times_out_without_a_check(
        client: TestClient, settings: Settings, verify: CountingVerify) -> None:
    """R-O7: password at T, right code at T+10:01 → 303 /login "timed out", no check call."""
    make_2fa_user(client, settings)
    with time_machine.travel(datetime(2030, 1, 1, 12, tzinfo=UTC), tick=False) as traveller:
        password_step(client)
        token = csrf(client, "/login/verify")
        traveller.shift(timedelta(minutes=10, seconds=1))
        r = client.post("/login/verify", data={"csrf_token": token, "code": verify.code})
    assert r.status_code == 303 and location(r) == "/login?notice=login-expired"
    assert "timed out" in client.get(location(r)).text
    assert verify.checks == []
    assert path_of(client.get("/profile")) == "/login"


def test_fresh_code_step_without_a_challenge_redirects(client: TestClient, settings: Settings,
                                                       verify: CountingVerify) -> None:
    """R-O15, K6, K9: no live login challenge → 303 /login for GET and every POST; never a 500."""
    assert path_of(client.get("/login/verify")) == "/login"
    assert path_of(client.get("/login/recovery")) == "/login"
    token = csrf(client, "/login")
    for path in ("/login/verify", "/login/resend", "/login/call", "/login/recovery"):
        r = client.post(path, data={"csrf_token": token, "code": "123456", "recovery_code": "x"})
        assert r.status_code == 303 and path_of(r) == "/login", (path, r.status_code)
    assert verify.starts == [] and verify.checks == []


def test_random_challenge_id_is_a_sequence_failure(client: TestClient, settings: Settings,
                                                   verify: CountingVerify) -> None:
    """R-O15: a forged challenge_id (validly signed cookie, unknown id) → 303 /login and a `sequence_fail` event."""
    make_2fa_user(client, settings)
    password_step(client)
    # Make the stored challenge unknown to the server: the cookie now holds an id with no row.
    execute(settings, "DELETE FROM mfa_challenges")
    r = client.get("/login/verify")
    assert r.status_code == 303 and path_of(r) == "/login"
    assert events(settings, "sequence_fail")


def test_pending_grants_no_authenticated_route(client: TestClient, settings: Settings,
                                               verify: CountingVerify) -> None:
    """R-O15, K7: pending cookie → /profile and POST /2fa/disable redirect to /login."""
    make_2fa_user(client, settings)
    password_step(client)
    assert path_of(client.get("/profile")) == "/login"
    token = csrf(client, "/login/verify")
    r = client.post("/2fa/disable", data={"csrf_token": token, "password": PASSWORD})
    assert r.status_code == 303 and path_of(r) == "/login"
    assert user_row(settings)["mfa_enabled"]


def test_second_password_step_replaces_the_first_users_challenge(
        client: TestClient, settings: Settings, verify: CountingVerify, other_client: TestClient) -> None:
    """R-O16: alice's password, then bob's in the same browser, then bob's code → bob's session; alice's
    challenge invalidated and its verification cancelled."""
    make_2fa_user(client, settings, "alice")
    make_2fa_user(client, settings, "bob", phone="+14155550199")
    password_step(client, "alice")
    alice_sid = latest_challenge(settings, "alice")["verification_sid"]
    password_step(client, "bob")
    assert latest_challenge(settings, "alice")["invalidated_at"] is not None
    assert alice_sid in verify.cancels
    r = code_post(client, verify.code)
    assert location(r) == "/profile"
    page = client.get("/profile").text
    assert "bob" in page.lower()


def test_masked_number_on_code_step_and_profile(client: TestClient, settings: Settings,
                                                verify: CountingVerify) -> None:
    """R-PR1: neither the full number nor its national digits on /login/verify or /profile; last two shown."""
    make_2fa_user(client, settings)
    password_step(client)
    page = client.get("/login/verify").text
    assert PHONE not in page and "4155550123" not in page and "23" in page
    code_post(client, verify.code)
    page = client.get("/profile").text
    assert PHONE not in page and "4155550123" not in page and "23" in page


def test_partial_errors_are_fragments_and_plain_errors_are_pages(
        client: TestClient, settings: Settings, verify: CountingVerify) -> None:
    """R-H2: a wrong code answers a partial request with a 422 fragment (no <html), a plain one with a page."""
    make_2fa_user(client, settings)
    password_step(client, headers=PARTIAL)
    bad = wrong(verify)
    r = code_post(client, bad, PARTIAL)
    assert r.status_code == 422 and "<html" not in r.text and 'id="auth-step"' in r.text
    r = code_post(client, bad, NO_JS)
    assert r.status_code == 422 and "<html" in r.text
    # Resend within the cooldown: 429 with Retry-After, still a fragment (R-O9, R-H2).
    r = client.post("/login/resend", data={"csrf_token": csrf(client, "/login/verify")}, headers=PARTIAL)
    assert r.status_code == 429 and "<html" not in r.text and int(r.headers["Retry-After"]) > 0
    assert len(verify.starts) == 1
    assert latest_challenge(settings)["sends"] == 1


def test_malformed_code_counts_without_a_check_call(client: TestClient, settings: Settings,
                                                    verify: CountingVerify) -> None:
    """R-V4: `12ab56` → "invalid"/6-digit message, failed_checks +1, no check call; spaces/hyphens forgiven."""
    make_2fa_user(client, settings)
    password_step(client)
    r = code_post(client, "12ab56")
    assert r.status_code == 422 and "6-digit code" in r.text
    assert verify.checks == []
    assert latest_challenge(settings)["failed_checks"] == 1
    assert user_row(settings)["mfa_failed_count"] == 1
    code = verify.code
    r = code_post(client, f"{code[:3]} {code[3:]}")
    assert location(r) == "/profile"


def test_cancel_discards_the_challenge(client: TestClient, settings: Settings, verify: CountingVerify) -> None:
    """R-O8: "Start over" invalidates the challenge and cancels its verification."""
    make_2fa_user(client, settings)
    password_step(client)
    r = token_post(client, "/login/cancel", page="/login/verify")
    assert path_of(r) == "/login"
    ch = challenges_of(settings)[0]
    assert ch["invalidated_at"] is not None and ch["verification_sid"] in verify.cancels
    assert path_of(client.get("/login/verify")) == "/login"
