"""Someone passes the password but fails or abandons the second step: the owner is mailed, batched, at most one
such mail an hour (R-E11, R-L6). Completing the step in time sends nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import time_machine
from starlette.testclient import TestClient

from tests.mail.smtp import SmtpSink
from tests.support import CountingVerify, csrf, form_post, login, make_2fa_user, path_of, rows
from webapp.mail import links
from webapp.settings import Settings

SUBJECT = "Someone entered your password but not the code"


def second_step_rows(settings: Settings) -> list[dict[str, object]]:
    return rows(settings, "SELECT * FROM mail_outbox WHERE template = 'second_step' ORDER BY id")


def as_time(value: object) -> datetime:
    """SQLite hands raw SQL timestamps back as text."""
    return value if isinstance(value, datetime) else datetime.fromisoformat(str(value))


def test_an_abandoned_code_step_is_mailed_once_it_has_expired(client: TestClient, smtp: SmtpSink,
                                                              settings: Settings) -> None:
    make_2fa_user(client, settings)
    assert path_of(login(client)) == "/login/verify"
    [row] = second_step_rows(settings)
    assert row["status"] == "pending"
    assert smtp.messages() == [] or all(m.subject != SUBJECT for m in smtp.messages())
    with time_machine.travel(datetime.now(UTC) + timedelta(minutes=12), tick=True):
        mail = smtp.wait_for_mail("alice@example.com", SUBJECT)
    assert "UTC" in mail.text and mail.link(links.NOT_ME)


def test_a_completed_code_step_sends_nothing(client: TestClient, smtp: SmtpSink, settings: Settings,
                                            verify: CountingVerify) -> None:
    make_2fa_user(client, settings)
    login(client)
    r = form_post(client, "/login/verify", client.get("/login/verify").text, {"code": verify.code})
    assert path_of(r) == "/profile"
    assert [r["status"] for r in second_step_rows(settings)] == ["cancelled"]


def test_signing_in_again_from_the_same_browser_is_not_an_abandoned_attempt(client: TestClient,
                                                                             settings: Settings,
                                                                             verify: CountingVerify) -> None:
    make_2fa_user(client, settings)
    login(client)
    login(client)  # the first code step is replaced, by the same person
    r = form_post(client, "/login/verify", client.get("/login/verify").text, {"code": verify.code})
    assert path_of(r) == "/profile"
    assert [r["status"] for r in second_step_rows(settings)] == ["cancelled"]


def test_a_code_step_failed_for_good_is_mailed_without_waiting_for_expiry(client: TestClient, smtp: SmtpSink,
                                                                          settings: Settings) -> None:
    make_2fa_user(client, settings)
    login(client)
    for _ in range(settings.mfa_max_checks):
        r = client.post("/login/verify", data={"csrf_token": csrf(client, "/login/verify"), "code": "000000"})
    assert path_of(r) == "/login"
    smtp.wait_for_mail("alice@example.com", SUBJECT)


def test_attempts_are_batched_and_mailed_at_most_once_an_hour(client: TestClient, other_client: TestClient,
                                                              smtp: SmtpSink, settings: Settings) -> None:
    make_2fa_user(client, settings)
    login(client)
    login(other_client)  # two attempts from two browsers: one mail lists both
    start = datetime.now(UTC)
    with time_machine.travel(start + timedelta(minutes=12), tick=True):
        mail = smtp.wait_for_mail("alice@example.com", SUBJECT)
        assert mail.text.count("UTC") >= 2
        login(client)  # another attempt, soon after the mail
        first, row = second_step_rows(settings)
        assert as_time(row["due_at"]) >= as_time(first["sent_at"]) + timedelta(hours=1)
    with time_machine.travel(start + timedelta(minutes=30), tick=True):
        assert second_step_rows(settings)[1]["status"] == "pending"  # expired, but inside the hour: held back
    with time_machine.travel(start + timedelta(minutes=75), tick=True):
        smtp.wait_for_mail("alice@example.com", SUBJECT, count=2)
