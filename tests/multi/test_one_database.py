"""Three app processes on one PostgreSQL database behave as one app.

Limits hold in total when attempts are spread round-robin over the processes (and fired at the same moment);
ending a session anywhere ends it everywhere; a code step moves freely between processes but completes once.
(The mail outbox's "each mail is delivered once" joins this suite when the outbox exists.)
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Iterator

import pytest

from tests.fakeverify.plugin import FakeVerify
from tests.multi.conftest import LIMITS, PG_URL, PROCESSES
from tests.multi.kit import Browser, Cluster, at_once, send, sql, turn_on_two_step
from tests.support import PASSWORD

WRONG = "not-the-password-at-all"
ADDRESSES = (f"198.51.100.{n}" for n in itertools.count(1))  # a documentation range: headers only, never dialled


@pytest.fixture
def browsers(cluster: Cluster, database_url: str, fake_verify: FakeVerify) -> Iterator[list[Browser]]:
    """Browsers for one test on a clean database, all from a client address of the test's own."""
    ip = next(ADDRESSES)
    made = [Browser(cluster, ip) for _ in range(8)]
    yield made
    for b in made:
        b.close()


def sends_to(fake: FakeVerify, phone: str) -> int:
    return len([r for r in fake.requests("start") if r["form"].get("To") == phone])


def test_the_account_lockout_holds_in_total(cluster: Cluster, browsers: list[Browser]) -> None:
    owner, attacker = browsers[0], browsers[1]
    owner.register(0, "alice")
    token = attacker.token(0, "/login")
    guesses = [
        lambda n=n: send(cluster, n, attacker.ip, attacker.cookies(), "/login",
                            {"csrf_token": token, "username": "alice", "password": f"{WRONG}-{n}"})
        for n in range(12)
    ]
    statuses = Counter(r.status_code for r in at_once(guesses))
    limit = int(LIMITS["LOGIN_MAX_FAILURES"])
    assert statuses == {422: limit, 429: 12 - limit}, statuses  # exactly five checked, on whichever process
    for n in range(PROCESSES):
        assert owner.login(n, "alice").status_code == 429  # locked everywhere, even with the right password


def test_the_per_address_sign_in_limit_holds_in_total(cluster: Cluster, browsers: list[Browser]) -> None:
    attacker = browsers[0]
    token = attacker.token(0, "/login")
    spray = [
        lambda n=n: send(cluster, n, attacker.ip, attacker.cookies(), "/login",
                            {"csrf_token": token, "username": f"nobody{n}", "password": WRONG})
        for n in range(30)
    ]
    statuses = Counter(r.status_code for r in at_once(spray))
    per_minute = int(LIMITS["IP_REQUESTS_PER_MINUTE"])
    assert statuses == {422: per_minute, 429: 30 - per_minute}, statuses


def test_the_code_attempt_limit_holds_in_total(cluster: Cluster, browsers: list[Browser],
                                                fake_verify: FakeVerify) -> None:
    user = browsers[0]
    user.register(0, "carol")
    turn_on_two_step(PG_URL, cluster.secret_key, "carol", "+14155550161")
    assert user.login(0, "carol").headers["location"] == "/login/verify"
    token = user.token(1, "/login/verify")
    [sid] = [row[0] for row in sql("SELECT verification_sid FROM mfa_challenges", PG_URL)]
    wrong = "000000" if fake_verify.code_for(sid) != "000000" else "111111"
    attempts = [lambda n=n: send(cluster, n, user.ip, user.cookies(), "/login/verify",
                                    {"csrf_token": token, "code": wrong}) for n in range(12)]
    statuses = Counter(r.status_code for r in at_once(attempts))
    checks = [r for r in fake_verify.requests("check") if r["form"].get("VerificationSid") == sid]
    assert len(checks) == 5, statuses  # the app's own limit, counted in the database: Twilio saw five checks
    assert statuses == {422: 4, 303: 8}, statuses  # four "not right", then the step ended for everyone else
    r = send(cluster, 2, user.ip, user.cookies(), "/login/verify",
                {"csrf_token": token, "code": fake_verify.code_for(sid)})
    assert r.headers["location"].startswith("/login")  # the right code comes too late on any process
    assert not user.signed_in_on(0)


def test_the_daily_send_limit_holds_in_total(cluster: Cluster, browsers: list[Browser],
                                             fake_verify: FakeVerify) -> None:
    phone = "+14155550162"
    browsers[0].register(0, "dave")
    turn_on_two_step(PG_URL, cluster.secret_key, "dave", phone)
    tokens = [b.token(n, "/login") for n, b in enumerate(browsers[:5])]
    sign_ins = [lambda n=n: send(cluster, n, browsers[n].ip, browsers[n].cookies(), "/login",
                                    {"csrf_token": tokens[n], "username": "dave", "password": PASSWORD})
                for n in range(5)]
    responses = at_once(sign_ins)
    per_day = int(LIMITS["MFA_SENDS_PER_USER_PER_DAY"])
    assert sends_to(fake_verify, phone) == per_day
    sent = [r for r in responses if r.status_code == 303 and r.headers["location"] == "/login/verify"]
    refused = [r for r in responses if r.status_code == 429 and "limit of codes" in r.text]
    assert (len(sent), len(refused)) == (per_day, 5 - per_day)


def test_a_session_ended_on_one_process_is_dead_on_the_others(cluster: Cluster, browsers: list[Browser]) -> None:
    user = browsers[0]
    user.register(0, "erin")
    assert user.login(0, "erin").status_code == 303
    assert all(user.signed_in_on(n) for n in range(PROCESSES))
    replayed = user.cookies()  # a copy of the cookie, as a thief would keep it
    assert user.post(1, "/logout").status_code == 303
    for n in range(PROCESSES):
        r = send(cluster, n, user.ip, replayed, "/profile")
        assert r.status_code == 303 and r.headers["location"].startswith("/login"), n


def test_sign_out_everywhere_on_one_process_ends_sessions_used_on_another(cluster: Cluster,
                                                                         browsers: list[Browser]) -> None:
    laptop, phone = browsers[0], browsers[1]
    laptop.register(0, "frank")
    assert laptop.login(0, "frank").status_code == 303 and laptop.signed_in_on(0)
    assert phone.login(1, "frank").status_code == 303 and phone.signed_in_on(1)
    assert phone.post(2, "/sessions/end-all").status_code == 303
    assert [laptop.signed_in_on(n) for n in range(PROCESSES)] == [False] * PROCESSES


def test_a_code_step_opened_on_one_process_is_finished_on_another(cluster: Cluster, browsers: list[Browser],
                                                                  fake_verify: FakeVerify) -> None:
    user = browsers[0]
    user.register(0, "grace")
    turn_on_two_step(PG_URL, cluster.secret_key, "grace", "+14155550163")
    assert user.login(0, "grace").headers["location"] == "/login/verify"
    [sid] = [row[0] for row in sql("SELECT verification_sid FROM mfa_challenges", PG_URL)]
    r = user.post(2, "/login/verify", {"code": fake_verify.code_for(sid)}, page="/login/verify")
    assert r.status_code == 303 and r.headers["location"] == "/profile", r.text
    assert all(user.signed_in_on(n) for n in range(PROCESSES))


def test_a_code_step_cannot_be_finished_twice_at_once_on_two_processes(cluster: Cluster,
                                                                      browsers: list[Browser]) -> None:
    """Recovery codes are checked by each process itself (bcrypt), so only the database can stop a double finish."""
    user = browsers[0]
    user.register(0, "heidi")
    codes = turn_on_two_step(PG_URL, cluster.secret_key, "heidi", "+14155550164")
    for round_ in range(int(LIMITS["MFA_SENDS_PER_USER_PER_DAY"])):  # each sign-in sends a code first
        user.http.cookies.clear()
        assert user.login(0, "heidi").headers["location"] == "/login/verify"
        token = user.token(0, "/login/recovery")
        before = sql("SELECT count(*) FROM auth_sessions", PG_URL)[0][0]
        mine, other = codes[2 * round_], codes[2 * round_ + 1]  # two different valid codes, one per process
        finishes = at_once([
            lambda code=code, n=n, token=token: send(cluster, n, user.ip, user.cookies(), "/login/recovery",
                                                     {"csrf_token": token, "recovery_code": code})
            for n, code in ((1, mine), (2, other))])
        won = [r for r in finishes if r.headers.get("location") == "/2fa/recovery-used"]
        assert len(won) == 1, [(r.status_code, r.headers.get("location")) for r in finishes]
        assert sql("SELECT count(*) FROM auth_sessions", PG_URL)[0][0] == before + 1
