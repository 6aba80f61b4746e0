"""The durable outbox over real SMTP: woken by the commit, retried while the server is down, kept across
restarts, given up after a bounded time with an audit row, and each row sent once even with two senders
claiming at the same time (R-E9, R-E10). Runs on SQLite and, with TEST_DATABASE_URL, on PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from tests.mail.smtp import BASE_URL, SmtpSink
from tests.races.kit import Gate, running
from tests.support import events, register, rows
from webapp import create_app
from webapp.db import Database
from webapp.logging_setup import RedactTokens
from webapp.mail import outbox
from webapp.mail.links import redact
from webapp.mail.sender import MailSender
from webapp.mail.transport import Delivery, DevMailbox, SmtpTransport
from webapp.settings import Settings
from webapp.verify.dev import DevVerifyBackend

VERIFY_SUBJECT = "Confirm your email address"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def statuses(settings: Settings) -> list[str]:
    return [r["status"] for r in rows(settings, "SELECT status FROM mail_outbox ORDER BY id")]


def wait_rows(smtp: SmtpSink, settings: Settings, check: object, timeout: float = 10.0) -> None:
    smtp.wait_for(lambda _: bool(check(rows(settings, "SELECT * FROM mail_outbox ORDER BY id"))),  # type: ignore[operator]
                  timeout)


def test_r_e9_a_new_row_wakes_the_sender_at_commit_not_at_the_next_poll(mail_settings: Settings, smtp: SmtpSink,
                                                                         verify: DevVerifyBackend) -> None:
    slow_poll = mail_settings.with_overrides(mail_poll_s=60.0)
    with TestClient(create_app(slow_poll, verify=verify), base_url="https://testserver") as c:
        register(c, "alice", email="alice@example.com")
        smtp.wait_for_mail("alice@example.com", VERIFY_SUBJECT, timeout=5.0)


def test_r_e10_mail_written_while_the_server_is_down_arrives_once_when_it_is_back(
        client: TestClient, smtp: SmtpSink, settings: Settings) -> None:
    smtp.stop()
    for name in ("alice", "bob", "carol"):
        assert register(client, name, email=f"{name}@example.com").status_code == 303  # type: ignore[attr-defined]
    # The requests answered at once; the sender is retrying with backoff, the error kept without any address.
    wait_rows(smtp, settings, lambda rs: len(rs) == 3 and all(r["attempts"] >= 2 for r in rs))
    assert set(statuses(settings)) <= {"pending", "sending"}
    assert all("SMTPConnect" in r["last_error"] or "OSError" in r["last_error"]
               for r in rows(settings, "SELECT last_error FROM mail_outbox") if r["last_error"])
    smtp.start()
    wait_rows(smtp, settings, lambda rs: all(r["status"] == "sent" for r in rs))
    received = Counter(m.rcpt_tos[0] for m in smtp.messages())
    assert received == {"alice@example.com": 1, "bob@example.com": 1, "carol@example.com": 1}


def test_r_e10_mail_survives_an_app_restart(mail_settings: Settings, smtp: SmtpSink, settings: Settings,
                                             verify: DevVerifyBackend) -> None:
    smtp.stop()
    with TestClient(create_app(mail_settings, verify=verify), base_url="https://testserver") as first:
        register(first, "alice", email="alice@example.com")
    assert statuses(settings) == ["pending"]  # the app stopped; the row did not
    smtp.start()
    with TestClient(create_app(mail_settings, verify=verify), base_url="https://testserver"):
        smtp.wait_for_mail("alice@example.com", VERIFY_SUBJECT)
        wait_rows(smtp, settings, lambda rs: [r["status"] for r in rs] == ["sent"])
    assert len(smtp.messages("alice@example.com")) == 1


def test_r_e10_delivery_gives_up_after_a_bounded_time_with_an_audit_row(mail_settings: Settings, smtp: SmtpSink,
                                                                         settings: Settings,
                                                                         verify: DevVerifyBackend) -> None:
    smtp.stop()
    quick = mail_settings.with_overrides(mail_give_up_s=1)
    with TestClient(create_app(quick, verify=verify), base_url="https://testserver") as c:
        register(c, "alice", email="alice@example.com")
        wait_rows(smtp, settings, lambda rs: [r["status"] for r in rs] == ["failed"])
    [row] = rows(settings, "SELECT * FROM mail_outbox")
    assert row["context"] in ({}, "{}") and row["attempts"] >= 1
    [failed] = events(settings, "mail_delivery_failed")
    assert failed["user_id"] is not None and failed["outcome"] == "failure"


def test_r_e10_a_permanent_refusal_is_not_retried(client: TestClient, smtp: SmtpSink, settings: Settings) -> None:
    smtp.refuse.add("ghost@example.com")
    register(client, "ghost", email="ghost@example.com")
    wait_rows(smtp, settings, lambda rs: [r["status"] for r in rs] == ["failed"])
    [row] = rows(settings, "SELECT * FROM mail_outbox")
    assert row["attempts"] == 1 and "550" in row["last_error"] and "ghost" not in row["last_error"]
    assert len(events(settings, "mail_delivery_failed")) == 1


# --- several senders on one outbox ------------------------------------------------------------------------------

def _fill(db: Database, count: int) -> None:
    def write(s: object) -> None:
        for n in range(count):
            outbox.enqueue(s, to=f"user{n}@example.com", template="verify_email",  # type: ignore[arg-type]
                           context={"username": f"user{n}", "verify_path": f"/email/verify/t{n}"})
    db.run_write(write)  # type: ignore[arg-type]


@pytest.fixture
def two_databases(mail_settings: Settings) -> Iterator[tuple[Database, Database]]:
    """Two engines and pools on one database: two app processes as far as the outbox can tell."""
    first, second = Database(mail_settings.database_url), Database(mail_settings.database_url)
    yield first, second
    first.dispose()
    second.dispose()


@pytest.mark.anyio
async def test_r_e9_a_row_claimed_by_one_sender_is_never_taken_by_another(
        mail_settings: Settings, smtp: SmtpSink, two_databases: tuple[Database, Database]) -> None:
    settings = mail_settings.with_overrides(mail_batch=5)
    db_a, db_b = two_databases
    _fill(db_a, 20)
    a, b = (MailSender(settings, db, SmtpTransport(settings), worker=name) for db, name in ((db_a, "a"), (db_b, "b")))
    gate = Gate()
    a.transport.send = gate.wrap(a.transport.send)  # type: ignore[method-assign]
    # A has claimed its batch and delivered it, but not yet marked it sent: B drains everything else meanwhile.
    first = asyncio.create_task(a.deliver_due())
    await gate.reached.wait()
    while await b.deliver_due():
        pass
    gate.open()
    assert await first == 5
    received = Counter(m.rcpt_tos[0] for m in smtp.messages())
    assert len(received) == 20 and set(received.values()) == {1}, received
    assert Counter(r["claimed_by"] for r in rows(mail_settings, "SELECT claimed_by FROM mail_outbox")) == \
        {"a": 5, "b": 15}


@pytest.mark.anyio
async def test_r_e9_two_senders_draining_together_send_each_mail_once(
        mail_settings: Settings, smtp: SmtpSink, two_databases: tuple[Database, Database]) -> None:
    settings = mail_settings.with_overrides(mail_batch=3)
    db_a, db_b = two_databases
    _fill(db_a, 60)
    senders = [MailSender(settings, db, SmtpTransport(settings), worker=name)
               for db, name in ((db_a, "a"), (db_b, "b"))]

    async def drain(sender: MailSender) -> int:
        total = 0
        while handled := await sender.deliver_due():
            total += handled
        return total

    totals = await asyncio.gather(*(drain(s) for s in senders))
    assert sum(totals) == 60
    received = Counter(m.rcpt_tos[0] for m in smtp.messages())
    assert len(received) == 60 and set(received.values()) == {1}
    assert set(statuses(mail_settings)) == {"sent"}


@pytest.mark.anyio
async def test_r_e10_a_sender_that_died_mid_send_leaves_its_rows_to_another_after_the_lease(
        mail_settings: Settings, smtp: SmtpSink, two_databases: tuple[Database, Database]) -> None:
    db_a, db_b = two_databases
    _fill(db_a, 2)
    claimed = await db_a.write(outbox.claim, "crashed", 10, 0.3)  # claimed, then the process vanished
    assert len(claimed) == 2
    survivor = MailSender(mail_settings, db_b, SmtpTransport(mail_settings), worker="survivor")
    assert await survivor.deliver_due() == 0  # the lease still holds
    await asyncio.sleep(0.4)
    assert await survivor.deliver_due() == 2
    assert len(smtp.messages()) == 2


@pytest.mark.anyio
async def test_a_failed_mail_is_retried_with_growing_jittered_delays(mail_settings: Settings,
                                                                    two_databases: tuple[Database, Database]) -> None:
    sender = MailSender(mail_settings.with_overrides(mail_retry_base_s=10, mail_retry_max_s=100), two_databases[0],
                        SmtpTransport(mail_settings))
    delays = [sender.backoff(n) for n in (1, 2, 3, 4, 5, 9)]
    assert 8 <= delays[0] <= 12 and 16 <= delays[1] <= 24 and 32 <= delays[2] <= 48
    assert all(d <= 120 for d in delays) and delays[-1] >= 80


@pytest.mark.anyio
async def test_r_e9_a_request_never_waits_on_smtp(mail_settings: Settings, settings: Settings,
                                                  verify: DevVerifyBackend) -> None:
    """A transport that never answers: registering still answers at once (the outbox decouples them)."""
    class Stuck:
        name = "stuck"
        started = asyncio.Event()

        async def send(self, messages: list[EmailMessage]) -> list[Delivery]:
            self.started.set()
            await asyncio.sleep(3600)
            return []

    stuck = Stuck()
    app = create_app(mail_settings.with_overrides(smtp_timeout_s=1.0), verify=verify, mail=stuck)
    async with running(app) as browser:
        alice = browser()
        await asyncio.wait_for(alice.register("alice"), timeout=5)
        await asyncio.wait_for(stuck.started.wait(), timeout=5)
        await asyncio.wait_for(alice.login("alice"), timeout=5)
    assert statuses(settings) == ["sending"]  # cut off mid-send: its lease, not a guess, decides what happens next


# --- the development outbox and logs ------------------------------------------------------------------------------

def test_without_smtp_host_development_mail_waits_in_the_dev_outbox(settings: Settings,
                                                                     verify: DevVerifyBackend) -> None:
    with TestClient(create_app(settings, verify=verify), base_url="https://testserver") as c:
        register(c, "alice", email="alice@example.com")
        mailbox = c.app.state.mail  # type: ignore[attr-defined]
        deadline = time.monotonic() + 10
        while not mailbox.mails and time.monotonic() < deadline:
            time.sleep(0.02)
        page = c.get("/dev/outbox")
        assert page.status_code == 200 and VERIFY_SUBJECT in page.text and "alice@example.com" in page.text
        assert '<a href="http://localhost:8000/email/verify/' in page.text


def test_the_dev_outbox_is_404_in_production(settings: Settings, verify: DevVerifyBackend) -> None:
    prod = settings.with_overrides(env="production")
    with TestClient(create_app(prod, verify=verify, mail=DevMailbox()), base_url="https://testserver") as c:
        assert c.get("/dev/outbox").status_code == 404


def test_r_pr2_access_log_lines_never_keep_a_mailed_token(caplog: pytest.LogCaptureFixture) -> None:
    record = logging.LogRecord("uvicorn.access", logging.INFO, "", 0, '%s - "%s %s HTTP/%s" %d',
                               ("127.0.0.1:5", "GET", "/password/reset/SECRETtoken_-1?x=1", "1.1", 200), None)
    RedactTokens().filter(record)
    assert "SECRETtoken" not in record.getMessage() and "/password/reset/[redacted]" in record.getMessage()
    for path in ("/email/verify/abc", "/email/confirm/abc", "/not-me/abc"):
        assert redact(path).endswith("/[redacted]")


def test_r_e9_two_processes_draining_one_outbox_send_each_mail_once(mail_settings: Settings, smtp: SmtpSink,
                                                                    tmp_path: Path) -> None:
    """Two real processes (`python -m webapp.mail drain`) on one database, started together."""
    db = Database(mail_settings.database_url)
    try:
        _fill(db, 40)
    finally:
        db.dispose()
    env = {**os.environ, "DATABASE_URL": mail_settings.database_url, "INSTANCE_DIR": str(tmp_path),
           "SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(smtp.port), "SMTP_SECURITY": "none",
           "APP_BASE_URL": BASE_URL, "APP_ENV": "development"}
    procs = [subprocess.Popen([sys.executable, "-m", "webapp.mail", "drain", "--batch", "2", "--worker", name],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
             for name in ("p1", "p2")]
    handled = [json.loads(p.communicate(timeout=60)[0].strip().splitlines()[-1])["handled"] for p in procs]
    assert all(p.returncode == 0 for p in procs)
    assert sum(handled) == 40, handled
    received = Counter(m.rcpt_tos[0] for m in smtp.messages())
    assert len(received) == 40 and set(received.values()) == {1}
    assert set(statuses(mail_settings)) == {"sent"}
