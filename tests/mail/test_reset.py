"""Password reset by mail, end to end over real SMTP: from "Forgot your password?" to reading the mail and
following its link. A reset never signs in, so it never gets past the second factor (R-E5)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from starlette.testclient import TestClient

from tests.mail.kit import NEW_PASSWORD, RESET_SUBJECT, ask_reset, choose, reset_mail
from tests.mail.smtp import BASE_URL, SmtpSink
from tests.support import (
    CLIENT_KINDS,
    NO_JS,
    PARTIAL,
    PASSWORD,
    csrf,
    csrf_from,
    execute,
    login,
    register,
    rows,
    user_row,
)
from webapp.mail import links
from webapp.settings import Settings


def _neutral(html: str) -> str:
    return re.sub(r'(value|X-CSRF-Token&#34;: &#34;|"X-CSRF-Token": ")[^"&]+', "", html)


def test_sign_in_page_links_to_forgot_your_password(client: TestClient) -> None:
    page = client.get("/login").text
    assert 'href="/password/forgot"' in page and "Forgot your password?" in page


@pytest.mark.parametrize("kind", list(CLIENT_KINDS))
def test_r_e2_known_and_unknown_addresses_get_the_same_answer(client: TestClient, other_client: TestClient,
                                                              smtp: SmtpSink, kind: str) -> None:
    register(client, "alice", email="alice@example.com")
    headers = CLIENT_KINDS[kind]
    known = ask_reset(client, "alice@example.com", headers)
    unknown = ask_reset(other_client, "nobody@example.com", headers)
    for r in (known, unknown):
        assert r.status_code == (303 if kind == "no-js" else 200)  # type: ignore[attr-defined]
    for header in ("location", "hx-redirect", "retry-after"):
        assert known.headers.get(header) == unknown.headers.get(header)  # type: ignore[attr-defined]
    assert _neutral(known.text) == _neutral(unknown.text)  # type: ignore[attr-defined]
    if kind == "partial":
        assert 'id="forgot"' in known.text and "<html" not in known.text  # type: ignore[attr-defined]
        assert "If an account uses that address" in known.text  # type: ignore[attr-defined]
    smtp.wait_for_mail("alice@example.com", RESET_SUBJECT)
    assert smtp.messages("nobody@example.com") == []


def test_r_e2_known_and_unknown_addresses_cost_the_same_database_work(app: object, client: TestClient,
                                                                       other_client: TestClient) -> None:
    """"Similar time" without measuring time: one write unit of work and no bcrypt, account or not."""
    register(client, "alice", email="alice@example.com")
    deps = client.app.state.deps  # type: ignore[attr-defined]
    calls: list[str] = []
    original = deps.db.write

    async def counting(fn: object, *args: object, **kwargs: object) -> object:
        calls.append(getattr(fn, "__name__", "?"))
        return await original(fn, *args, **kwargs)  # type: ignore[arg-type]

    deps.db.write = counting
    try:
        ask_reset(client, "alice@example.com")
        known, calls[:] = list(calls), []
        ask_reset(other_client, "nobody@example.com")
    finally:
        deps.db.write = original
    sender = {"claim", "mark_sent", "retry_later", "give_up", "release"}  # the background sender's own writes
    assert [c for c in known if c not in sender] == [c for c in calls if c not in sender] == ["_request"]


def test_forgot_page_without_javascript_is_post_redirect_get(client: TestClient) -> None:
    r = ask_reset(client, "someone@example.com")
    assert r.status_code == 303 and r.headers["location"] == "/password/forgot/sent"  # type: ignore[attr-defined]
    page = client.get("/password/forgot/sent")
    assert page.status_code == 200 and "<html" in page.text and "Check your email" in page.text


@pytest.mark.parametrize("email", ["", "not-an-address", "a@b"])
def test_a_malformed_address_is_a_422_with_the_error_on_the_field(client: TestClient, email: str) -> None:
    r = ask_reset(client, email, PARTIAL)
    assert r.status_code == 422  # type: ignore[attr-defined]
    assert 'aria-invalid="true"' in r.text and 'aria-describedby="email-hint email-error"' in r.text  # type: ignore[attr-defined]


def test_r_e1_the_link_goes_only_to_the_accounts_own_address(client: TestClient, smtp: SmtpSink) -> None:
    register(client, "alice", email="Alice@Example.com")
    r = ask_reset(client, "ALICE@EXAMPLE.COM")
    assert r.status_code == 303  # type: ignore[attr-defined]
    mail = smtp.wait_for_mail("Alice@Example.com", RESET_SUBJECT)
    assert mail.rcpt_tos == ["Alice@Example.com"]
    assert all(m.rcpt_tos == ["Alice@Example.com"] for m in smtp.messages() if m.subject == RESET_SUBJECT)


def test_r_e3_links_use_app_base_url_never_the_host_header(client: TestClient, smtp: SmtpSink) -> None:
    register(client, "alice", email="alice@example.com")
    token = csrf(client, "/password/forgot")
    r = client.post("/password/forgot", data={"csrf_token": token, "email": "alice@example.com"},
                    headers={"Host": "evil.example", "X-Forwarded-Host": "evil.example",
                             "X-Forwarded-Proto": "http", "Forwarded": "host=evil.example"})
    assert r.status_code == 303
    mail = smtp.wait_for_mail("alice@example.com", RESET_SUBJECT)
    assert "evil.example" not in mail.text and "evil.example" not in mail.html
    assert f"{BASE_URL}{links.RESET}" in mail.text and f'href="{BASE_URL}{links.RESET}' in mail.html


def test_reset_end_to_end_changes_the_password_and_signs_nobody_in(client: TestClient, other_client: TestClient,
                                                                  smtp: SmtpSink, settings: Settings) -> None:
    register(client, "alice", email="alice@example.com")
    assert login(other_client, "alice").status_code == 303  # type: ignore[attr-defined]
    mail = reset_mail(client, smtp)
    assert mail.message["Auto-Submitted"] == "auto-generated"
    assert "<img" not in mail.html and PASSWORD not in mail.text
    path = mail.link(links.RESET)
    page = client.get(path)
    assert page.status_code == 200 and "Choose a new password" in page.text
    assert user_row(settings)["password_hash"] == user_row(settings)["password_hash"]  # GET changed nothing
    r = choose(client, path)
    assert r.status_code == 303 and r.headers["location"] == "/login?notice=password-reset"  # type: ignore[attr-defined]
    assert client.get("/profile").status_code == 303  # not signed in by the reset
    assert other_client.get("/profile").status_code == 303  # every session ended
    assert login(client, "alice", PASSWORD).status_code == 422  # type: ignore[attr-defined]
    assert login(client, "alice", NEW_PASSWORD).status_code == 303  # type: ignore[attr-defined]
    notice = smtp.wait_for_mail("alice@example.com", "Your password was reset")
    assert notice.link(links.NOT_ME)


def test_r_e4_a_second_use_of_the_link_is_refused_with_a_clear_page(client: TestClient, smtp: SmtpSink) -> None:
    register(client, "alice", email="alice@example.com")
    path = reset_mail(client, smtp).link(links.RESET)
    page = client.get(path)
    assert choose(client, path).status_code == 303  # type: ignore[attr-defined]
    again = client.get(path)
    assert again.status_code == 410 and "This link no longer works" in again.text
    late = client.post(path, data={"csrf_token": csrf_from(page.text), "new_password": "x" * 20,
                                   "new_password_confirm": "x" * 20})
    assert late.status_code == 303 and late.headers["location"] == path


def test_r_e4_the_link_expires_after_30_minutes(client: TestClient, smtp: SmtpSink) -> None:
    register(client, "alice", email="alice@example.com")
    path = reset_mail(client, smtp).link(links.RESET)
    with time_machine.travel(datetime.now(UTC) + timedelta(minutes=31)):
        assert client.get(path).status_code == 410


def test_r_e4_a_newer_credential_change_kills_an_older_reset_link(client: TestClient, smtp: SmtpSink) -> None:
    register(client, "alice", email="alice@example.com")
    first = reset_mail(client, smtp).link(links.RESET)
    second = reset_mail(client, smtp, count=2).link(links.RESET)
    assert choose(client, second).status_code == 303  # type: ignore[attr-defined]
    assert client.get(first).status_code == 410


def test_reset_form_errors_are_422_with_the_registration_rules(client: TestClient, smtp: SmtpSink,
                                                               settings: Settings) -> None:
    register(client, "alice", email="alice@example.com")
    path = reset_mail(client, smtp).link(links.RESET)
    short = choose(client, path, "short", headers=PARTIAL)
    assert short.status_code == 422 and 'id="reset"' in short.text  # type: ignore[attr-defined]
    assert "Use at least 15 characters" in short.text and 'aria-invalid="true"' in short.text  # type: ignore[attr-defined]
    mismatch = choose(client, path, NEW_PASSWORD, NEW_PASSWORD + "x", headers=NO_JS)
    assert mismatch.status_code == 422 and "t match" in mismatch.text  # type: ignore[attr-defined]
    assert "<html" in mismatch.text  # type: ignore[attr-defined]
    named = choose(client, path, "alice-likes-long-passwords")
    assert named.status_code == 422 and "contains your username" in named.text  # type: ignore[attr-defined]
    assert client.get(path).status_code == 200  # errors don't use up the link


def test_r_e6_requests_are_limited_per_address_and_per_ip(client: TestClient, settings: Settings) -> None:
    for _ in range(settings.reset_requests_per_address_per_hour):
        assert ask_reset(client, "x@example.com").status_code == 303  # type: ignore[attr-defined]
    r = ask_reset(client, "x@example.com", PARTIAL)
    assert r.status_code == 429 and "Too many reset requests" in r.text  # type: ignore[attr-defined]
    assert int(r.headers["retry-after"]) > 0  # type: ignore[attr-defined]
    # The refused request counted for the address too: every request counts against the IP first.
    for n in range(settings.reset_requests_per_ip_per_hour - settings.reset_requests_per_address_per_hour - 1):
        assert ask_reset(client, f"other{n}@example.com").status_code == 303  # type: ignore[attr-defined]
    assert ask_reset(client, "fresh@example.com").status_code == 429  # type: ignore[attr-defined]


def test_r_e7_no_token_stays_in_the_outbox_once_sent(client: TestClient, smtp: SmtpSink,
                                                      settings: Settings) -> None:
    register(client, "alice", email="alice@example.com")
    path = reset_mail(client, smtp).link(links.RESET)
    token = path.rsplit("/", 1)[1]
    smtp.wait_for(lambda _: all(r["status"] == "sent" for r in rows(settings, "SELECT status FROM mail_outbox")))
    stored = rows(settings, "SELECT context FROM mail_outbox")
    assert token not in str(stored)
    assert token not in str(rows(settings, "SELECT * FROM email_tokens"))  # only its hash


def test_two_accounts_on_one_address_each_get_their_own_link(client: TestClient, smtp: SmtpSink) -> None:
    register(client, "alice", email="family@example.com")
    register(client, "bob", email="family@example.com")
    ask_reset(client, "family@example.com")
    smtp.wait_for_mail("family@example.com", RESET_SUBJECT, count=2)
    texts = [m.text for m in smtp.messages("family@example.com") if m.subject == RESET_SUBJECT]
    assert any('"alice"' in t for t in texts) and any('"bob"' in t for t in texts)


def test_a_reset_ends_a_lockout_caused_by_wrong_passwords(client: TestClient, smtp: SmtpSink,
                                                          settings: Settings) -> None:
    register(client, "alice", email="alice@example.com")
    execute(settings, "UPDATE throttles SET count = 10")  # as if someone had locked the account
    for _ in range(settings.login_max_failures):
        login(client, "alice", "wrong-password-guess")
    assert login(client, "alice").status_code == 429  # type: ignore[attr-defined]
    assert choose(client, reset_mail(client, smtp).link(links.RESET)).status_code == 303  # type: ignore[attr-defined]
    assert login(client, "alice", NEW_PASSWORD).status_code == 303  # type: ignore[attr-defined]
