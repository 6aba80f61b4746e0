"""Security notices by mail at once, each with "This wasn't me" (R-E11, R-E12), and the page that link opens."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import time_machine
from starlette.testclient import TestClient

from tests.mail.kit import NEW_PASSWORD, choose, press, reset_mail
from tests.mail.smtp import BASE_URL, Received, SmtpSink
from tests.support import (
    PASSWORD,
    PHONE,
    CountingVerify,
    cookie_payload,
    csrf,
    csrf_from,
    enroll,
    events,
    follow,
    form_post,
    login,
    logout,
    path_of,
    rows,
    signup,
)
from webapp.mail import links
from webapp.settings import Settings


def stepup(client: TestClient, action: str) -> object:
    page = client.get(f"/2fa/{action}")
    return follow(client, form_post(client, f"/2fa/{action}", page.text, {"password": PASSWORD}))


def assert_no_secrets(mail: Received, *secrets: str) -> None:
    """R-E7: no password, full number, code or session id in either part."""
    for part in (mail.text, mail.html, str(mail.message)):
        for secret in (PASSWORD, NEW_PASSWORD, PHONE, PHONE[2:], *secrets):
            assert secret not in part, f"{secret!r} in {mail.subject!r}"
    assert mail.link(links.NOT_ME)
    # No tracking: nothing loads (no src=, no remote style), and every link points into the app.
    assert "src=" not in mail.html and "<style" not in mail.html and "style=" not in mail.html
    assert all(href.startswith(BASE_URL) for href in re.findall(r'href="([^"]+)"', mail.html))


def test_r_e11_each_security_change_is_mailed_at_once_without_secrets(client: TestClient, smtp: SmtpSink,
                                                                     verify: CountingVerify,
                                                                     settings: Settings) -> None:
    signup(client)
    seen: list[str] = []

    def expect(subject: str) -> Received:
        mail = smtp.wait_for_mail("alice@example.com", subject)
        sid = cookie_payload(client, settings).get("sid", "sid-none")
        assert_no_secrets(mail, verify.code, sid)
        seen.append(subject)
        return mail

    codes = enroll(client, lambda: verify.code)
    expect("Two-step verification was turned on")
    assert not any(code in m.text for code in codes for m in smtp.messages())

    r = stepup(client, "recovery-codes")
    assert r.status_code == 200
    expect("New recovery codes were created")

    r = stepup(client, "phone")
    r = form_post(client, "/2fa/verify", r.text, {"code": verify.code})
    r = follow(client, r)
    r = follow(client, form_post(client, "/2fa/phone-number", r.text, {"region": "US", "phone": "(415) 555-0177"}))
    form_post(client, "/2fa/verify", r.text, {"code": verify.code})
    mail = expect("Your two-step verification phone number was changed")
    assert "0177" not in mail.text

    page = client.get("/account/password")
    r = form_post(client, "/account/password", page.text, {"current_password": PASSWORD,
                                                           "new_password": NEW_PASSWORD,
                                                           "new_password_confirm": NEW_PASSWORD})
    assert r.status_code == 303
    expect("Your password was changed")
    assert len(seen) == 4


def test_r_e11_a_used_recovery_code_and_turning_two_step_off_are_mailed(client: TestClient, smtp: SmtpSink,
                                                                       verify: CountingVerify) -> None:
    signup(client)
    codes = enroll(client, lambda: verify.code)
    logout(client)
    login(client)
    r = client.post("/login/recovery", data={"csrf_token": csrf(client, "/login/recovery"), "recovery_code": codes[0]})
    assert path_of(r) == "/2fa/recovery-used"
    mail = smtp.wait_for_mail("alice@example.com", "A recovery code was used")
    assert codes[0] not in mail.text and codes[1] not in mail.text
    r = stepup(client, "disable")
    form_post(client, "/2fa/verify", r.text, {"code": verify.code})
    smtp.wait_for_mail("alice@example.com", "Two-step verification was turned off")


# --- "This wasn't me" ---------------------------------------------------------------------------------------------

def changed_password(client: TestClient, smtp: SmtpSink) -> str:
    """Alice changes her password; the "This wasn't me" link of the notice."""
    page = client.get("/account/password")
    r = form_post(client, "/account/password", page.text, {"current_password": PASSWORD,
                                                           "new_password": NEW_PASSWORD,
                                                           "new_password_confirm": NEW_PASSWORD})
    assert r.status_code == 303
    return smtp.wait_for_mail("alice@example.com", "Your password was changed").link(links.NOT_ME)


def test_r_e12_opening_this_wasnt_me_changes_nothing(client: TestClient, other_client: TestClient,
                                                     smtp: SmtpSink, settings: Settings) -> None:
    signup(client)
    path = changed_password(client, smtp)
    before = rows(settings, "SELECT id_hash, revoked_at FROM auth_sessions ORDER BY id_hash")
    page = other_client.get(path)  # signed out: whoever changed the password may have locked the owner out
    assert page.status_code == 200 and "Secure your account" in page.text and "<html" in page.text
    assert rows(settings, "SELECT id_hash, revoked_at FROM auth_sessions ORDER BY id_hash") == before
    assert client.get("/profile").status_code == 200
    assert events(settings, "not_me_confirmed") == []


def test_r_e12_confirming_ends_every_session_challenge_and_mailed_link(client: TestClient, other_client: TestClient,
                                                                        smtp: SmtpSink, settings: Settings) -> None:
    signup(client)
    path = changed_password(client, smtp)
    reset_link = reset_mail(other_client, smtp).link(links.RESET)  # a reset link in flight
    r = press(other_client, path)  # the owner, signed out, on another device
    assert r.status_code == 303 and r.headers["location"] == "/account/secured"
    done = other_client.get("/account/secured")
    assert "Reset your password" in done.text and 'href="/password/forgot"' in done.text
    assert client.get("/profile").status_code == 303  # every session ended
    assert other_client.get(reset_link).status_code == 410  # reset links die
    [event] = events(settings, "not_me_confirmed")
    assert event["user_id"] is not None and event["outcome"] == "success"
    again = press_again(other_client, path)
    assert again.status_code == 410 and "This link no longer works" in again.text  # single use


def press_again(client: TestClient, path: str) -> object:
    r = client.post(path, data={"csrf_token": csrf(client, "/login")})
    assert r.status_code == 303 and r.headers["location"] == path
    return client.get(path)


def test_r_e12_this_wasnt_me_kills_a_pending_code_step(client: TestClient, other_client: TestClient,
                                                       smtp: SmtpSink, verify: CountingVerify) -> None:
    signup(client)
    enroll(client, lambda: verify.code)
    path = changed_password(client, smtp)
    assert path_of(login(other_client, "alice", NEW_PASSWORD)) == "/login/verify"  # someone at the code step
    press(client, path)
    assert other_client.get("/login/verify").status_code == 303


def test_r_e12_the_link_expires_after_7_days(client: TestClient, smtp: SmtpSink) -> None:
    signup(client)
    path = changed_password(client, smtp)
    with time_machine.travel(datetime.now(UTC) + timedelta(days=6, hours=23)):
        assert client.get(path).status_code == 200
    with time_machine.travel(datetime.now(UTC) + timedelta(days=7, minutes=1)):
        assert client.get(path).status_code == 410


def test_r_e12_the_notice_after_a_reset_has_its_own_link(client: TestClient, smtp: SmtpSink) -> None:
    signup(client)
    choose(client, reset_mail(client, smtp).link(links.RESET))
    mail = smtp.wait_for_mail("alice@example.com", "Your password was reset")
    r = press(client, mail.link(links.NOT_ME))
    assert r.headers["location"] == "/account/secured"


def test_r_e12_the_post_needs_a_csrf_token(client: TestClient, smtp: SmtpSink, settings: Settings) -> None:
    signup(client)
    path = changed_password(client, smtp)
    assert client.post(path, data={"csrf_token": "forged"}).status_code == 403
    assert client.post(path, data={"csrf_token": csrf_from(client.get(path).text)},
                       headers={"Sec-Fetch-Site": "cross-site"}).status_code == 403
    assert events(settings, "not_me_confirmed") == []
