"""Profile two-factor management: enrollment, step-ups, disable, recovery codes, notices, phone input."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from starlette.testclient import TestClient

from tests.support import (
    CLIENT_KINDS,
    PARTIAL,
    PASSWORD,
    PHONE,
    CountingVerify,
    csrf,
    csrf_from,
    enroll,
    events,
    execute,
    follow,
    form_post,
    latest_challenge,
    location,
    login,
    login_with_recovery,
    logout,
    path_of,
    recovery_rows,
    rows,
    signed_in_client,
    signup,
    start_enroll,
    stepup,
    user_row,
)
from webapp import create_app
from webapp.settings import Settings


def test_enrollment_shows_the_sms_risk_notice(client: TestClient) -> None:
    """R-O1, R-PR5: risks named, recovery codes and an authenticator app mentioned, charges and how to turn off."""
    signup(client)
    for headers in CLIENT_KINDS.values():
        r = client.get("/2fa/enable", headers=headers)
        assert r.status_code == 200
        assert 'id="sms-risk-notice"' in r.text
        text = " ".join(r.text.split())
        for phrase in ("SIM swapping", "porting", "interception", "fake sign-in page", "recovery codes",
                       "authenticator-app", "charges may apply", "turn two-step verification off"):
            assert phrase in text, phrase


def test_number_is_stored_only_after_an_approved_code(client: TestClient, settings: Settings,
                                                      verify: CountingVerify) -> None:
    """R-O2, R-PR1: one send; pending/wrong → unchanged; approved → on with the E.164 number."""
    signup(client)
    r = start_enroll(client, "+1 (415) 555-0123")
    assert r.status_code == 200, r.text
    assert verify.starts == [(PHONE, "sms")]
    assert r.text.count(PHONE) == 1  # the confirmation shows the full number once, to catch typos
    user = user_row(settings)
    assert not user["mfa_enabled"] and user["phone_e164"] is None
    bad = "000000" if verify.code != "000000" else "111111"
    r = form_post(client, "/2fa/verify", r.text, {"code": bad})
    assert r.status_code == 422
    user = user_row(settings)
    assert not user["mfa_enabled"] and user["phone_e164"] is None
    r = form_post(client, "/2fa/verify", r.text, {"code": verify.code})
    assert r.status_code == 200
    user = user_row(settings)
    assert user["mfa_enabled"] and user["phone_e164"] == PHONE and user["phone_verified_at"] is not None
    assert events(settings, "mfa_enabled")


def test_recovery_codes_shown_once_hashed_and_counted(client: TestClient, settings: Settings,
                                                      verify: CountingVerify) -> None:
    """R-RC1, R-RC2: 10 codes XXXX-XXXX-XXXX-XXXX on a no-store page; never again; 10 bcrypt rows, no plaintext."""
    signup(client)
    r = start_enroll(client)
    r = form_post(client, "/2fa/verify", r.text, {"code": verify.code})
    assert r.headers["Cache-Control"] == "no-store"
    codes = re.findall(r"<code>([0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4})</code>", r.text)
    assert len(codes) == 10 and len(set(codes)) == 10
    stored = recovery_rows(settings)
    assert len(stored) == 10
    for row in stored:
        assert re.match(r"^\$2b\$", str(row["code_hash"]))
        assert all(c.replace("-", "") not in str(row["code_hash"]) for c in codes)
    for path in ("/profile", "/2fa", "/2fa/recovery-used"):
        page = client.get(path).text
        assert not any(c in page for c in codes), path
    assert "10 unused recovery codes" in " ".join(client.get("/profile").text.split())


def test_recovery_code_login_single_use_interstitial_and_regeneration(
        client: TestClient, settings: Settings, verify: CountingVerify) -> None:
    """R-RC2…R-RC6: lower-case accepted, 9 left on the interstitial, notice row, reuse fails and counts,
    regenerating needs step-up and kills the old set."""
    signup(client)
    codes = enroll(client, lambda: verify.code)
    logout(client)
    checks = len(verify.checks)
    r = login_with_recovery(client, codes[0].lower().replace("-", " "))
    assert r.status_code == 303 and location(r) == "/2fa/recovery-used"
    page = client.get("/2fa/recovery-used")
    assert page.status_code == 200 and "<strong>9</strong>" in page.text
    for link in ("/2fa/recovery-codes", "/2fa/phone", "/2fa/disable"):
        assert link in page.text
    assert rows(settings, "SELECT * FROM security_notices WHERE kind = 'recovery_used'")
    assert len(verify.checks) == checks  # recovery codes never reach Twilio
    logout(client)
    r = login_with_recovery(client, codes[0])
    assert r.status_code == 422 and "isn&#39;t right" in r.text
    assert latest_challenge(settings)["failed_checks"] == 1
    page = client.get("/login/recovery")
    r = form_post(client, "/login/recovery", page.text, {"recovery_code": codes[1]})
    assert location(r) == "/2fa/recovery-used"
    # Regenerate: a wrong password changes nothing.
    r = stepup(client, "recovery-codes", password="not-the-password-123")
    assert r.status_code == 422
    assert len([x for x in recovery_rows(settings) if x["used_at"] is None]) == 8
    r = stepup(client, "recovery-codes")
    assert r.status_code == 200
    assert r.headers["Cache-Control"] == "no-store"
    new_codes = re.findall(r"<code>([0-9A-Z-]{19})</code>", r.text)
    assert len(new_codes) == 10 and not set(new_codes) & set(codes)
    assert len(recovery_rows(settings)) == 10
    assert rows(settings, "SELECT * FROM security_notices WHERE kind = 'codes_regenerated'")
    logout(client)
    r = login_with_recovery(client, codes[2])
    assert r.status_code == 422
    page = client.get("/login/recovery")
    r = form_post(client, "/login/recovery", page.text, {"recovery_code": new_codes[0]})
    assert location(r) == "/2fa/recovery-used"


def test_five_wrong_recovery_codes_invalidate_the_challenge(client: TestClient, settings: Settings,
                                                             verify: CountingVerify) -> None:
    """R-RC4: failures count in failed_checks and mfa_failed_count; no Twilio check call."""
    signup(client)
    enroll(client, lambda: verify.code)
    logout(client)
    checks = len(verify.checks)
    r = login(client)
    for _ in range(5):
        page = client.get("/login/recovery")
        if page.status_code != 200:
            break
        r = form_post(client, "/login/recovery", page.text, {"recovery_code": "AAAA-BBBB-CCCC-DDDD"})
    assert path_of(r) == "/login"
    ch = latest_challenge(settings)
    assert ch["failed_checks"] == 5 and ch["invalidated_at"] is not None
    assert user_row(settings)["mfa_failed_count"] == 5
    assert len(verify.checks) == checks
    assert path_of(client.get("/login/recovery")) == "/login"


def test_profile_warns_when_two_or_fewer_codes_remain(client: TestClient, settings: Settings,
                                                      verify: CountingVerify) -> None:
    """R-RC5: the profile shows the remaining count and warns at two or fewer."""
    signup(client)
    enroll(client, lambda: verify.code)
    execute(settings, "UPDATE recovery_codes SET used_at = CURRENT_TIMESTAMP WHERE id IN "
                      "(SELECT id FROM recovery_codes ORDER BY id LIMIT 8)")
    text = " ".join(client.get("/profile").text.split())
    assert "2 unused recovery codes" in text and "Get new ones soon" in text


def test_disable_needs_password_and_code(client: TestClient, settings: Settings, verify: CountingVerify) -> None:
    """R-O12, R-PR4, R-RC6, K7: no password → still on; password only → code sent, still on; approved → off,
    number cleared, codes deleted, binding history kept with last2 and unbound_at."""
    signup(client)
    enroll(client, lambda: verify.code)
    sends = len(verify.starts)
    r = client.post("/2fa/disable", data={"csrf_token": csrf(client, "/profile")})
    assert r.status_code == 422
    assert user_row(settings)["mfa_enabled"]
    assert len(verify.starts) == sends
    r = stepup(client, "disable")
    assert r.status_code == 200
    assert len(verify.starts) == sends + 1
    assert latest_challenge(settings)["purpose"] == "disable"
    user = user_row(settings)
    assert user["mfa_enabled"] and user["phone_e164"] == PHONE
    r = follow(client, form_post(client, "/2fa/verify", r.text, {"code": verify.code}))
    assert r.status_code == 303 and path_of(r) == "/profile"
    user = user_row(settings)
    assert not user["mfa_enabled"] and user["phone_e164"] is None
    assert recovery_rows(settings) == []
    bindings = rows(settings, "SELECT * FROM authenticator_events")
    assert len(bindings) == 1
    assert bindings[0]["kind"] == "sms" and bindings[0]["last2"] == "23" and bindings[0]["unbound_at"] is not None
    assert "is <strong>off</strong>" in client.get("/profile").text


def test_anonymous_disable_redirects_to_login(client: TestClient, settings: Settings) -> None:
    """R-O12, K7: anonymous POST /2fa/disable and GET /2fa/* → 303 /login, never a crash."""
    r = client.post("/2fa/disable", data={"csrf_token": csrf(client, "/login"), "password": PASSWORD})
    assert r.status_code == 303 and path_of(r) == "/login"
    for path in ("/2fa/enable", "/2fa/disable", "/2fa", "/2fa/recovery-used"):
        assert path_of(client.get(path)) == "/login", path


def test_disable_notice_at_next_login(client: TestClient, settings: Settings, verify: CountingVerify) -> None:
    """R-O13: disabling leaves a banner at the next sign-in: "turned off", the UTC date, what to do."""
    signup(client)
    enroll(client, lambda: verify.code)
    r = stepup(client, "disable")
    r = form_post(client, "/2fa/verify", r.text, {"code": verify.code})
    # The actor lands on the profile: the warning is not theirs to dismiss.
    acting = " ".join(client.get(location(r)).text.split())
    assert "turned off for your account" not in acting
    logout(client)
    login(client)
    text = " ".join(client.get("/profile").text.split())
    today = datetime.now(UTC).strftime("%Y-%m-%d")
    assert "turned off" in text and f"{today}" in text and "UTC" in text and "If this wasn't you" in text


def test_enabling_signs_out_other_sessions_but_not_this_one(client: TestClient, other_client: TestClient,
                                                            settings: Settings, verify: CountingVerify) -> None:
    """R-S8, R-S2: the other browser is signed out when 2FA goes on, and again when it goes off."""
    signup(client)
    login(other_client)
    assert other_client.get("/profile").status_code == 200
    enroll(client, lambda: verify.code)
    assert client.get("/profile").status_code == 200
    assert path_of(other_client.get("/profile")) == "/login"
    # Other browser signs in with both factors, then the first turns 2FA off.
    r = login(other_client)
    form_post(other_client, "/login/verify", other_client.get("/login/verify").text, {"code": verify.code})
    assert other_client.get("/profile").status_code == 200
    with time_machine.travel(datetime.now(UTC) + timedelta(seconds=31), tick=False):
        r = stepup(client, "disable")
        r = form_post(client, "/2fa/verify", r.text, {"code": verify.code})
        assert path_of(r) == "/profile"
        assert client.get("/profile").status_code == 200
        assert path_of(other_client.get("/profile")) == "/login"


def test_change_phone_needs_old_and_new_codes(client: TestClient, settings: Settings,
                                              verify: CountingVerify) -> None:
    """R-O12, R-O13: password, old-number code, new-number code; the number changes only at the end."""
    signup(client)
    enroll(client, lambda: verify.code)
    r = stepup(client, "phone")
    assert verify.starts[-1] == (PHONE, "sms")
    r = follow(client, form_post(client, "/2fa/verify", r.text, {"code": verify.code}))
    assert r.status_code == 200 and 'name="phone"' in r.text
    r = follow(client, form_post(client, "/2fa/phone-number", r.text, {"region": "GB", "phone": "07400 123456"}))
    assert r.status_code == 200, r.text
    assert verify.starts[-1] == ("+447400123456", "sms")
    assert user_row(settings)["phone_e164"] == PHONE
    r = form_post(client, "/2fa/verify", r.text, {"code": verify.code})
    assert path_of(r) == "/profile"
    assert user_row(settings)["phone_e164"] == "+447400123456"
    assert rows(settings, "SELECT * FROM security_notices WHERE kind = 'phone_changed'")
    bindings = rows(settings, "SELECT * FROM authenticator_events ORDER BY id")
    assert [b["last2"] for b in bindings] == ["23", "56"] and bindings[0]["unbound_at"] is not None


@pytest.mark.parametrize(("phone", "message"), [
    ("12345", "isn't a valid phone number"),
    ("not a number", "doesn't look like a phone number"),
    ("1" * 300, "at most 32 characters"),
    ("+8801712345678", "can't send codes to that country"),
    ("+1 900 555 0123", "premium-rate"),
])
def test_bad_phone_input_is_refused_before_any_send(client: TestClient, settings: Settings,
                                                    verify: CountingVerify, phone: str, message: str) -> None:
    """R-V1, R-V2, K1, K2: each bad number → 422 with a readable message, never a 500, nothing sent."""
    signup(client)
    r = start_enroll(client, phone)
    assert r.status_code == 422, r.text
    assert message in " ".join(r.text.split()).replace("&#39;", "'")
    assert verify.starts == []
    assert latest_challenge(settings)["sends"] == 0


def test_custom_allow_list(settings: Settings, verify: CountingVerify) -> None:
    """R-V2: allow-list {US, GB}: a GB mobile is accepted, an Irish one refused with sends=0."""
    app = create_app(settings.with_overrides(phone_allowed_regions=frozenset({"US", "GB"})), verify=verify)
    with TestClient(app, base_url="https://testserver", follow_redirects=False) as c:
        signup(c)
        r = start_enroll(c, "+353 85 123 4567")
        assert r.status_code == 422 and "send codes to that country" in r.text.replace("&#39;", "'")
        assert verify.starts == []
        r = follow(c, form_post(c, "/2fa/phone-number", r.text, {"region": "GB", "phone": "+447400123456"}))
        assert r.status_code == 200 and verify.starts == [("+447400123456", "sms")]


def test_fourth_account_on_one_number_gets_a_generic_message(client: TestClient, settings: Settings,
                                                             verify: CountingVerify) -> None:
    """R-V3: sharing is allowed up to the cap; past it the message never names the other accounts."""
    signup(client, "bob")
    enroll(client, lambda: verify.code)
    logout(client)
    signup(client, "alice")
    r = start_enroll(client)
    assert r.status_code == 200  # a second account on the same number is fine
    for name in ("carol", "dave"):
        execute(settings, "INSERT INTO users (username, display_name, email, password_hash, pepper_id, "
                          "mfa_enabled, phone_e164, mfa_failed_count, session_epoch, created_at) "
                          "SELECT :n, :n, '', password_hash, pepper_id, :t, :p, 0, 0, created_at FROM users "
                          "WHERE username = 'bob'", n=name, t=True, p=PHONE)
    sends = len(verify.starts)
    r = client.get("/2fa")
    r = follow(client, form_post(client, "/2fa/phone-number", r.text, {"region": "US", "phone": "415 555 0199"}))
    r = form_post(client, "/2fa/cancel", r.text)
    r = start_enroll(client)
    assert r.status_code == 422
    text = r.text.replace("&#39;", "'")
    assert "can't use this number" in text
    assert "bob" not in text and "carol" not in text and "another account" not in text
    assert len(verify.starts) == sends + 1


def test_enrollment_sends_per_ip_are_limited(client: TestClient, settings: Settings,
                                             verify: CountingVerify) -> None:
    """R-O9: 5 enrollment sends per IP per hour; the 6th → 429 + Retry-After and an excess_rate_limit event."""
    signup(client)
    r = start_enroll(client, "+14155550101")
    assert r.status_code == 200
    for n in range(2, 7):
        r = follow(client, form_post(client, "/2fa/phone-number", r.text,
                                     {"region": "US", "phone": f"+141555501{n:02d}"}))
        if n < 6:
            assert r.status_code == 200, (n, r.text)
    assert r.status_code == 429 and int(r.headers["Retry-After"]) > 0
    assert len(verify.starts) == 5
    assert events(settings, "excess_rate_limit_exceeded")


def test_global_budget_refuses_and_alerts(settings: Settings, verify: CountingVerify) -> None:
    """R-O9: past the global daily SMS budget sends are refused with an excess_rate_limit_exceeded event."""
    app = create_app(settings.with_overrides(sms_global_daily_budget=1), verify=verify)
    with TestClient(app, base_url="https://testserver", follow_redirects=False) as c:
        signup(c)
        r = start_enroll(c)
        assert r.status_code == 200
        c.cookies.clear()
        signup(c, "bob")
        r = start_enroll(c, "+14155550199")
        assert r.status_code == 429 and "can't send more codes today" in r.text.replace("&#39;", "'")
        assert len(verify.starts) == 1
        assert [e for e in events(settings, "excess_rate_limit_exceeded") if "sends-global" in str(e["details"])]


def test_partial_step_up_errors_are_fragments(client: TestClient, settings: Settings,
                                              verify: CountingVerify) -> None:
    """R-H2: wrong step-up password over htmx → 422 fragment for #twofa, no <html."""
    signup(client)
    r = stepup(client, "enable", password="wrong-password-wrong", headers=PARTIAL)
    assert r.status_code == 422 and "<html" not in r.text and 'id="twofa"' in r.text
    r = stepup(client, "enable", headers=PARTIAL)
    assert r.status_code == 200 and "<html" not in r.text
    r = form_post(client, "/2fa/phone-number", r.text, {"region": "US", "phone": "12345"},
                  PARTIAL)
    assert r.status_code == 422 and "<html" not in r.text
    assert csrf_from(r.text)


def test_profile_offers_to_continue_a_step_in_progress(client: TestClient) -> None:
    """A reload mid-enrollment shows the profile; it must point back to the pending step, which /2fa resumes."""
    signed_in_client(client)
    assert "step in progress" not in client.get("/profile").text
    page = client.get("/2fa/enable").text
    r = client.post("/2fa/enable", data={"csrf_token": csrf_from(page), "password": PASSWORD})
    assert r.status_code == 303 and r.headers["location"] == "/2fa"  # POST → 303 → GET, so a reload re-posts nothing
    profile = client.get("/profile").text
    assert "step in progress" in profile and 'href="/2fa"' in profile
    assert 'name="phone"' in client.get("/2fa").text
