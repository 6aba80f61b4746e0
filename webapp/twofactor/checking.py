"""The one code-step engine: check an answer against a challenge, for every purpose and every method.

The answer is a code (sent by SMS, or from an authenticator app), a passkey's assertion, or a recovery code; what
differs per method lives in proofs.py. Each attempt is counted before it is checked (per challenge, per user, and
per IP for recovery codes) by conditional UPDATEs, so concurrent guesses can't share one count (R-O5, R-O6). The
check itself (Twilio, bcrypt, HMAC or a signature) runs outside any transaction; the unit of work that follows claims
the proof, consumes the challenge and applies the purpose's effect, or settles the failure.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import update
from sqlalchemy.orm import Session

from webapp import metrics
from webapp.db import utcnow
from webapp.deps import Deps
from webapp.mail import notices
from webapp.models import AuthSession, User
from webapp.security import audit, sessions, throttle
from webapp.security.clients import Client
from webapp.settings import Settings
from webapp.twofactor import challenges, passkeys, proofs, recovery
from webapp.twofactor.answers import Candidate, Proof
from webapp.twofactor.challenges import Found, clean_code
from webapp.twofactor.completion import NUMBER_REFUSED, Completion, complete, number_taken
from webapp.twofactor.methods import SMS, TOTP, WEBAUTHN
from webapp.twofactor.proofs import RECOVERY
from webapp.verify import TooManyChecks, VerificationGone, VerifyError

UNAVAILABLE = "We couldn't reach the SMS service to check the code. Nothing has changed; please try again in a minute."
TOO_MANY = "Too many wrong codes. Please start again."
EXPIRED = "This code has expired. Please start again."
ENDED = "This step has ended. Please start again."


@dataclass(frozen=True)
class Outcome:
    """ok: passed, with what it did. Otherwise `message`, whether the challenge is over, and the HTTP status."""

    ok: bool
    message: str = ""
    over: bool = False
    status: int = 422
    retry_after: int = 0
    notice: str = "too-many-attempts"
    done: Completion | None = None
    result: str = "wrong"  # for the checks-by-outcome metric: passed, wrong, exhausted, locked, ended, …


@dataclass(frozen=True)
class _Attempt:
    checks: int
    candidates: list[Candidate]
    expected: str | None = None  # a passkey ceremony's challenge, taken from the row by this attempt


WHERE_FROM = {SMS: "the message", TOTP: "your authenticator app"}


def locked_message(seconds: int) -> str:
    minutes = max(1, (seconds + 59) // 60)
    return f"Two-step verification is temporarily locked after too many wrong codes. Try again in {minutes} minutes."


def lock_left(user: User) -> int:
    if user.mfa_locked_until and user.mfa_locked_until > utcnow():
        return int((user.mfa_locked_until - utcnow()).total_seconds()) + 1
    return 0


async def check(deps: Deps, client: Client, found: Found, raw: str, *, factor: str,
                acting: AuthSession | None = None, label: str = "", remember_browser: bool = False) -> Outcome:
    """Check `raw` against the challenge and, if right, complete the step.

    factor: "recovery" for a recovery code; otherwise the challenge's own method answers ("sms" is accepted for
    it, as before methods existed). label: the name for a method being added.
    """
    outcome = await _check(deps, client, found, raw, factor=factor, acting=acting, label=label,
                           remember_browser=remember_browser)
    metrics.code_checked(factor, outcome.result)
    if outcome.result == "locked_out":
        metrics.locked_out("mfa")
    elif outcome.result in ("locked", "rate_limited"):
        metrics.refused("mfa-locked" if outcome.result == "locked" else "recovery-ip")
    return outcome


async def _check(deps: Deps, client: Client, found: Found, raw: str, *, factor: str,
                 acting: AuthSession | None, label: str, remember_browser: bool) -> Outcome:
    ch, user = found.challenge, found.user
    factor = factor if factor == RECOVERY else ch.method
    if wait := lock_left(user):
        return Outcome(False, locked_message(wait), status=429, retry_after=wait, result="locked")
    if found.expired:
        return Outcome(False, EXPIRED, over=True, notice="login-expired", result="expired")
    code = raw[:64] if factor == RECOVERY else raw if factor == WEBAUTHN else clean_code(raw)
    try:
        attempt = await deps.db.write(_reserve, deps.settings, client, ch.id_hash, user.id, factor, code)
    except _Refused as refused:
        return refused.outcome
    if code is None or (factor == WEBAUTHN and not code) or (factor == SMS and not ch.verification_sid):
        failed = await deps.db.write(_settle_failure, deps.settings, client, ch.id_hash, user.id, factor, attempt)
        if failed.over or factor == WEBAUTHN:
            return failed
        return Outcome(False, f"Enter the 6-digit code from {WHERE_FROM.get(factor, 'the message')}. "
                       + failed.message.split(". ", 1)[1], result=failed.result)
    try:
        passed = await proofs.prove(deps, ch, factor, code, attempt.candidates, attempt.expected)
    except TooManyChecks:
        return Outcome(False, TOO_MANY, over=True, status=429, result="exhausted")
    except VerificationGone:
        return Outcome(False, EXPIRED, over=True, notice="login-expired", result="expired")
    except VerifyError:
        await deps.db.write(_refund, ch.id_hash, user.id)
        return Outcome(False, UNAVAILABLE, status=503, retry_after=60, result="unavailable")
    if passed is None or passed.problem:
        failed = await deps.db.write(_settle_failure, deps.settings, client, ch.id_hash, user.id, factor, attempt,
                                     passed)
        return failed
    first = ch.purpose in challenges.FIRST_METHOD_CAPABLE and not user.mfa_enabled
    batch = await recovery.make_batch(deps.settings.secret_key, deps.settings.recovery_code_count,
                                      deps.settings.bcrypt_rounds) if first else None
    try:
        return await deps.db.write(_settle_pass, deps.settings, client, ch.id_hash, user.id, factor, passed, acting,
                                   batch, label, remember_browser)
    except _ClaimLost:  # a concurrent answer spent the same proof (a replayed app code, a cloned passkey)
        return await deps.db.write(_settle_failure, deps.settings, client, ch.id_hash, user.id, factor, attempt)


class _ClaimLost(Exception):
    """Raised inside the consuming unit of work, so the consumption rolls back with it."""


class _Refused(Exception):
    def __init__(self, outcome: Outcome) -> None:
        super().__init__(outcome.message)
        self.outcome = outcome


def _reserve(s: Session, settings: Settings, client: Client, ch_id: str, user_id: int, factor: str,
             code: str | None) -> _Attempt:
    now = utcnow()
    if factor == RECOVERY:
        key = throttle.throttle_key(settings.secret_key, "recovery-ip", client.ip)
        verdict = throttle.hit(s, key, settings.recovery_checks_per_ip_per_hour, 3600)
        if not verdict.allowed:
            raise _Refused(Outcome(False, "Too many recovery codes tried from this network. Try again later.",
                                   status=429, retry_after=verdict.retry_after, result="rate_limited"))
    counted = s.execute(update(User).where(
        User.id == user_id, (User.mfa_locked_until.is_(None)) | (User.mfa_locked_until <= now))
        .values(mfa_failed_count=User.mfa_failed_count + 1).returning(User.mfa_failed_count)).scalar_one_or_none()
    if counted is None:
        raise _Refused(Outcome(False, locked_message(settings.mfa_lock_s), status=429, retry_after=settings.mfa_lock_s,
                               result="locked"))
    checks = challenges.reserve_check(s, ch_id, settings.mfa_max_checks)
    ch = challenges.reload(s, ch_id)
    if checks is None:  # out of attempts, or closed meanwhile; raising also rolls back the user's count
        if ch.failed_checks >= settings.mfa_max_checks:
            raise _Refused(Outcome(False, TOO_MANY, over=True, status=429, result="exhausted"))
        raise _Refused(Outcome(False, ENDED, over=True, status=409, notice="", result="ended"))
    # A passkey ceremony's challenge answers one assertion only: this attempt takes it off the row.
    expected = challenges.take_payload(s, ch_id) if factor == WEBAUTHN else None
    return _Attempt(checks, proofs.candidates(s, settings, ch, factor, code), expected)


def _refund(s: Session, ch_id: str, user_id: int) -> None:
    s.execute(update(User).where(User.id == user_id, User.mfa_failed_count > 0)
              .values(mfa_failed_count=User.mfa_failed_count - 1))
    challenges.refund_check(s, ch_id)


def _settle_failure(s: Session, settings: Settings, client: Client, ch_id: str, user_id: int, factor: str,
                    attempt: _Attempt, proof: Proof | None = None) -> Outcome:
    """The reserved attempt was wrong: it stays counted; lock the second step or end the challenge at the limits."""
    ch = challenges.reload(s, ch_id)
    audit.record(s, client, "mfa_check_fail", "failure", user_id=user_id, factor=factor, purpose=ch.purpose,
                 channel=ch.channel, method=ch.method)
    if proof is not None and proof.problem:
        passkeys.flag(s, client, user_id, proof)
    lock = utcnow() + timedelta(seconds=settings.mfa_lock_s)
    locked = s.execute(update(User).where(User.id == user_id, User.mfa_failed_count >= settings.mfa_lock_failures,
                                          User.mfa_locked_until.is_(None) | (User.mfa_locked_until <= utcnow()))
                       .values(mfa_locked_until=lock, mfa_failed_count=0).returning(User.id)).first()
    if locked:
        challenges.invalidate(s, ch_id)
        audit.record(s, client, "mfa_lock", "failure", user_id=user_id)
        return Outcome(False, locked_message(settings.mfa_lock_s), over=True, status=429,
                       retry_after=settings.mfa_lock_s, notice="mfa-locked", result="locked_out")
    left = settings.mfa_max_checks - attempt.checks
    if left <= 0:
        challenges.invalidate(s, ch_id)
        return Outcome(False, TOO_MANY, over=True, status=429)  # a wrong code, and the last one allowed
    noun = {RECOVERY: "recovery code", WEBAUTHN: "passkey"}.get(factor, "code")
    wrong = "didn't work" if factor == WEBAUTHN else "isn't right"
    return Outcome(False, f"That {noun} {wrong}. {left} attempt{'s' if left != 1 else ''} left.")


def _settle_pass(s: Session, settings: Settings, client: Client, ch_id: str, user_id: int, factor: str,
                 proof: Proof, acting: AuthSession | None, batch: recovery.Batch | None, label: str,
                 remember_browser: bool) -> Outcome:
    # The challenge is consumed before the proof is claimed: a request that loses the race for the challenge spends
    # nothing (no recovery code, no app time step); one that loses the race for the proof rolls back (_ClaimLost).
    user = sessions.lock_user(s, user_id)
    ch = challenges.reload(s, ch_id)
    if user is None:
        return _settle_failure(s, settings, client, ch_id, user_id, factor, _Attempt(ch.failed_checks, []))
    if ch.purpose in challenges.NEW_NUMBER and number_taken(s, settings, user_id, ch.phone_e164):
        challenges.invalidate(s, ch_id)
        return Outcome(False, NUMBER_REFUSED, over=True, status=422, notice="", result="ended")
    if not challenges.consume(s, ch_id):
        return Outcome(False, ENDED, over=True, status=409, notice="", result="ended")
    if not proofs.claim(s, user_id, factor, proof):
        raise _ClaimLost
    user.mfa_failed_count, user.mfa_locked_until = 0, None
    if factor == RECOVERY:
        audit.record(s, client, "recovery_code_used", "success", user_id=user.id, purpose=ch.purpose)
        notices.notify(s, user, "recovery_used")
    done = complete(s, settings, client, ch, user, factor=factor, acting=acting, batch=batch,
                    proof=proof, label=label, remember_browser=remember_browser)
    return Outcome(True, done=done, result="passed")
