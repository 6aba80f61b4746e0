"""Gaps in the two-factor tests: concurrent code posts (R-O4), the per-user daily send cap (R-O9), a hung resend
(R-X1), the audit trail of a whole sign-in (R-A1, R-A2), hashed rate-limit keys (R-PR3), half-signed-in sessions
(R-S9) and the "did not complete the code step" banner (R-L6)."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx2
import pytest
import time_machine
from starlette.applications import Starlette
from starlette.testclient import TestClient

from tests.fakeverify.plugin import FakeVerify
from tests.support import (
    PASSWORD,
    PHONE,
    CountingVerify,
    challenges_of,
    code_post,
    csrf,
    events,
    execute,
    fake_code,
    form_post,
    latest_challenge,
    location,
    login,
    logout,
    make_2fa_user,
    path_of,
    rows,
    signup,
    stepup,
    token_post,
    tw_app,
    tw_client,
    tw_settings,
    user_row,
    wrong,
)
from webapp import create_app
from webapp.security.audit import JsonFormatter
from webapp.settings import Settings
from webapp.verify.gateway import CheckResult

__all__ = ["tw_app", "tw_client", "tw_settings"]  # fixtures

BANNER = "did not complete the code step"


@pytest.fixture
def traveller() -> Iterator[time_machine.Traveller]:
    with time_machine.travel(datetime(2030, 1, 1, 12, tzinfo=UTC), tick=False) as t:
        yield t


def details(event: dict[str, Any]) -> dict[str, Any]:
    value = event["details"]
    parsed: dict[str, Any] = json.loads(value) if isinstance(value, str) else dict(value or {})
    return parsed


def user_events(settings: Settings, username: str = "alice", after_id: int = 0) -> list[dict[str, Any]]:
    uid = user_row(settings, username)["id"]
    return [e for e in events(settings) if e["user_id"] == uid and e["id"] > after_id]


def mfa_sessions(settings: Settings) -> list[dict[str, Any]]:
    return rows(settings, "SELECT * FROM auth_sessions WHERE revoked_at IS NULL AND mfa_passed = :t", t=True)


def unescaped(text: str) -> str:
    return " ".join(text.replace("&#39;", "'").split())


# --- R-O4: two concurrent right answers ------------------------------------------------------------------------

class RacingVerify(CountingVerify):
    """Holds every check until two are in flight, then approves the right code for both: the worst a provider
    could do. Only the app's `consume` (UPDATE … WHERE consumed_at IS NULL) can then keep it to one session."""

    def __init__(self) -> None:
        super().__init__()
        self.gate: asyncio.Event | None = None
        self.overlapped = False

    async def check(self, verification_sid: str, code: str) -> CheckResult:
        self.checks.append((verification_sid, code))
        if self.gate is None:
            self.gate = asyncio.Event()
        if len(self.checks) >= 2:
            self.gate.set()
        try:
            await asyncio.wait_for(self.gate.wait(), timeout=5)
            self.overlapped = True
        except TimeoutError:
            pass  # the requests ran one after the other; the test fails on `overlapped`
        sent = next(m for m in self.outbox if m.sid == verification_sid)
        return CheckResult("approved" if code == sent.code else "pending")


async def _post_twice(app: Starlette, cookies: dict[str, str], data: dict[str, str]) -> list[httpx2.Response]:
    async with app.router.lifespan_context(app):
        transport = httpx2.ASGITransport(app=app)
        async with (
            httpx2.AsyncClient(transport=transport, base_url="https://testserver", cookies=cookies) as tab1,
            httpx2.AsyncClient(transport=transport, base_url="https://testserver", cookies=cookies) as tab2,
        ):
            return list(await asyncio.gather(tab1.post("/login/verify", data=data),
                                              tab2.post("/login/verify", data=data)))


def test_r_o4_two_concurrent_right_codes_make_one_session(settings: Settings) -> None:
    """R-O4: two concurrent POSTs of the right code with one pending cookie, both past the challenge load and the
    check before either consumes → exactly one mfa_passed session and one 303 to the target; the other → /login."""
    racing = RacingVerify()
    app = create_app(settings, verify=racing)
    with TestClient(app, base_url="https://testserver", follow_redirects=False) as c:
        make_2fa_user(c, settings)
        r = login(c, next="/settings")
        assert location(r) == "/login/verify"
        token = csrf(c, "/login/verify")
        pending = dict(c.cookies)
    code = racing.code
    answers = asyncio.run(_post_twice(app, pending, {"csrf_token": token, "code": code}))
    assert racing.overlapped and len(racing.checks) == 2, "the two requests did not race"
    statuses = sorted(a.status_code for a in answers)
    assert statuses == [303, 303], [(a.status_code, a.text[:200]) for a in answers]
    targets = sorted(a.headers["location"].split("?")[0] for a in answers)
    assert targets == ["/login", "/settings"]
    assert len(mfa_sessions(settings)) == 1
    assert len(rows(settings, "SELECT * FROM auth_sessions")) == 1
    assert latest_challenge(settings)["consumed_at"] is not None
    wins = [e for e in events(settings, "authn_login_success") if details(e).get("factor") == "sms"]
    assert len(wins) == 1


# --- R-O9: per-user daily send cap -----------------------------------------------------------------------------

def test_r_o9_daily_send_cap_per_user_across_challenges(settings: Settings, verify: CountingVerify,
                                                        traveller: time_machine.Traveller) -> None:
    """R-O9, D-12: with 3 sends/user/day, sends across several sign-in attempts (password steps and a resend) add
    up; the 4th → 429 + Retry-After (the rest of the day), a readable message, no send, an
    excess_rate_limit_exceeded row; the next day a send works again and the code signs in."""
    capped = settings.with_overrides(mfa_sends_per_user_per_day=3)
    app = create_app(capped, verify=verify)
    with TestClient(app, base_url="https://testserver", follow_redirects=False) as c:
        make_2fa_user(c, capped)
        assert location(login(c)) == "/login/verify"  # send 1
        traveller.shift(timedelta(seconds=31))
        r = token_post(c, "/login/resend", page="/login/verify")  # send 2, same challenge
        assert r.status_code == 200, r.text
        traveller.shift(timedelta(minutes=1))
        assert location(login(c)) == "/login/verify"  # send 3, a new challenge
        assert len(verify.starts) == 3
        traveller.shift(timedelta(minutes=1))
        r = login(c)  # send 4: over the cap
        assert r.status_code == 429, r.text
        retry_after = int(r.headers["Retry-After"])
        assert 86400 - 200 < retry_after <= 86400  # the window opened with the first send, 2.5 minutes ago
        assert "today's limit of codes" in unescaped(r.text)
        assert len(verify.starts) == 3
        ch = latest_challenge(capped)
        assert ch["sends"] == 0 and ch["last_sent_at"] is None and ch["invalidated_at"] is None
        # A resend on the refused challenge is refused the same way, without a send.
        r = token_post(c, "/login/resend", page="/login/verify")
        assert r.status_code == 429 and "today's limit of codes" in unescaped(r.text)
        assert len(verify.starts) == 3
        uid = user_row(capped)["id"]
        hits = [e for e in events(capped, "excess_rate_limit_exceeded") if e["user_id"] == uid]
        assert len(hits) == 2 and all(details(e)["limit"] == "sends-user" for e in hits)
        assert all(e["outcome"] == "failure" for e in hits)
        traveller.shift(timedelta(days=1))
        r = login(c)
        assert location(r) == "/login/verify", r.text
        assert len(verify.starts) == 4
        r = code_post(c, verify.code)
        assert location(r) == "/profile"


# --- R-X1: a hung provider on resend ---------------------------------------------------------------------------

def test_r_x1_hung_resend_answers_503_in_time_and_the_challenge_survives(
        tw_client: TestClient, tw_settings: Settings, fake_verify: FakeVerify) -> None:
    """R-X1, R-X2: POST /login/resend while Verify hangs past twilio_timeout_s → 503 within timeout + 1.5 s with
    a readable message; the challenge and its counters are untouched, and after the cooldown a resend works and
    the code signs in."""
    make_2fa_user(tw_client, tw_settings)
    with time_machine.travel(datetime.now(UTC), tick=True) as traveller:
        assert location(login(tw_client)) == "/login/verify"
        traveller.shift(timedelta(seconds=tw_settings.mfa_resend_cooldown_s + 1))
        token = csrf(tw_client, "/login/verify")
        fake_verify.fault("start", delay_s=tw_settings.twilio_timeout_s + 2.0)
        began = time.monotonic()
        r = tw_client.post("/login/resend", data={"csrf_token": token})
        elapsed = time.monotonic() - began
        assert r.status_code == 503, r.text
        assert elapsed < tw_settings.twilio_timeout_s + 1.5, elapsed
        assert "couldn't reach the SMS service" in unescaped(r.text)
        assert int(r.headers["Retry-After"]) > 0
        ch = latest_challenge(tw_settings)
        assert ch["invalidated_at"] is None and ch["consumed_at"] is None
        assert ch["sends"] == 1 and ch["failed_checks"] == 0
        assert mfa_sessions(tw_settings) == []
        traveller.shift(timedelta(seconds=tw_settings.mfa_resend_cooldown_s + 1))
        r = token_post(tw_client, "/login/resend", page="/login/verify")
        assert r.status_code == 200, r.text
        assert latest_challenge(tw_settings)["sends"] == 2
        signed_in = code_post(tw_client, fake_code(fake_verify, tw_settings))
        assert location(signed_in) == "/profile"


# --- R-A1, R-A2: the audit trail of one scenario --------------------------------------------------------------

SCENARIO_EVENTS = [
    "authn_login_fail",       # wrong password
    "authn_login_successafterfail",  # password step after a failure (factor=password, second step required)
    "mfa_code_sent",          # first code
    "mfa_check_fail",         # wrong code
    "authn_login_success",    # right code (factor=sms)
    "mfa_code_sent",          # disable step-up: password, then a code
    "mfa_disabled",           # code approved
    "session_logout",
]
# Events that a code send or check produced: R-A2 wants the channel on them.
CODE_EVENTS = {"mfa_code_sent", "mfa_code_send_failed", "mfa_check_fail", "mfa_check_ok", "mfa_disabled",
               "mfa_enabled", "mfa_phone_changed"}


def test_r_a1_r_a2_scenario_events_in_order_with_required_fields(
        client: TestClient, settings: Settings, verify: CountingVerify, caplog: pytest.LogCaptureFixture) -> None:
    """R-A1, R-A2: failed password, password step, wrong code, right code, disable (password + code), logout →
    exactly SCENARIO_EVENTS for the user, in order; each row has ts, ip, request_id, outcome, ua_hash; events of
    a code send or check (and the sms-factor sign-in) carry the channel; the JSON log lines match, `ts` ends Z."""
    make_2fa_user(client, settings)
    start = max([e["id"] for e in events(settings)], default=0)
    caplog.set_level(logging.INFO, logger="webapp.audit")
    caplog.clear()
    r = login(client, password=PASSWORD + "x")
    assert r.status_code == 422
    assert location(login(client)) == "/login/verify"
    assert code_post(client, wrong(verify)).status_code == 422
    assert location(code_post(client, verify.code)) == "/profile"
    r = stepup(client, "disable")
    assert r.status_code == 200
    r = form_post(client, "/2fa/verify", r.text, {"code": verify.code})
    assert path_of(r) == "/profile"
    assert not user_row(settings)["mfa_enabled"]
    logout(client)

    found = user_events(settings, after_id=start)
    assert [e["event"] for e in found] == SCENARIO_EVENTS
    assert [e["outcome"] for e in found] == ["failure", "success", "success", "failure", "success", "success",
                                             "success", "success"]
    for e in found:
        assert isinstance(e["ts"], datetime) or re.match(r"^\d{4}-\d\d-\d\d[ T]\d\d:\d\d", str(e["ts"])), e
        assert e["ip"] == "testclient", e
        assert re.fullmatch(r"[0-9a-f]{16}", e["request_id"]), e
        assert re.fullmatch(r"[0-9a-f]{16}", e["ua_hash"]), e
    logins = [details(e) for e in found if e["event"].startswith("authn_login_success")]
    assert [d.get("factor") for d in logins] == ["password", "sms"]
    for e in found:
        if e["event"] in CODE_EVENTS or details(e).get("factor") == "sms":
            assert details(e).get("channel") == "sms", (e["event"], details(e))
    # One id per request: only the password step's POST wrote two rows (its success and the first send).
    ids = [e["request_id"] for e in found]
    assert ids[1] == ids[2] and len(set(ids)) == len(ids) - 1

    logged = [json.loads(JsonFormatter().format(rec)) for rec in caplog.records if rec.name == "webapp.audit"]
    uid = user_row(settings)["id"]
    mine = [line for line in logged if line.get("user_id") == uid]
    assert [line["event"] for line in mine] == SCENARIO_EVENTS
    for line in mine:
        assert line["ts"].endswith("Z") and line["ip"] and line["request_id"] and line["outcome"]


def test_r_a1_password_step_after_failures_is_successafterfail_for_2fa_users(
        client: TestClient, settings: Settings, verify: CountingVerify) -> None:
    """R-A1 (CS-LogVocab): a password success after failed attempts is `authn_login_successafterfail`, whether or
    not a code step follows (the non-2FA branch already does this)."""
    make_2fa_user(client, settings)
    login(client, password=PASSWORD + "x")
    start = max(e["id"] for e in events(settings))
    assert location(login(client)) == "/login/verify"
    assert next(e["event"] for e in user_events(settings, after_id=start)) == "authn_login_successafterfail"


# --- R-PR3: hashed rate-limit keys ------------------------------------------------------------------------------

def test_r_pr3_rate_limit_key_is_a_hash_and_no_pii_leaves_outside_to(tw_settings: Settings,
                                                                      fake_verify: FakeVerify) -> None:
    """R-PR3, R-O10: with a Service Rate Limit configured, RateLimits is JSON {name: 64-hex keyed hash}; no
    recorded request (start, resend, check, cancel) carries the username or a run of the number's digits in any
    form value other than To, nor in its path."""
    username = "quokka_rider"
    configured = tw_settings.with_overrides(twilio_rate_limit_name="user_key")
    app = create_app(configured, verify=None)
    with TestClient(app, base_url="https://testserver", follow_redirects=False) as c:
        make_2fa_user(c, configured, username)
        with time_machine.travel(datetime.now(UTC), tick=True) as traveller:
            assert location(login(c, username)) == "/login/verify"
            traveller.shift(timedelta(seconds=31))
            assert token_post(c, "/login/resend", page="/login/verify").status_code == 200
            assert location(login(c, username)) == "/login/verify"  # cancels the first
            r = code_post(c, fake_code(fake_verify, configured, username))
            assert location(r) == "/profile"
    recorded = fake_verify.requests()
    assert {r["operation"] for r in recorded} >= {"start", "check", "cancel"}
    starts = fake_verify.requests("start")
    assert len(starts) == 3
    uid = str(user_row(configured, username)["id"])
    digits = PHONE.lstrip("+")
    runs = {digits[i:i + 7] for i in range(len(digits) - 6)}
    for start in starts:
        limits = json.loads(start["form"]["RateLimits"])
        assert list(limits) == ["user_key"]
        key = limits["user_key"]
        assert re.fullmatch(r"[0-9a-f]{64}", key), key
        # Keyed, not a bare hash anyone could recompute from a number, a name or an id.
        assert key not in {hashlib.sha256(v.encode()).hexdigest() for v in (PHONE, digits, username, uid)}
    assert len({json.loads(s["form"]["RateLimits"])["user_key"] for s in starts}) == 1
    for req in recorded:
        values = [v for k, v in req["form"].items() if k != "To"] + [req["path"]]
        for value in values:
            assert username not in value.lower(), (req["operation"], value)
            assert not any(run in value for run in runs), (req["operation"], value)


# --- R-S9: a session that never passed the second factor ------------------------------------------------------

def test_r_s9_session_without_mfa_passed_stops_authorising_once_2fa_is_on(
        client: TestClient, other_client: TestClient, settings: Settings, verify: CountingVerify) -> None:
    """R-S9: a live, current-epoch session row with mfa_passed=false (signed in while 2FA was off) no longer
    authorises /profile once the user has mfa_enabled; the same row with mfa_passed=true would, so the flag is
    what decides."""
    signup(other_client)
    captured = dict(other_client.cookies)
    assert other_client.get("/profile").status_code == 200
    # 2FA turned on elsewhere without bumping the epoch: only R-S9 can refuse this row.
    execute(settings, "UPDATE users SET mfa_enabled = :t, phone_e164 = :p WHERE username = 'alice'", t=True, p=PHONE)
    [row] = rows(settings, "SELECT * FROM auth_sessions")
    assert not row["mfa_passed"] and row["revoked_at"] is None
    assert row["epoch"] == user_row(settings)["session_epoch"]
    r = other_client.get("/profile")
    assert r.status_code == 303 and path_of(r) == "/login"
    r = other_client.post("/2fa/disable", data={"csrf_token": csrf(other_client, "/login"), "password": PASSWORD})
    assert r.status_code == 303 and path_of(r) == "/login"
    assert user_row(settings)["mfa_enabled"]
    execute(settings, "UPDATE auth_sessions SET mfa_passed = :t", t=True)
    with TestClient(client.app, base_url="https://testserver", follow_redirects=False, cookies=captured) as again:
        assert again.get("/profile").status_code == 200


# --- R-L6: banner after a failed or abandoned second step ----------------------------------------------------

def _full_login(client: TestClient, verify: CountingVerify) -> None:
    assert location(login(client)) == "/login/verify"
    assert location(code_post(client, verify.code)) == "/profile"


def test_r_l6_five_wrong_codes_then_later_login_shows_banner_once(
        client: TestClient, settings: Settings, verify: CountingVerify, traveller: time_machine.Traveller) -> None:
    """R-L6: password right, 5 wrong codes (challenge over, mfa_check_fail ×5) → the next full sign-in shows the
    "did not complete the code step" banner with the UTC time once; a reload no longer shows it."""
    make_2fa_user(client, settings)
    assert location(login(client)) == "/login/verify"
    bad = wrong(verify)
    for _ in range(5):
        r = code_post(client, bad)
    assert location(r) == "/login?notice=too-many-attempts"
    assert len(user_events(settings)) and len(events(settings, "mfa_check_fail")) == 5
    traveller.shift(timedelta(hours=2))
    _full_login(client, verify)
    page = unescaped(client.get("/profile").text)
    assert page.count(BANNER) == 1
    assert "2030-01-01 12:00 UTC" in page  # when the attempt failed, not now
    assert BANNER not in client.get("/profile").text


@pytest.mark.parametrize("same_browser", [True, False], ids=["same-browser", "other-browser"])
def test_r_l6_abandoned_code_step_shows_banner_at_next_login(
        client: TestClient, other_client: TestClient, settings: Settings, verify: CountingVerify,
        traveller: time_machine.Traveller, same_browser: bool) -> None:
    """R-L6: a password step left without a code (here or in another browser), then a full sign-in → the banner
    once; a reload no longer shows it."""
    make_2fa_user(client, settings)
    abandoner = client if same_browser else other_client
    assert location(login(abandoner)) == "/login/verify"
    traveller.shift(timedelta(minutes=20))
    _full_login(client, verify)
    page = unescaped(client.get("/profile").text)
    assert page.count(BANNER) == 1
    assert "2030-01-01 12:00 UTC" in page  # when the password was entered, not when the owner signed in
    assert BANNER not in client.get("/profile").text


def test_r_l6_banner_is_not_repeated_at_later_clean_sign_ins(
        client: TestClient, settings: Settings, verify: CountingVerify, traveller: time_machine.Traveller) -> None:
    """R-L6: once reported, an old failed attempt does not bring the banner back at every later sign-in."""
    make_2fa_user(client, settings)
    login(client)  # abandoned
    traveller.shift(timedelta(minutes=5))
    _full_login(client, verify)
    assert client.get("/profile").text.count(BANNER) == 1
    for _ in range(2):
        logout(client)
        traveller.shift(timedelta(hours=1))
        _full_login(client, verify)
        assert BANNER not in client.get("/profile").text
    notices = rows(settings, "SELECT * FROM security_notices WHERE kind = 'second_step_failed'")
    assert len(notices) == 1


def test_r_l6_attempt_started_during_the_code_step_is_reported(
        client: TestClient, other_client: TestClient, settings: Settings, verify: CountingVerify,
        traveller: time_machine.Traveller) -> None:
    """R-L6: someone else's password step while the owner is at the code step is closed by the owner's sign-in;
    it is reported then (with its own time), not swallowed."""
    make_2fa_user(client, settings)
    assert location(login(client)) == "/login/verify"
    owner_code = verify.code
    traveller.shift(timedelta(minutes=1))
    assert location(login(other_client)) == "/login/verify"
    traveller.shift(timedelta(minutes=1))
    assert location(code_post(client, owner_code)) == "/profile"
    page = unescaped(client.get("/profile").text)
    assert page.count(BANNER) == 1 and "2030-01-01 12:01 UTC" in page
    assert challenges_of(settings)[0]["invalidated_at"] is not None  # the other browser's attempt is over
