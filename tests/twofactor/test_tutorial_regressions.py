"""Regressions for the Flask tutorial's two-factor mistakes (K1–K3, K6–K9, K11–K14)."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from tests.fakeverify.plugin import FakeVerify
from tests.support import (
    PASSWORD,
    CountingVerify,
    csrf,
    enroll,
    fake_code,
    follow,
    form_post,
    latest_challenge,
    location,
    login,
    make_2fa_user,
    path_of,
    signup,
    start_enroll,
    tw_app,
    tw_client,
    tw_settings,
    user_row,
)
from webapp.settings import Settings

__all__ = ["tw_app", "tw_client", "tw_settings"]  # fixtures


def test_k1_phone_field_is_validated(client: TestClient, verify: CountingVerify) -> None:
    """K1 (R-V1): `phone=12345` → error, no send."""
    signup(client)
    r = start_enroll(client, "12345")
    assert r.status_code == 422 and "valid phone number" in r.text
    assert verify.starts == []


def test_k2_unparseable_phone_is_a_form_error_not_a_500(client: TestClient, verify: CountingVerify) -> None:
    """K2 (R-V1): `phone="not a number"` → a page with an error, never a 500."""
    signup(client)
    r = start_enroll(client, "not a number")
    assert r.status_code == 422 and 'id="phone-error"' in r.text
    assert verify.starts == []


def test_k3_check_uses_the_verification_check_resource(tw_client: TestClient, tw_settings: Settings,
                                                       fake_verify: FakeVerify) -> None:
    """K3 (R-O3, R-O8): the check hits …/VerificationCheck with VerificationSid; the login works (no 500)."""
    make_2fa_user(tw_client, tw_settings)
    login(tw_client)
    r = tw_client.post("/login/verify", data={"csrf_token": csrf(tw_client, "/login/verify"),
                                              "code": fake_code(fake_verify, tw_settings)})
    assert location(r) == "/profile"
    check = fake_verify.requests("check")[0]
    assert check["path"].endswith("/VerificationCheck") and "VerificationSid" in check["form"]


def test_k6_code_step_reachable_only_with_a_live_challenge(client: TestClient, settings: Settings,
                                                           verify: CountingVerify) -> None:
    """K6 (R-O15): with a live challenge → 200 (no login required); without → 303 /login."""
    assert path_of(client.get("/login/verify")) == "/login"
    make_2fa_user(client, settings)
    login(client)
    assert client.get("/login/verify").status_code == 200


def test_k7_disable_needs_login_password_and_code(client: TestClient, settings: Settings,
                                                  verify: CountingVerify) -> None:
    """K7 (R-O12): anonymous → 303 /login; a signed-in session without password + code → still on."""
    r = client.post("/2fa/disable", data={"csrf_token": csrf(client, "/login")})
    assert path_of(r) == "/login"
    signup(client)
    enroll(client, lambda: verify.code)
    r = client.post("/2fa/disable", data={"csrf_token": csrf(client, "/profile"), "password": "wrong-password-x"})
    assert r.status_code == 422
    page = client.get("/2fa/disable")
    r = follow(client, form_post(client, "/2fa/disable", page.text, {"password": PASSWORD}))
    r = form_post(client, "/2fa/verify", r.text, {"code": "12ab56"})
    assert user_row(settings)["mfa_enabled"]


@pytest.mark.parametrize("enabled", [False, True])
def test_k8_every_twofactor_template_renders_in_both_states(client: TestClient, settings: Settings,
                                                            verify: CountingVerify, enabled: bool) -> None:
    """K8: the profile and every two-factor page render (no template/URL build error) with 2FA off and on."""
    signup(client)
    codes = enroll(client, lambda: verify.code) if enabled else []
    profile = client.get("/profile")
    assert profile.status_code == 200
    assert ("/2fa/disable" in profile.text) is enabled and ("/2fa/enable" in profile.text) is not enabled
    actions = ("disable", "phone", "recovery-codes") if enabled else ("enable",)
    for action in actions:
        page = client.get(f"/2fa/{action}")
        assert page.status_code == 200 and 'name="password"' in page.text, action
        page = client.get(f"/2fa/{action}", headers={"HX-Request": "true", "HX-Request-Type": "partial"})
        assert page.status_code == 200 and "<html" not in page.text, action
    for action in {"enable", "disable", "phone", "recovery-codes"} - set(actions):
        assert path_of(client.get(f"/2fa/{action}")) == "/profile", action
    assert client.get("/2fa/recovery-used").status_code == 200
    assert path_of(client.get("/2fa")) == "/profile"
    # The code step and recovery step of sign-in (login_verify, login_recovery, _code_step, _recovery_step).
    if enabled:
        client.cookies.clear()
        login(client)
        assert client.get("/login/verify").status_code == 200
        assert client.get("/login/recovery").status_code == 200
        assert codes


def test_k9_missing_pending_state_is_a_redirect_not_a_keyerror(client: TestClient, verify: CountingVerify) -> None:
    """K9 (R-O15): fresh GET and POST /login/verify → 303 /login."""
    assert path_of(client.get("/login/verify")) == "/login"
    r = client.post("/login/verify", data={"csrf_token": csrf(client, "/login"), "code": "123456"})
    assert r.status_code == 303 and path_of(r) == "/login"


def test_k11_guesses_are_limited_server_side(client: TestClient, settings: Settings, verify: CountingVerify) -> None:
    """K11 (R-O5, R-O6): five guesses end the attempt; the counters live in the DB."""
    make_2fa_user(client, settings)
    login(client)
    bad = "000000" if verify.code != "000000" else "111111"
    for _ in range(5):
        r = client.post("/login/verify", data={"csrf_token": csrf(client, "/login"), "code": bad})
    assert path_of(r) == "/login"
    assert latest_challenge(settings)["failed_checks"] == 5
    assert user_row(settings)["mfa_failed_count"] == 5


def test_k12_next_comes_from_the_challenge_not_the_query(client: TestClient, settings: Settings,
                                                         verify: CountingVerify) -> None:
    """K12 (R-R2): `next` is stored with the challenge; a query `next` at the code step is ignored."""
    make_2fa_user(client, settings)
    r = login(client, next="/profile?tab=1")
    assert "next=" not in location(r)
    r = client.post("/login/verify?next=https://evil.example&remember=1",
                    data={"csrf_token": csrf(client, "/login"), "code": verify.code})
    assert location(r) == "/profile?tab=1"
    assert latest_challenge(settings)["remember"] in (False, 0)


@pytest.mark.parametrize(("status", "code"), [(403, 60410), (429, 60203), (500, 20500)])
def test_k13_no_voice_fallback_on_errors(tw_client: TestClient, tw_settings: Settings, fake_verify: FakeVerify,
                                         status: int, code: int) -> None:
    """K13 (R-O11): a failed SMS never triggers a call, and a second failure is no 500."""
    make_2fa_user(tw_client, tw_settings)
    fake_verify.fault("start", status=status, code=code, times=2)
    r = login(tw_client)
    assert r.status_code in (422, 429, 503)
    r = tw_client.post("/login/resend", data={"csrf_token": csrf(tw_client, "/login/verify")})
    assert r.status_code in (422, 429, 503)
    assert {s["form"]["Channel"] for s in fake_verify.requests("start")} == {"sms"}


@pytest.mark.parametrize("fault", [{"drop": True}, {"delay_s": 3.0}, {"status": 503, "code": 20503}])
def test_k14_network_errors_on_check_are_not_500(tw_client: TestClient, tw_settings: Settings,
                                                 fake_verify: FakeVerify, fault: dict[str, object]) -> None:
    """K14 (R-X3): connection errors and timeouts on the check → 503, never an escaped exception."""
    make_2fa_user(tw_client, tw_settings)
    login(tw_client)
    right = fake_code(fake_verify, tw_settings)
    fake_verify.fault("check", **fault)  # type: ignore[arg-type]
    r = tw_client.post("/login/verify", data={"csrf_token": csrf(tw_client, "/login/verify"), "code": right})
    assert r.status_code == 503
    assert latest_challenge(tw_settings)["failed_checks"] == 0
