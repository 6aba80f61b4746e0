"""Overlapping requests against the new methods' state: each is claimed by one conditional statement.

The same authenticator-app code twice at once, a cloned passkey answering two sign-ins with one counter value, a
passwordless ceremony answered twice, and a remembered browser forgotten while its sign-in is in flight. A `Gate`
pins the worst order: the first answer is proved, then held until the second has finished. SQLite and PostgreSQL.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any
from unittest import mock

import pytest
from starlette.applications import Starlette

from tests.factors.kit import App
from tests.factors.softkey import SoftPasskey
from tests.races.kit import Browser, Gate, running
from tests.support import PASSWORD, CountingVerify, rows
from webapp import create_app
from webapp.identity import users
from webapp.settings import Settings
from webapp.twofactor import proofs

pytestmark = pytest.mark.anyio
KEY = re.compile(r'<code class="setup-key"[^>]*>([A-Z2-7 ]+)</code>')


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def race_app(settings: Settings) -> Starlette:
    return create_app(settings.with_overrides(app_base_url="https://testserver"), verify=CountingVerify())


def live_sessions(settings: Settings) -> int:
    return len(rows(settings, "SELECT id_hash FROM auth_sessions WHERE revoked_at IS NULL AND mfa_passed = :t",
                    t=True))


async def with_app(b: Browser) -> App:
    await b.register("alice")
    assert (await b.login("alice")).status_code == 303
    assert (await b.post("/2fa/app", {"password": PASSWORD}, page="/2fa/app")).status_code == 303
    match = KEY.search((await b.http.get("/2fa")).text)
    assert match
    app = App(match.group(1).replace(" ", ""))
    r = await b.post("/2fa/verify", {"code": app.code(-1)}, page="/2fa")
    assert "Save your recovery codes" in r.text, r.text
    return app


def hold_first_proof(gate: Gate) -> Any:
    return mock.patch.object(proofs, "prove", gate.wrap(proofs.prove))


async def test_one_app_code_sent_twice_at_once_signs_in_once(race_app: Starlette, settings: Settings) -> None:
    async with running(race_app) as browser:
        owner, first, second = browser(), browser(), browser()
        app = await with_app(owner)
        for b in (first, second):
            assert (await b.login("alice")).headers["location"] == "/login/verify"
        tokens = [await b.token("/login/verify") for b in (first, second)]
        before = live_sessions(settings)
        gate = Gate()
        code = app.code()
        with hold_first_proof(gate):
            held = asyncio.create_task(first.post("/login/verify", {"code": code}, token=tokens[0]))
            await gate.reached.wait()  # the first answer is proved, not yet claimed
            other = await second.post("/login/verify", {"code": code}, token=tokens[1])
            gate.open()
            answers = [await held, other]
    signed_in = [a for a in answers if a.headers.get("location", "").startswith("/profile")]
    assert len(signed_in) == 1, [a.status_code for a in answers]
    assert live_sessions(settings) == before + 1


async def test_twenty_copies_of_one_app_code_on_one_step_pass_once(race_app: Starlette, settings: Settings) -> None:
    async with running(race_app) as browser:
        owner, attacker = browser(), browser()
        app = await with_app(owner)
        assert (await attacker.login("alice")).headers["location"] == "/login/verify"
        token = await attacker.token("/login/verify")
        answers = await asyncio.gather(*(attacker.post("/login/verify", {"code": app.code()}, token=token)
                                         for _ in range(20)))
    assert sum(a.headers.get("location", "").startswith("/profile") for a in answers) == 1
    assert all(a.status_code in (303, 409, 422, 429) for a in answers)


async def _with_passkey(b: Browser) -> SoftPasskey:
    await b.register("alice")
    assert (await b.login("alice")).status_code == 303
    assert (await b.post("/2fa/passkey", {"password": PASSWORD}, page="/2fa/passkey")).status_code == 303
    created = (await b.post("/2fa/passkey/options", page="/2fa")).json()["publicKey"]
    key = SoftPasskey()
    r = await b.post("/2fa/passkey/register", {"credential": key.register(created), "label": "Key"}, page="/2fa")
    assert "Save your recovery codes" in r.text, r.text
    return key


async def test_a_cloned_passkey_answering_two_sign_ins_with_one_counter_wins_once(
        race_app: Starlette, settings: Settings) -> None:
    async with running(race_app) as browser:
        owner, first, second = browser(), browser(), browser()
        key = await _with_passkey(owner)
        answers = []
        for b in (first, second):
            assert (await b.login("alice")).headers["location"] == "/login/verify"
            token = await b.token("/login/verify")
            asked = (await b.post("/login/passkey/options", token=token)).json()["publicKey"]
            answers.append((b, token, key.assertion(asked, counter=7)))  # the same counter value twice
        gate = Gate()
        with hold_first_proof(gate):
            held = asyncio.create_task(first.post("/login/verify", {"credential": answers[0][2]}, token=answers[0][1]))
            await gate.reached.wait()
            other = await second.post("/login/verify", {"credential": answers[1][2]}, token=answers[1][1])
            gate.open()
            results = [await held, other]
    assert sum(r.headers.get("location", "").startswith("/profile") for r in results) == 1
    assert rows(settings, "SELECT sign_count FROM authenticators")[0]["sign_count"] == 7


async def test_a_passwordless_answer_posted_twice_at_once_signs_in_once(race_app: Starlette,
                                                                         settings: Settings) -> None:
    async with running(race_app) as browser:
        owner, attacker = browser(), browser()
        key = await _with_passkey(owner)
        token = await attacker.token("/login")
        asked = (await attacker.post("/login/passkey-only/options", token=token)).json()
        answer = {"ceremony": asked["fields"]["ceremony"], "credential": key.assertion(asked["publicKey"])}
        results = await asyncio.gather(*(attacker.post("/login/passkey-only", answer, token=token) for _ in range(5)))
    assert sum(r.headers.get("location", "").startswith("/profile") for r in results) == 1


async def test_forgetting_a_browser_during_its_sign_in_still_asks_for_the_second_step(
        race_app: Starlette, settings: Settings) -> None:
    async with running(race_app) as browser:
        owner, laptop = browser(), browser()
        app = await with_app(owner)
        assert (await laptop.login("alice")).headers["location"] == "/login/verify"
        r = await laptop.post("/login/verify", {"code": app.code(1), "remember_browser": "1"}, page="/login/verify")
        assert r.headers["location"] == "/profile"
        await laptop.post("/logout")
        gate = Gate()
        with mock.patch.object(users, "check_password", gate.wrap(users.check_password)):
            attempt = asyncio.create_task(laptop.login("alice"))
            await gate.reached.wait()  # the password is checked; the owner forgets every browser now
            assert (await owner.post("/browsers/forget-all")).status_code == 303
            gate.open()
            r = await attempt
    assert r.headers["location"] == "/login/verify"
    assert rows(settings, "SELECT id FROM remembered_browsers WHERE revoked_at IS NULL") == []
