"""The account's address: verified from the registration mail, "Send the link again" (throttled), and a change
that needs the password (plus the second factor when on), is confirmed from the new address and leaves the old
one in force until then, with a notice to it (R-E13, R-E14)."""

from __future__ import annotations

import re

from starlette.testclient import TestClient

from tests.mail.kit import CHANGE_SUBJECT, VERIFY_SUBJECT, press
from tests.mail.smtp import SmtpSink
from tests.support import (
    PARTIAL,
    PASSWORD,
    CountingVerify,
    csrf,
    enroll,
    events,
    form_post,
    login,
    path_of,
    register,
    signup,
    user_row,
)
from webapp.mail import links
from webapp.settings import Settings


def resend(client: TestClient, headers: dict[str, str] | None = None) -> object:
    return client.post("/account/email/verify", data={"csrf_token": csrf(client, "/profile")}, headers=headers or {})


def change(client: TestClient, new: str, password: str = PASSWORD, headers: dict[str, str] | None = None) -> object:
    page = client.get("/account/email")
    assert page.status_code == 200
    return form_post(client, "/account/email", page.text, {"email": new, "password": password}, headers)


def test_r_e13_registration_mails_a_link_that_verifies_the_address(client: TestClient, smtp: SmtpSink,
                                                                  settings: Settings) -> None:
    signup(client)
    profile = client.get("/profile").text
    assert "not verified" in profile and "Send the link again" in profile
    path = smtp.wait_for_mail("alice@example.com", VERIFY_SUBJECT).link(links.VERIFY)
    assert user_row(settings)["email_verified_at"] is None  # opening the page changes nothing
    r = press(client, path)
    assert r.status_code == 303 and r.headers["location"] == "/profile?notice=email-verified"
    assert user_row(settings)["email_verified_at"] is not None
    profile = client.get("/profile").text
    assert ">verified<" in profile and "Send the link again" not in profile
    assert client.get(path).status_code == 410  # single use


def test_the_verification_link_works_signed_out(client: TestClient, other_client: TestClient,
                                                smtp: SmtpSink) -> None:
    register(client, "alice", email="alice@example.com")
    r = press(other_client, smtp.wait_for_mail("alice@example.com", VERIFY_SUBJECT).link(links.VERIFY))
    assert r.headers["location"] == "/login?notice=email-verified"


def test_r_e13_send_the_link_again_is_throttled(client: TestClient, smtp: SmtpSink, settings: Settings) -> None:
    signup(client)
    for _ in range(settings.email_links_per_user_per_hour):
        r = resend(client, PARTIAL)
        assert r.status_code == 200 and 'id="email-status"' in r.text
        assert re.search(r'<div id="flash" hx-swap-oob="innerHTML"><p>We sent a new link', r.text)
    smtp.wait_for_mail("alice@example.com", VERIFY_SUBJECT, count=1 + settings.email_links_per_user_per_hour)
    r = resend(client, PARTIAL)
    assert r.status_code == 429 and "Try again in" in r.text
    r = resend(client)
    assert r.status_code == 303 and r.headers["location"] == "/profile?notice=verify-wait"


def test_r_e14_a_change_is_confirmed_from_the_new_address_and_the_old_is_told(
        client: TestClient, other_client: TestClient, smtp: SmtpSink, settings: Settings) -> None:
    signup(client)
    assert login(other_client, "alice").status_code == 303
    assert change(client, "new@example.com", "wrong-password").status_code == 422
    r = change(client, "new@example.com")
    assert r.status_code == 303 and r.headers["location"] == "/profile?notice=email-change-sent"
    confirm = smtp.wait_for_mail("new@example.com", CHANGE_SUBJECT)
    notice = smtp.wait_for_mail("alice@example.com", "Your email address is being changed")
    assert notice.link(links.NOT_ME) and "n•••@example.com" in notice.text
    assert user_row(settings)["email"] == "alice@example.com"  # the old address is in force until confirmed
    reset = client.post("/password/forgot", data={"csrf_token": csrf(client, "/password/forgot"),
                                                  "email": "new@example.com"})
    assert reset.status_code == 303
    r = press(client, confirm.link(links.CONFIRM))
    assert r.status_code == 303 and r.headers["location"] == "/profile?notice=email-changed"
    row = user_row(settings)
    assert row["email"] == "new@example.com" and row["email_verified_at"] is not None
    assert client.get("/profile").status_code == 200  # the confirming browser keeps a fresh session
    assert other_client.get("/profile").status_code == 303  # the others end
    smtp.wait_for_mail("alice@example.com", "Your email address was changed")
    assert [m.subject for m in smtp.messages("new@example.com")] == [CHANGE_SUBJECT]  # no reset went there early
    assert len(events(settings, "email_changed")) == 1


def test_r_e14_with_two_step_on_a_change_needs_the_code_too(client: TestClient, smtp: SmtpSink,
                                                            verify: CountingVerify, settings: Settings) -> None:
    signup(client)
    enroll(client, lambda: verify.code)
    r = change(client, "new@example.com")
    assert r.status_code == 303 and r.headers["location"].startswith("/2fa")
    step = client.get("/2fa")
    assert step.status_code == 200 and "Confirm it" in step.text
    assert smtp.messages("new@example.com") == []  # nothing before the second factor
    assert form_post(client, "/2fa/verify", step.text, {"code": "000000"}).status_code == 422
    r = form_post(client, "/2fa/verify", client.get("/2fa").text, {"code": verify.code})
    assert path_of(r) == "/profile" and "email-change-sent" in r.headers["location"]
    assert client.get("/profile").status_code == 200  # the same session goes on
    smtp.wait_for_mail("new@example.com", CHANGE_SUBJECT)
    assert user_row(settings)["email"] == "alice@example.com"


def test_r_e14_this_wasnt_me_from_the_old_address_cancels_the_pending_change(
        client: TestClient, other_client: TestClient, smtp: SmtpSink, settings: Settings) -> None:
    signup(client)
    change(client, "attacker@example.com")
    confirm = smtp.wait_for_mail("attacker@example.com", CHANGE_SUBJECT).link(links.CONFIRM)
    not_me = smtp.wait_for_mail("alice@example.com", "Your email address is being changed").link(links.NOT_ME)
    press(other_client, not_me)
    assert client.get(confirm).status_code == 410
    assert user_row(settings)["email"] == "alice@example.com"


def test_an_old_verification_link_proves_nothing_about_a_new_address(client: TestClient, smtp: SmtpSink,
                                                                     settings: Settings) -> None:
    signup(client)
    old_link = smtp.wait_for_mail("alice@example.com", VERIFY_SUBJECT).link(links.VERIFY)
    change(client, "new@example.com")
    press(client, smtp.wait_for_mail("new@example.com", CHANGE_SUBJECT).link(links.CONFIRM))
    assert client.get(old_link).status_code == 410


def test_the_same_address_or_a_malformed_one_is_a_422(client: TestClient) -> None:
    signup(client)
    r = change(client, "ALICE@example.com", headers=PARTIAL)
    assert r.status_code == 422 and "already your address" in r.text and 'id="email-change"' in r.text
    r = change(client, "nope")
    assert r.status_code == 422 and 'aria-invalid="true"' in r.text and "<html" in r.text
