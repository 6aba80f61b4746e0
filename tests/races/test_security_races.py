"""An attacker racing the owner: each security change holds when the overlapping request lands mid-way.

Each test fires the overlapping requests (a `Gate` pins the worst order where timing alone would be luck) and
checks the invariant in the database. They run on SQLite and, with TEST_DATABASE_URL, on PostgreSQL.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from unittest import mock

import httpx2
import pytest
import time_machine
from starlette.applications import Starlette

from tests.races.kit import Browser, Gate, running
from tests.support import PASSWORD, PHONE, CountingVerify, execute, rows, user_row
from webapp import create_app
from webapp.identity import users
from webapp.settings import Settings
from webapp.verify.gateway import CheckResult

pytestmark = pytest.mark.anyio
NEW_PASSWORD = "copper-meadow-violin-83"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def race_app(settings: Settings, verify: CountingVerify) -> Starlette:
    return create_app(settings, verify=verify)


def live_sessions(settings: Settings, username: str = "alice") -> int:
    return len(rows(settings, "SELECT s.id_hash FROM auth_sessions s JOIN users u ON u.id = s.user_id "
                              "WHERE u.username = :u AND s.revoked_at IS NULL AND s.epoch = u.session_epoch",
                    u=username))


def hold_password_check(gate: Gate) -> Any:
    return mock.patch.object(users, "check_password", gate.wrap(users.check_password))


async def enable_2fa(b: Browser, verify: CountingVerify, phone: str = "(415) 555-0123") -> None:
    r = await b.post("/2fa/enable", {"password": PASSWORD}, page="/2fa/enable")
    assert r.status_code == 303, r.text
    r = await b.post("/2fa/phone-number", {"region": "US", "phone": phone}, page="/2fa")
    assert r.status_code == 303, r.text
    r = await b.post("/2fa/verify", {"code": verify.code}, page="/2fa")
    assert r.status_code == 200 and "Save your recovery codes" in r.text, r.text


# --- 1. A correct password can't undo the owner's change --------------------------------------------------------

async def attacker_signs_in_while(browser: Callable[[], Browser], owner_acts: Callable[[Browser], Awaitable[None]]
                                  ) -> tuple[Browser, Browser, httpx2.Response]:
    """The attacker's password is checked against the account as it is; the owner acts before the result lands."""
    owner, attacker = browser(), browser()
    await owner.register("alice")
    assert (await owner.login("alice")).status_code == 303
    gate = Gate()
    with hold_password_check(gate):
        attempt = asyncio.create_task(attacker.login("alice"))
        await gate.reached.wait()
        await owner_acts(owner)
        gate.open()
        return owner, attacker, await attempt


async def test_sign_in_during_sign_out_everywhere_keeps_old_sessions_dead(race_app: Starlette,
                                                                        settings: Settings) -> None:
    async with running(race_app) as browser:
        laptop = browser()

        async def sign_out_everywhere(owner: Browser) -> None:
            assert (await laptop.login("alice")).status_code == 303
            assert (await owner.post("/sessions/end-all")).headers["location"].startswith("/login")

        owner, attacker, r = await attacker_signs_in_while(browser, sign_out_everywhere)
        assert r.status_code == 422  # checked against the account as it was before: refused, not a session
        assert not await laptop.signed_in() and not await owner.signed_in() and not await attacker.signed_in()
        assert live_sessions(settings) == 0


async def test_sign_in_during_password_change_cannot_restore_the_old_hash(race_app: Starlette,
                                                                         verify: CountingVerify) -> None:
    async with running(race_app) as browser:
        owner, attacker, r = await attacker_signs_in_while(
            browser, lambda owner: _owner_changes_password(owner, verify))
        assert r.status_code == 422 and not await attacker.signed_in()
        assert (await browser().login("alice")).status_code == 422  # the old password stays dead
        assert (await browser().login("alice", NEW_PASSWORD)).status_code == 303
        assert await owner.signed_in()


async def test_sign_in_during_enrollment_cannot_turn_two_step_off(race_app: Starlette, settings: Settings,
                                                                 verify: CountingVerify) -> None:
    async with running(race_app) as browser:
        _, attacker, r = await attacker_signs_in_while(browser, lambda owner: enable_2fa(owner, verify))
        assert user_row(settings)["mfa_enabled"] in (True, 1)
        assert user_row(settings)["phone_e164"] == PHONE
        assert r.status_code == 422 and not await attacker.signed_in()


# --- 2. Attempt counters never lose an update -------------------------------------------------------------------

@pytest.mark.parametrize("code", ["000000", "12ab56"], ids=["wrong", "malformed"])
async def test_twenty_concurrent_codes_on_one_challenge_all_count(race_app: Starlette, settings: Settings,
                                                                  verify: CountingVerify, code: str) -> None:
    """R-O5: at most `mfa_max_checks` reach Verify however many arrive together; every one is counted."""
    execute(settings, "UPDATE users SET mfa_enabled = :t, phone_e164 = :p", t=True, p=PHONE)
    async with running(race_app) as browser:
        attacker = browser()
        await attacker.register("alice")
        execute(settings, "UPDATE users SET mfa_enabled = :t, phone_e164 = :p", t=True, p=PHONE)
        r = await attacker.login("alice")
        assert r.headers["location"] == "/login/verify"
        token = await attacker.token("/login/verify")
        answers = await asyncio.gather(*(attacker.post("/login/verify", {"code": code}, token=token)
                                         for _ in range(20)))
    assert all(a.status_code in (303, 422, 429) for a in answers)
    challenge = rows(settings, "SELECT failed_checks FROM mfa_challenges")[0]
    assert challenge["failed_checks"] == settings.mfa_max_checks
    assert user_row(settings)["mfa_failed_count"] == settings.mfa_max_checks
    assert len(verify.checks) <= settings.mfa_max_checks
    fails = rows(settings, "SELECT id FROM security_events WHERE event = 'mfa_check_fail'")
    assert len(fails) == settings.mfa_max_checks


async def test_concurrent_wrong_codes_across_challenges_lock_the_second_step(
        race_app: Starlette, settings: Settings) -> None:
    """R-O6: four browsers × five wrong codes at once = 20 failures, past the per-user lock of 10."""
    async with running(race_app) as browser:
        b0 = browser()
        await b0.register("alice")
        execute(settings, "UPDATE users SET mfa_enabled = :t, phone_e164 = :p", t=True, p=PHONE)
        browsers = [b0, browser(), browser(), browser()]
        tokens = []
        for b in browsers:
            assert (await b.login("alice")).headers["location"] == "/login/verify"
            tokens.append(await b.token("/login/verify"))
        await asyncio.gather(*(b.post("/login/verify", {"code": "000000"}, token=t)
                               for b, t in zip(browsers, tokens, strict=True) for _ in range(5)))
    user = user_row(settings)
    assert user["mfa_locked_until"] is not None
    assert len(rows(settings, "SELECT id FROM security_events WHERE event = 'mfa_lock'")) == 1


# --- 3. A pending code step dies with the owner's reaction ------------------------------------------------------

async def _owner_changes_password(owner: Browser, verify: CountingVerify) -> None:
    r = await owner.post("/account/password", {"current_password": PASSWORD, "new_password": NEW_PASSWORD,
                                               "new_password_confirm": NEW_PASSWORD}, page="/account/password")
    assert r.status_code == 303, r.text


async def _owner_signs_out_everywhere(owner: Browser, verify: CountingVerify) -> None:
    assert (await owner.post("/sessions/end-all")).status_code == 303


async def _owner_turns_two_step_off(owner: Browser, verify: CountingVerify) -> None:
    assert (await owner.post("/2fa/disable", {"password": PASSWORD}, page="/2fa/disable")).status_code == 303
    r = await owner.post("/2fa/verify", {"code": verify.code}, page="/2fa")
    assert r.headers["location"].startswith("/profile"), r.text


async def _owner_changes_phone(owner: Browser, verify: CountingVerify) -> None:
    assert (await owner.post("/2fa/phone", {"password": PASSWORD}, page="/2fa/phone")).status_code == 303
    assert (await owner.post("/2fa/verify", {"code": verify.code}, page="/2fa")).status_code == 303
    r = await owner.post("/2fa/phone-number", {"region": "GB", "phone": "07400 123456"}, page="/2fa")
    assert r.status_code == 303, r.text
    r = await owner.post("/2fa/verify", {"code": verify.code}, page="/2fa")
    assert r.headers["location"].startswith("/profile"), r.text


@pytest.mark.parametrize("reaction", [_owner_changes_password, _owner_signs_out_everywhere,
                                      _owner_turns_two_step_off, _owner_changes_phone],
                         ids=["password-change", "sign-out-everywhere", "2fa-off", "phone-change"])
async def test_attackers_pending_code_step_dies_when_the_owner_reacts(
        race_app: Starlette, settings: Settings, verify: CountingVerify,
        reaction: Callable[[Browser, CountingVerify], Any]) -> None:
    async with running(race_app) as browser:
        owner, attacker = browser(), browser()
        await owner.register("alice")
        assert (await owner.login("alice")).status_code == 303
        await enable_2fa(owner, verify)
        r = await attacker.login("alice")
        assert r.headers["location"] == "/login/verify"  # the attacker has the password, not the phone
        attackers_code = verify.code  # suppose the SMS was intercepted as well
        token = await attacker.token("/login/verify")
        await reaction(owner, verify)
        r = await attacker.post("/login/verify", {"code": attackers_code}, token=token)
        assert r.headers["location"].startswith("/login"), r.text
        assert not await attacker.signed_in()


# --- 4. A challenge's number can't change under a sent code -----------------------------------------------------

async def test_two_quick_phone_submissions_cannot_bind_a_number_that_got_no_code(
        race_app: Starlette, settings: Settings, verify: CountingVerify) -> None:
    victim, attackers_number = "+14155550123", "+14155550188"
    async with running(race_app) as browser:
        b = browser()
        await b.register("alice")
        assert (await b.login("alice")).status_code == 303
        assert (await b.post("/2fa/enable", {"password": PASSWORD}, page="/2fa/enable")).status_code == 303
        token = await b.token("/2fa")
        await asyncio.gather(b.post("/2fa/phone-number", {"region": "US", "phone": victim}, token=token),
                             b.post("/2fa/phone-number", {"region": "US", "phone": attackers_number}, token=token))
        sent = {sid: (to, code) for (to, _), msg in zip(verify.starts, reversed(verify.outbox), strict=True)
                for sid, code in [(msg.sid, msg.code)]}
        for to, code in sent.values():
            await b.post("/2fa/verify", {"code": code}, page="/2fa")
            bound = user_row(settings)["phone_e164"]
            assert bound in (None, to)  # a code sent to one number never binds another
            if bound:
                break
    challenges = rows(settings, "SELECT phone_e164, verification_sid FROM mfa_challenges WHERE phone_e164 != ''")
    for ch in challenges:
        if ch["verification_sid"]:
            assert sent[ch["verification_sid"]][0] == ch["phone_e164"]


# --- 5. Sends and number bindings are reserved atomically -------------------------------------------------------

async def test_concurrent_resends_after_the_cooldown_send_one_code(race_app: Starlette, settings: Settings,
                                                                  verify: CountingVerify) -> None:
    async with running(race_app) as browser:
        b = browser()
        await b.register("alice")
        execute(settings, "UPDATE users SET mfa_enabled = :t, phone_e164 = :p", t=True, p=PHONE)
        assert (await b.login("alice")).headers["location"] == "/login/verify"
        assert len(verify.starts) == 1
        token = await b.token("/login/verify")
        later = datetime.now(UTC) + timedelta(seconds=settings.mfa_resend_cooldown_s + 1)
        with time_machine.travel(later, tick=False):
            answers = await asyncio.gather(*(b.post("/login/resend", token=token) for _ in range(6)))
    assert len(verify.starts) == 2
    assert sorted(a.status_code for a in answers) == [200] + [429] * 5
    assert rows(settings, "SELECT sends FROM mfa_challenges")[0]["sends"] == 2


class ApprovesEveryCode(CountingVerify):
    """Verify keeps one pending code per number; here each account's code is right, so only the limit decides."""

    async def check(self, verification_sid: str, code: str) -> CheckResult:
        self.checks.append((verification_sid, code))
        return CheckResult("approved")


async def test_accounts_binding_one_number_at_once_stay_within_the_limit(settings: Settings) -> None:
    """R-V3: five accounts confirming the same number together: at most `max_accounts_per_phone` get it."""
    verify = ApprovesEveryCode()
    app = create_app(settings.with_overrides(enroll_sends_per_ip_per_hour=50), verify=verify)
    async with running(app) as browser:
        people = [browser() for _ in range(5)]
        codes = []
        for n, b in enumerate(people):
            await b.register(f"user{n}")
            assert (await b.login(f"user{n}")).status_code == 303
            assert (await b.post("/2fa/enable", {"password": PASSWORD}, page="/2fa/enable")).status_code == 303
            r = await b.post("/2fa/phone-number", {"region": "US", "phone": PHONE}, page="/2fa")
            assert r.status_code == 303, r.text
            codes.append((b, verify.code, await b.token("/2fa")))
        await asyncio.gather(*(b.post("/2fa/verify", {"code": code}, token=token) for b, code, token in codes))
    bound = rows(settings, "SELECT id FROM users WHERE phone_e164 = :p AND mfa_enabled = :t", p=PHONE, t=True)
    assert len(bound) == settings.max_accounts_per_phone


async def test_recovery_code_guesses_are_limited_per_address(settings: Settings, verify: CountingVerify) -> None:
    app = create_app(settings.with_overrides(recovery_checks_per_ip_per_hour=3), verify=verify)
    async with running(app) as browser:
        b = browser()
        await b.register("alice")
        execute(settings, "UPDATE users SET mfa_enabled = :t, phone_e164 = :p", t=True, p=PHONE)
        statuses = []
        for _ in range(2):
            assert (await b.login("alice")).headers["location"] == "/login/verify"
            for _ in range(2):
                r = await b.post("/login/recovery", {"recovery_code": "AAAA-BBBB-CCCC-DDDD"}, page="/login/recovery")
                statuses.append(r.status_code)
    assert statuses == [422, 422, 422, 429]


async def test_two_recovery_codes_at_once_finish_the_step_once_and_spend_one_code(
        race_app: Starlette, settings: Settings, verify: CountingVerify) -> None:
    """R-RC3, R-O4: the request that loses the race burns no recovery code and leaves no failed-step banner."""
    async with running(race_app) as browser:
        owner = browser()
        await owner.register("alice")
        assert (await owner.login("alice")).status_code == 303
        r = await owner.post("/2fa/enable", {"password": PASSWORD}, page="/2fa/enable")
        r = await owner.post("/2fa/phone-number", {"region": "US", "phone": "(415) 555-0123"}, page="/2fa")
        r = await owner.post("/2fa/verify", {"code": verify.code}, page="/2fa")
        codes = re.findall(r"<code>([0-9A-Z-]{19})</code>", r.text)
        assert len(codes) == 10
        b = browser()
        assert (await b.login("alice")).headers["location"] == "/login/verify"
        token = await b.token("/login/recovery")
        answers = await asyncio.gather(*(b.post("/login/recovery", {"recovery_code": c}, token=token)
                                         for c in codes[:2]))
    assert sorted(a.headers.get("location", "") for a in answers) == ["/2fa/recovery-used", "/login"]
    assert len(rows(settings, "SELECT id FROM recovery_codes WHERE used_at IS NOT NULL")) == 1
    assert rows(settings, "SELECT id FROM security_notices WHERE kind = 'second_step_failed'") == []
