"""Signing in: the three clients, throttling and enumeration resistance (R-L1…R-L4, R-P4, R-P6, R-H2, R-H3)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import bcrypt
import pytest
import time_machine
from starlette.testclient import TestClient

from tests.support import BOOSTED, CLIENT_KINDS, PARTIAL, PASSWORD, csrf, login, register, sql
from webapp.identity import passwords
from webapp.settings import Settings

LOGIN_ERROR = "Incorrect username or password."


def session_rows(settings: Settings) -> int:
    return int(sql(settings, "SELECT count(*) FROM auth_sessions")[0][0])


def lock_counts(settings: Settings) -> list[int]:
    return [row[0] for row in sql(settings, "SELECT count FROM throttles WHERE key LIKE 'login-user:%'")]


class CountingBcrypt:
    """Stands in for the `bcrypt` module inside webapp.identity.passwords and counts `checkpw` calls."""

    def __init__(self) -> None:
        self.checks = 0
        self.hashpw = bcrypt.hashpw
        self.gensalt = bcrypt.gensalt

    def checkpw(self, password: bytes, hashed: bytes) -> bool:
        self.checks += 1
        return bcrypt.checkpw(password, hashed)


@pytest.fixture
def spy(monkeypatch: pytest.MonkeyPatch) -> CountingBcrypt:
    counting = CountingBcrypt()
    monkeypatch.setattr(passwords, "bcrypt", counting)
    return counting


@pytest.fixture
def alice(client: TestClient) -> Iterator[TestClient]:
    assert register(client).status_code == 303
    yield client


def normalised(body: str) -> str:
    """The page minus what legitimately differs between two attempts: the typed username and the CSRF token."""
    body = re.sub(r'(name="username" type="text") value="[^"]*"', r"\1", body)
    return re.sub(r'"[A-Za-z0-9_-]{43}"', '"TOKEN"', body)


# --- the three clients -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["no-js", "boosted"])
def test_k5_anonymous_login_form_is_a_full_page(client: TestClient, kind: str) -> None:
    r = client.get("/login", headers=CLIENT_KINDS[kind])
    assert r.status_code == 200
    assert "<html" in r.text
    assert 'id="auth-step"' in r.text
    assert r.headers["cache-control"] == "no-store"
    assert r.headers["vary"] == "HX-Request, HX-Request-Type"


def test_login_form_partial_request_gets_the_fragment(client: TestClient) -> None:
    r = client.get("/login", headers=PARTIAL)
    assert r.status_code == 200
    assert "<html" not in r.text
    assert r.text.lstrip().startswith("<title>Sign in")
    assert 'id="auth-step"' in r.text
    assert r.headers["vary"] == "HX-Request, HX-Request-Type"


def test_login_submit_without_js_redirects_303_to_profile(alice: TestClient, settings: Settings) -> None:
    r = login(alice)
    assert r.status_code == 303
    assert r.headers["location"] == "/profile"
    assert "session=" in r.headers["set-cookie"]
    assert session_rows(settings) == 1
    assert alice.get("/profile").status_code == 200


@pytest.mark.parametrize("kind", ["partial", "boosted"])
def test_r_h3_login_over_htmx_answers_200_with_hx_redirect(alice: TestClient, settings: Settings, kind: str) -> None:
    r = login(alice, headers=CLIENT_KINDS[kind])
    assert r.status_code == 200
    assert r.headers["hx-redirect"] == "/profile"
    assert "location" not in r.headers
    assert r.headers["vary"] == "HX-Request, HX-Request-Type"
    assert session_rows(settings) == 1


@pytest.mark.parametrize("kind", ["no-js", "boosted"])
def test_login_wrong_password_is_a_422_full_page_with_generic_error(alice: TestClient, kind: str) -> None:
    r = login(alice, password="not-the-right-password", headers=CLIENT_KINDS[kind])
    assert r.status_code == 422
    assert "<html" in r.text
    assert LOGIN_ERROR in r.text
    assert 'aria-invalid="true"' in r.text


def test_r_h2_login_wrong_password_partial_is_a_422_fragment(alice: TestClient, settings: Settings) -> None:
    r = login(alice, password="not-the-right-password", headers=PARTIAL)
    assert r.status_code == 422
    assert "<html" not in r.text
    assert LOGIN_ERROR in r.text
    assert 'value="alice"' in r.text
    assert "not-the-right-password" not in r.text
    assert "set-cookie" not in r.headers or "sid" not in r.headers["set-cookie"]
    assert session_rows(settings) == 0


@pytest.mark.parametrize("kind", ["no-js", "partial", "boosted"])
def test_signed_in_user_visiting_login_leaves_for_profile(alice: TestClient, kind: str) -> None:
    login(alice)
    r = alice.get("/login", headers=CLIENT_KINDS[kind])
    if kind == "no-js":
        assert (r.status_code, r.headers["location"]) == (303, "/profile")
    else:
        assert (r.status_code, r.headers["hx-redirect"]) == (200, "/profile")


# --- R-P4 / R-P6 over-long input ----------------------------------------------------------------------------------


@pytest.mark.parametrize("length", [200, 1024, 1025, 5000])
def test_r_p6_overlong_password_at_login_is_an_ordinary_failure_not_500(alice: TestClient, length: int) -> None:
    r = login(alice, password="x" * length)
    assert r.status_code == 422
    assert LOGIN_ERROR in r.text


def test_r_v6_sql_injection_username_is_a_generic_failure(alice: TestClient, settings: Settings) -> None:
    r = login(alice, username="' OR 1=1 --", password="' OR 1=1 --")
    assert r.status_code == 422
    assert LOGIN_ERROR in r.text
    assert session_rows(settings) == 0


# --- R-L4 enumeration ----------------------------------------------------------------------------------------------


def test_r_l4_unknown_user_and_wrong_password_look_identical_and_cost_one_bcrypt_each(
        alice: TestClient, spy: CountingBcrypt) -> None:
    r_known = login(alice, "alice", "wrong-password-for-alice")
    assert spy.checks == 1
    r_unknown = login(alice, "nosuchuser", "wrong-password-for-alice")
    assert spy.checks == 2
    assert r_known.status_code == r_unknown.status_code == 422
    assert normalised(r_known.text) == normalised(r_unknown.text)
    assert LOGIN_ERROR in r_unknown.text


# --- R-L1 / R-L3 lockout ------------------------------------------------------------------------------------------


def test_r_l1_ten_failures_lock_the_account_without_running_bcrypt(
        alice: TestClient, settings: Settings, spy: CountingBcrypt) -> None:
    with time_machine.travel(datetime.now(UTC), tick=False) as traveller:
        for attempt in range(1, settings.login_max_failures + 1):
            r = login(alice, password=f"wrong-{attempt}")
            assert r.status_code == 422, attempt
            assert LOGIN_ERROR in r.text
        assert lock_counts(settings) == [10]
        assert spy.checks == 10

        r = login(alice, password=PASSWORD)
        assert r.status_code == 429
        assert "Too many sign-in attempts. Try again in 15 minutes." in r.text
        assert r.headers["retry-after"] == str(15 * 60)
        assert "set-cookie" not in r.headers or "sid" not in r.headers.get("set-cookie", "")
        assert spy.checks == 10, "a locked account must not run bcrypt"
        assert session_rows(settings) == 0

        traveller.shift(timedelta(minutes=14, seconds=59))
        assert login(alice, password=PASSWORD).status_code == 429
        assert spy.checks == 10

        traveller.shift(timedelta(seconds=2))
        r = login(alice, password=PASSWORD)
        assert r.status_code == 303
        assert r.headers["location"] == "/profile"
        assert lock_counts(settings) == [0]
        assert spy.checks == 11


def test_r_l1_success_resets_the_consecutive_failure_count(alice: TestClient, settings: Settings) -> None:
    for _ in range(9):
        login(alice, password="wrong-password-here")
    assert lock_counts(settings) == [9]
    assert login(alice).status_code == 303
    assert lock_counts(settings) == [0]
    events = [e for (e,) in sql(settings, "SELECT event FROM security_events ORDER BY id")]
    assert events[-1] == "authn_login_successafterfail"


def test_r_h2_locked_partial_answer_is_a_429_fragment_stating_the_wait(alice: TestClient, settings: Settings) -> None:
    for _ in range(settings.login_max_failures):
        login(alice, password="wrong-password-here")
    r = login(alice, password=PASSWORD, headers=PARTIAL)
    assert r.status_code == 429
    assert "<html" not in r.text
    assert "Try again in 15 minutes" in r.text
    assert int(r.headers["retry-after"]) > 0


def test_r_l3_unknown_usernames_are_counted_and_locked_like_real_ones(
        alice: TestClient, other_client: TestClient, settings: Settings, spy: CountingBcrypt) -> None:
    answers: dict[str, list[Any]] = {"alice": [], "nosuchuser": []}
    for name, c in (("alice", alice), ("nosuchuser", other_client)):
        for _ in range(settings.login_max_failures + 1):
            answers[name].append(login(c, name, "wrong-password-here"))
    assert spy.checks == 2 * settings.login_max_failures
    for a, b in zip(answers["alice"], answers["nosuchuser"], strict=True):
        assert a.status_code == b.status_code
        assert normalised(a.text) == normalised(b.text)
    assert [r.status_code for r in answers["nosuchuser"]] == [422] * 10 + [429]
    assert sorted(lock_counts(settings)) == [10, 10]


def test_r_l3_throttle_keys_hold_no_username_in_clear(alice: TestClient, settings: Settings) -> None:
    login(alice, "nosuchuser", "wrong-password-here")
    keys = [k for (k,) in sql(settings, "SELECT key FROM throttles")]
    assert keys
    assert not any("nosuchuser" in k or "alice" in k or "testclient" in k for k in keys)


# --- R-L2 per-IP limit --------------------------------------------------------------------------------------------


def test_r_l2_31st_login_from_one_ip_is_429_and_spoofed_forwarded_for_does_not_help(
        client: TestClient, settings: Settings) -> None:
    token = csrf(client)
    for i in range(settings.ip_requests_per_minute):
        r = client.post("/login", data={"csrf_token": token, "username": f"user{i}", "password": "wrong-password"})
        assert r.status_code == 422, i
    for spoof in ({"X-Forwarded-For": "203.0.113.7"}, {"X-Real-IP": "198.51.100.9"},
                  {"Forwarded": "for=192.0.2.60"}):
        r = client.post("/login", headers=spoof,
                        data={"csrf_token": token, "username": "fresh-name", "password": "wrong-password"})
        assert r.status_code == 429
        assert 0 < int(r.headers["retry-after"]) <= 60
        assert "Too many sign-in attempts" in r.text


def test_r_l2_ip_limit_window_passes(client: TestClient, settings: Settings) -> None:
    register(client)
    with time_machine.travel(datetime.now(UTC), tick=False) as traveller:
        token = csrf(client)
        for i in range(settings.ip_requests_per_minute):
            client.post("/login", data={"csrf_token": token, "username": f"user{i}", "password": "wrong-password"})
        assert login(client).status_code == 429
        traveller.shift(timedelta(seconds=61))
        assert login(client).status_code == 303


def test_login_boosted_redirect_target_is_validated(alice: TestClient) -> None:
    r = login(alice, headers=BOOSTED, next="https://evil.example/")
    assert r.headers["hx-redirect"] == "/profile"


# --- R-A1 / R-A2 / R-A4 audit events --------------------------------------------------------------------------------


def audit_rows(settings: Settings) -> list[Any]:
    return sql(settings, "SELECT event, outcome, user_id, subject_hash, ip, request_id, ua_hash "
                         "FROM security_events ORDER BY id")


def audit_lines(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    import json

    from webapp.security.audit import JsonFormatter

    formatter = JsonFormatter()
    lines = []
    for record in caplog.records:
        if record.name == "webapp.audit":
            line = formatter.format(record)
            assert "\n" not in line and "\r" not in line
            lines.append(json.loads(line))
    return lines


def test_r_a1_foundation_events_are_recorded_in_order(alice: TestClient, settings: Settings,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    caplog.clear()
    login(alice, password="wrong-password-here")
    login(alice)
    alice.post("/logout", data={"csrf_token": csrf(alice, "/profile")})
    alice.post("/logout", data={"csrf_token": "forged"})
    rows = audit_rows(settings)
    assert [(r[0], r[1]) for r in rows] == [
        ("user_created", "success"),
        ("authn_login_fail", "failure"),
        ("authn_login_successafterfail", "success"),
        ("session_logout", "success"),
        ("malicious_csrf", "failure"),
    ]
    assert [line["event"] for line in audit_lines(caplog)] == [r[0] for r in rows[1:]]
    for event, _outcome, user_id, _subject, ip, request_id, ua in rows:
        assert ip == "testclient"
        assert re.fullmatch(r"[0-9a-f]{16}", request_id)
        assert re.fullmatch(r"[0-9a-f]{16}", ua)
        if event != "malicious_csrf":
            assert user_id == 1


def test_r_a1_plain_success_and_lock_events(alice: TestClient, settings: Settings) -> None:
    login(alice)
    alice.post("/logout", data={"csrf_token": csrf(alice, "/profile")})
    for _ in range(settings.login_max_failures):
        login(alice, password="wrong-password-here")
    events = [r[0] for r in audit_rows(settings)]
    assert events[1:3] == ["authn_login_success", "session_logout"]
    assert events[3:] == ["authn_login_fail"] * 10 + ["authn_login_lock"]
    login(alice)  # locked: refused and counted as a failure
    last = audit_rows(settings)[-1]
    assert (last[0], last[1]) == ("authn_login_fail", "failure")


def test_r_a2_unknown_user_failure_has_hashed_subject_not_the_name(client: TestClient, settings: Settings,
                                                                  caplog: pytest.LogCaptureFixture) -> None:
    caplog.clear()
    login(client, "nosuchuser", "wrong-password-here")
    [(event, outcome, user_id, subject, *_rest)] = audit_rows(settings)
    assert (event, outcome, user_id) == ("authn_login_fail", "failure", None)
    assert subject and re.fullmatch(r"[0-9a-f]{16}", subject)
    [line] = audit_lines(caplog)
    assert line["event"] == "authn_login_fail"
    assert line["ts"].endswith("Z")
    assert line["factor"] == "password"
    assert {"ip", "request_id", "outcome", "ua_hash"} <= set(line)
    assert "nosuchuser" not in str(caplog.records[-1].__dict__)


def test_r_a4_username_with_newline_cannot_forge_a_log_line(alice: TestClient, settings: Settings,
                                                            caplog: pytest.LogCaptureFixture) -> None:
    caplog.clear()
    login(alice, username="bob\nFAKE authn_login_success", password="x")
    login(alice, username="bob\r\n{\"event\": \"authn_login_success\"}", password="x")
    lines = audit_lines(caplog)
    assert [line["event"] for line in lines] == ["authn_login_fail", "authn_login_fail"]
    for record in caplog.records:
        assert "FAKE" not in record.getMessage()
    assert [r[0] for r in audit_rows(settings)].count("authn_login_success") == 0


def test_r_a1_csrf_rejection_by_fetch_metadata_is_logged_as_json(client: TestClient, settings: Settings,
                                                                  caplog: pytest.LogCaptureFixture) -> None:
    caplog.clear()
    client.post("/login", headers={"Sec-Fetch-Site": "cross-site"}, data={"csrf_token": csrf(client)})
    [line] = audit_lines(caplog)
    assert (line["event"], line["outcome"], line["reason"]) == ("malicious_csrf", "failure",
                                                                "sec-fetch-site=cross-site")
    assert [r[0] for r in audit_rows(settings)] == ["malicious_csrf"]


# --- R-PR2 nothing secret in any log record -------------------------------------------------------------------------


def test_r_pr2_no_password_or_cookie_value_in_any_log_record(client: TestClient, settings: Settings,
                                                            caplog: pytest.LogCaptureFixture) -> None:
    import logging

    from itsdangerous import URLSafeSerializer

    from webapp.security.audit import JsonFormatter

    caplog.set_level(logging.DEBUG)
    for name in list(logging.root.manager.loggerDict):
        caplog.set_level(logging.DEBUG, logger=name)
    serializer = URLSafeSerializer(settings.secret_key, salt="webapp.cookie")
    secrets: set[str] = {PASSWORD, "wrong-" + PASSWORD}

    def remember_cookie() -> None:
        raw = client.cookies.get("session")
        if raw:
            secrets.add(raw)
            secrets.update(v for v in serializer.loads(raw).values() if isinstance(v, str))

    register(client)
    remember_cookie()
    login(client, password="wrong-" + PASSWORD)
    login(client)
    remember_cookie()
    client.get("/profile")
    client.post("/logout", data={"csrf_token": csrf(client, "/profile")})
    assert len(secrets) >= 5
    formatter = JsonFormatter()
    assert caplog.records
    for record in caplog.records:
        blob = "\n".join([record.getMessage(), formatter.format(record), repr(record.__dict__)])
        for secret in secrets:
            assert secret not in blob, (record.name, secret[:6])
