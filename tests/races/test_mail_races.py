"""Overlapping requests on mailed links: each link is spent once, and a link can't undo the owner's concurrent
change (R-E4, R-E12). The outbox's own claim race is in tests/mail/test_outbox.py. SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from typing import Any
from unittest import mock

import pytest
from starlette.applications import Starlette

from tests.mail.smtp import BASE_URL, SmtpSink
from tests.races.kit import Browser, Gate, running
from tests.support import PASSWORD, events, rows, user_row
from webapp import create_app
from webapp.identity import reset
from webapp.mail import links
from webapp.settings import Settings
from webapp.verify.dev import DevVerifyBackend

pytestmark = pytest.mark.anyio
NEW_PASSWORD = "copper-meadow-violin-83"
OTHER_PASSWORD = "saffron-glacier-tuba-61"
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def smtp() -> Iterator[SmtpSink]:
    sink = SmtpSink()
    sink.start()
    yield sink
    sink.stop()


@pytest.fixture
def race_app(settings: Settings, smtp: SmtpSink) -> Starlette:
    mail = settings.with_overrides(smtp_host="127.0.0.1", smtp_port=smtp.port, smtp_security="none",
                                   app_base_url=BASE_URL, mail_poll_s=0.2, mail_retry_base_s=0.2)
    return create_app(mail, verify=DevVerifyBackend())


async def wait_mail(smtp: SmtpSink, to: str, subject: str, count: int = 1) -> Any:
    return await asyncio.to_thread(smtp.wait_for_mail, to, subject, count)


async def reset_link(b: Browser, smtp: SmtpSink, count: int = 1) -> str:
    r = await b.post("/password/forgot", {"email": "alice@example.com"}, page="/password/forgot")
    assert r.status_code == 303, r.text
    return str((await wait_mail(smtp, "alice@example.com", "Reset your password", count)).link(links.RESET))


async def choose(b: Browser, path: str, password: str) -> Any:
    page = (await b.http.get(path)).text
    match = _CSRF.search(page)
    assert match, page
    return await b.http.post(path, data={"csrf_token": match.group(1), "new_password": password,
                                         "new_password_confirm": password})


def hold_reset_hash(gate: Gate) -> Any:
    return mock.patch.object(reset, "hash_password", gate.wrap(reset.hash_password))


async def test_r_e4_two_concurrent_uses_of_one_reset_link_change_the_password_once(race_app: Starlette,
                                                                                   smtp: SmtpSink,
                                                                                   settings: Settings) -> None:
    async with running(race_app) as browser:
        owner, first, second = browser(), browser(), browser()
        await owner.register("alice")
        path = await reset_link(owner, smtp)
        gate = Gate()
        with hold_reset_hash(gate):
            held = asyncio.create_task(choose(first, path, NEW_PASSWORD))
            await gate.reached.wait()  # the first has checked the link and hashed; the second goes now
            won = await choose(second, path, OTHER_PASSWORD)
            gate.open()
            lost = await held
        assert won.headers["location"] == "/login?notice=password-reset"
        assert lost.headers["location"] == path  # the link's page now says it was used
        assert (await first.login("alice", NEW_PASSWORD)).status_code == 422
        assert (await first.login("alice", OTHER_PASSWORD)).status_code == 303
        await wait_mail(smtp, "alice@example.com", "Your password was reset")  # while the app (its sender) runs
    assert len(events(settings, "authn_password_reset")) == 1
    assert len([m for m in smtp.messages() if m.subject == "Your password was reset"]) == 1


async def test_r_e4_a_reset_link_cannot_undo_the_owners_concurrent_password_change(race_app: Starlette,
                                                                                   smtp: SmtpSink,
                                                                                   settings: Settings) -> None:
    async with running(race_app) as browser:
        owner, attacker = browser(), browser()
        await owner.register("alice")
        assert (await owner.login("alice")).status_code == 303
        path = await reset_link(attacker, smtp)  # someone with the mailbox, for a moment
        gate = Gate()
        with hold_reset_hash(gate):
            held = asyncio.create_task(choose(attacker, path, NEW_PASSWORD))
            await gate.reached.wait()
            change = {"current_password": PASSWORD, "new_password": OTHER_PASSWORD,
                      "new_password_confirm": OTHER_PASSWORD}
            r = await owner.post("/account/password", change, page="/account/password")
            assert r.status_code == 303
            gate.open()
            lost = await held
        assert lost.headers["location"] == path
        assert await owner.signed_in()  # the owner's fresh session survives
    hashes = rows(settings, "SELECT password_hash FROM users")
    assert len(hashes) == 1 and events(settings, "authn_password_reset") == []
    assert user_row(settings)["session_epoch"] >= 1


async def test_r_e12_two_concurrent_confirms_of_this_wasnt_me_count_once(race_app: Starlette, smtp: SmtpSink,
                                                                       settings: Settings) -> None:
    async with running(race_app) as browser:
        owner, a, b = browser(), browser(), browser()
        await owner.register("alice")
        assert (await owner.login("alice")).status_code == 303
        r = await owner.post("/account/password", {"current_password": PASSWORD, "new_password": NEW_PASSWORD,
                                                   "new_password_confirm": NEW_PASSWORD}, page="/account/password")
        assert r.status_code == 303
        path = (await wait_mail(smtp, "alice@example.com", "Your password was changed")).link(links.NOT_ME)
        tokens = [await x.token(path) for x in (a, b)]
        results = await asyncio.gather(*(x.http.post(path, data={"csrf_token": t}) for x, t in zip((a, b), tokens,
                                                                                                     strict=True)))
        assert sorted(r.headers["location"] for r in results) == sorted(["/account/secured", path])
        assert not await owner.signed_in()
    assert len(events(settings, "not_me_confirmed")) == 1


async def test_r_e14_two_concurrent_confirms_of_a_new_address_change_it_once(race_app: Starlette, smtp: SmtpSink,
                                                                           settings: Settings) -> None:
    async with running(race_app) as browser:
        owner, a, b = browser(), browser(), browser()
        await owner.register("alice")
        assert (await owner.login("alice")).status_code == 303
        r = await owner.post("/account/email", {"email": "new@example.com", "password": PASSWORD},
                             page="/account/email")
        assert r.status_code == 303, r.text
        path = (await wait_mail(smtp, "new@example.com", "Confirm your new email address")).link(links.CONFIRM)
        tokens = [await x.token(path) for x in (a, b)]
        results = await asyncio.gather(*(x.http.post(path, data={"csrf_token": t}) for x, t in zip((a, b), tokens,
                                                                                                     strict=True)))
        assert sorted(r.headers["location"] for r in results) == sorted(["/login?notice=email-changed", path])
        await wait_mail(smtp, "alice@example.com", "Your email address was changed")  # while the sender runs
    assert len(events(settings, "email_changed")) == 1
    assert user_row(settings)["email"] == "new@example.com"
    assert len([m for m in smtp.messages() if m.subject == "Your email address was changed"]) == 1
