"""Authenticator apps (TOTP): setup with JavaScript on and off, sign-in, drift, replay, limits, secrets at rest."""

from __future__ import annotations

import json
import time

import pytest
import time_machine
from starlette.testclient import TestClient

from tests.factors.kit import CODE_RE, add_app, methods_of, setup_key, start_app_setup
from tests.support import (
    PARTIAL,
    PASSWORD,
    CountingVerify,
    cookie_payload,
    csrf,
    events,
    execute,
    form_post,
    latest_challenge,
    login,
    logout,
    path_of,
    rows,
    signup,
    user_row,
)
from webapp.settings import Settings
from webapp.twofactor import secretbox


def test_setup_shows_a_named_qr_code_and_the_grouped_key(client: TestClient) -> None:
    signup(client)
    r = start_app_setup(client)
    assert '<svg role="img" aria-label="QR code to add' in r.text
    assert "Can't scan? Enter this key" in r.text
    key = setup_key(r.text)
    assert len(key) == 32
    assert 'autocomplete="one-time-code"' in r.text and "Enter the 6-digit code" in r.text


def test_setup_as_the_first_method_turns_two_step_on_and_issues_recovery_codes(client: TestClient,
                                                                                settings: Settings) -> None:
    signup(client)
    app, r = add_app(client, label="Pixel")
    assert r.status_code == 200 and len(CODE_RE.findall(r.text)) == 10
    assert user_row(settings)["mfa_enabled"] in (True, 1)
    [method] = methods_of(settings)
    assert method["kind"] == "totp" and method["label"] == "Pixel"
    assert app.secret not in (method["secret_enc"] or "") and method["secret_enc"].startswith("v1.")
    assert secretbox.unseal(settings, method["secret_enc"], user_row(settings)["id"]) == app.secret


def test_setup_with_javascript_swaps_in_place(client: TestClient) -> None:
    signup(client)
    r = form_post(client, "/2fa/app", client.get("/2fa/app").text, {"password": PASSWORD}, headers=PARTIAL)
    assert r.status_code == 200 and "<html" not in r.text and 'id="twofa"' in r.text
    assert "<svg" in r.text


def test_a_wrong_first_code_saves_nothing(client: TestClient, settings: Settings) -> None:
    signup(client)
    r = start_app_setup(client)
    r = form_post(client, "/2fa/verify", r.text, {"code": "000000"})
    assert r.status_code == 422 and "That code isn" in r.text
    assert "<svg" in r.text  # still the setup page, with the same key
    assert methods_of(settings) == [] and user_row(settings)["mfa_enabled"] in (False, 0)


def test_the_secret_never_reaches_the_cookie_the_log_rows_or_a_later_page(client: TestClient, settings: Settings,
                                                                          caplog: pytest.LogCaptureFixture) -> None:
    signup(client)
    app, _ = add_app(client)
    assert app.secret not in str(cookie_payload(client, settings))
    assert all(app.secret not in str(e["details"]) for e in events(settings))
    assert app.secret not in caplog.text
    assert app.secret not in client.get("/profile").text and app.secret not in client.get("/2fa").text
    assert app.secret not in str(rows(settings, "SELECT * FROM mfa_challenges"))


def _at_code_step(client: TestClient) -> None:
    logout(client)
    r = login(client)
    assert path_of(r) == "/login/verify"


def test_sign_in_with_the_app(client: TestClient, settings: Settings, verify: CountingVerify) -> None:
    signup(client)
    app, _ = add_app(client)
    _at_code_step(client)
    page = client.get("/login/verify")
    assert "Enter the code from your app" in page.text and "Resend" not in page.text
    assert not verify.starts  # nothing was texted
    r = form_post(client, "/login/verify", page.text, {"code": app.code(1)})
    assert path_of(r) == "/profile", r.text
    details = events(settings, "authn_login_success")[-1]["details"]
    assert (json.loads(details) if isinstance(details, str) else details)["method"] == "totp"


@pytest.mark.parametrize(("offset", "accepted"), [(-1, True), (1, True), (-2, False), (2, False)])
def test_one_time_step_of_drift_is_accepted(client: TestClient, settings: Settings, offset: int,
                                            accepted: bool) -> None:
    signup(client)
    app, _ = add_app(client)
    execute(settings, "UPDATE authenticators SET totp_last_step = NULL")  # only the drift decides here
    _at_code_step(client)
    # The clock stands still 10 s into the next step, so the app and the server agree on "now" to the step.
    with time_machine.travel((int(time.time() // 30) + 1) * 30 + 10, tick=False):
        r = form_post(client, "/login/verify", client.get("/login/verify").text, {"code": app.code(offset)})
    assert (path_of(r) == "/profile") is accepted, r.text


def test_a_code_is_accepted_once_only(client: TestClient, other_client: TestClient) -> None:
    signup(client)
    app, _ = add_app(client)
    _at_code_step(client)
    code = app.code(1)
    assert path_of(form_post(client, "/login/verify", client.get("/login/verify").text, {"code": code})) == "/profile"
    assert path_of(login(other_client)) == "/login/verify"
    r = form_post(other_client, "/login/verify", other_client.get("/login/verify").text, {"code": code})
    assert r.status_code == 422 and "That code isn" in r.text  # replayed within its window: refused


def test_the_setup_code_cannot_be_replayed_at_sign_in(client: TestClient) -> None:
    signup(client)
    r = start_app_setup(client)
    from tests.factors.kit import App

    app = App(setup_key(r.text))
    code = app.code(1)
    form_post(client, "/2fa/verify", r.text, {"code": code})
    _at_code_step(client)
    r = form_post(client, "/login/verify", client.get("/login/verify").text, {"code": code})
    assert r.status_code == 422


def test_app_codes_have_the_sms_attempt_limits(client: TestClient, settings: Settings) -> None:
    signup(client)
    add_app(client)
    _at_code_step(client)
    for _ in range(settings.mfa_max_checks):
        r = client.post("/login/verify", data={"csrf_token": csrf(client, "/login/verify"), "code": "000000"})
    assert path_of(r) == "/login"  # the challenge is over after five wrong codes, as with SMS
    assert latest_challenge(settings)["failed_checks"] == settings.mfa_max_checks
    assert user_row(settings)["mfa_failed_count"] == settings.mfa_max_checks


def test_keys_rotate_new_first_old_still_opens(settings: Settings) -> None:
    old = settings.with_overrides(totp_encryption_keys=("old-key-" + "o" * 40,))
    sealed = secretbox.seal(old, "JBSWY3DPEHPK3PXP", 7)
    rotated = settings.with_overrides(totp_encryption_keys=("new-key-" + "n" * 40, "old-key-" + "o" * 40))
    assert secretbox.unseal(rotated, sealed, 7) == "JBSWY3DPEHPK3PXP"
    assert secretbox.needs_reseal(rotated, sealed)
    assert secretbox.unseal(rotated, sealed, 8) is None  # bound to its owner
    assert secretbox.unseal(settings.with_overrides(totp_encryption_keys=("new-key-" + "n" * 40,)), sealed, 7) is None
