"""The one code-step engine: check a code or a recovery code against a challenge, for every purpose.

Each attempt is counted before it is checked (per challenge, per user, and per IP for recovery codes) by
conditional UPDATEs, so concurrent guesses can't share one count (R-O5, R-O6). The check itself (Twilio, or one
bcrypt) runs outside any transaction; the unit of work that follows consumes the challenge and applies the
purpose's effect, or settles the failure.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import update
from sqlalchemy.orm import Session

from webapp.db import utcnow
from webapp.deps import Deps
from webapp.mail import notices
from webapp.models import AuthSession, MfaChallenge, User
from webapp.security import audit, sessions, throttle
from webapp.security.clients import Client
from webapp.settings import Settings
from webapp.twofactor import challenges, recovery
from webapp.twofactor.challenges import ENROLL, Found, clean_code
from webapp.twofactor.completion import NUMBER_REFUSED, Completion, complete, number_taken
from webapp.verify import TooManyChecks, VerificationGone, VerifyError

UNAVAILABLE = "We couldn't reach the SMS service to check the code. Nothing has changed; please try again in a minute."
TOO_MANY = "Too many wrong codes. Please start again."
EXPIRED = "This code has expired. Please start again."


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


@dataclass(frozen=True)
class _Attempt:
    checks: int
    candidates: list[tuple[int, str]]


def locked_message(seconds: int) -> str:
    minutes = max(1, (seconds + 59) // 60)
    return f"Two-step verification is temporarily locked after too many wrong codes. Try again in {minutes} minutes."


def lock_left(user: User) -> int:
    if user.mfa_locked_until and user.mfa_locked_until > utcnow():
        return int((user.mfa_locked_until - utcnow()).total_seconds()) + 1
    return 0


async def check(deps: Deps, client: Client, found: Found, raw: str, *, factor: str,
                acting: AuthSession | None = None) -> Outcome:
    """Check `raw` (a code, or a recovery code when factor == "recovery") and, if right, complete the step."""
    ch, user = found.challenge, found.user
    if wait := lock_left(user):
        return Outcome(False, locked_message(wait), status=429, retry_after=wait)
    if found.expired:
        return Outcome(False, EXPIRED, over=True, notice="login-expired")
    code = raw[:64] if factor == "recovery" else clean_code(raw)
    try:
        attempt = await deps.db.write(_reserve, deps.settings, client, ch.id_hash, user.id, factor, code)
    except _Refused as refused:
        return refused.outcome
    if code is None or (factor != "recovery" and not ch.verification_sid):
        failed = await deps.db.write(_settle_failure, deps.settings, client, ch.id_hash, user.id, factor, attempt)
        if failed.over:
            return failed
        return Outcome(False, "Enter the 6-digit code from the message. " + failed.message.split(". ", 1)[1])
    try:
        passed = await _passes(deps, ch, code, attempt, factor)
    except TooManyChecks:
        return Outcome(False, TOO_MANY, over=True, status=429)
    except VerificationGone:
        return Outcome(False, EXPIRED, over=True, notice="login-expired")
    except VerifyError:
        await deps.db.write(_refund, ch.id_hash, user.id)
        return Outcome(False, UNAVAILABLE, status=503, retry_after=60)
    if passed is None:
        return await deps.db.write(_settle_failure, deps.settings, client, ch.id_hash, user.id, factor, attempt)
    batch = await recovery.make_batch(deps.settings.secret_key, deps.settings.recovery_code_count,
                                      deps.settings.bcrypt_rounds) if ch.purpose == ENROLL else None
    return await deps.db.write(_settle_pass, deps.settings, client, ch.id_hash, user.id, factor, passed, acting, batch)


async def _passes(deps: Deps, ch: MfaChallenge, code: str, attempt: _Attempt, factor: str) -> int | None:
    """Approved: the matched recovery-code row id (0 for an SMS code); None when wrong."""
    if factor == "recovery":
        return await recovery.match(attempt.candidates, code)
    assert ch.verification_sid
    result = await deps.verify.check(ch.verification_sid, code)
    return 0 if result.approved else None


class _Refused(Exception):
    def __init__(self, outcome: Outcome) -> None:
        super().__init__(outcome.message)
        self.outcome = outcome


def _reserve(s: Session, settings: Settings, client: Client, ch_id: str, user_id: int, factor: str,
             code: str | None) -> _Attempt:
    now = utcnow()
    if factor == "recovery":
        key = throttle.throttle_key(settings.secret_key, "recovery-ip", client.ip)
        verdict = throttle.hit(s, key, settings.recovery_checks_per_ip_per_hour, 3600)
        if not verdict.allowed:
            raise _Refused(Outcome(False, "Too many recovery codes tried from this network. Try again later.",
                                   status=429, retry_after=verdict.retry_after))
    counted = s.execute(update(User).where(
        User.id == user_id, (User.mfa_locked_until.is_(None)) | (User.mfa_locked_until <= now))
        .values(mfa_failed_count=User.mfa_failed_count + 1).returning(User.mfa_failed_count)).scalar_one_or_none()
    if counted is None:
        raise _Refused(Outcome(False, locked_message(settings.mfa_lock_s), status=429, retry_after=settings.mfa_lock_s))
    checks = challenges.reserve_check(s, ch_id, settings.mfa_max_checks)
    if checks is None:  # out of attempts, or closed meanwhile; raising also rolls back the user's count
        raise _Refused(Outcome(False, TOO_MANY, over=True, status=429))
    rows = recovery.candidates(s, settings.secret_key, user_id, code) if factor == "recovery" and code else []
    return _Attempt(checks, rows)


def _refund(s: Session, ch_id: str, user_id: int) -> None:
    s.execute(update(User).where(User.id == user_id, User.mfa_failed_count > 0)
              .values(mfa_failed_count=User.mfa_failed_count - 1))
    challenges.refund_check(s, ch_id)


def _settle_failure(s: Session, settings: Settings, client: Client, ch_id: str, user_id: int, factor: str,
                    attempt: _Attempt) -> Outcome:
    """The reserved attempt was wrong: it stays counted; lock the second step or end the challenge at the limits."""
    ch = challenges.reload(s, ch_id)
    audit.record(s, client, "mfa_check_fail", "failure", user_id=user_id, factor=factor, purpose=ch.purpose,
                 channel=ch.channel)
    lock = utcnow() + timedelta(seconds=settings.mfa_lock_s)
    locked = s.execute(update(User).where(User.id == user_id, User.mfa_failed_count >= settings.mfa_lock_failures,
                                          User.mfa_locked_until.is_(None) | (User.mfa_locked_until <= utcnow()))
                       .values(mfa_locked_until=lock, mfa_failed_count=0).returning(User.id)).first()
    if locked:
        challenges.invalidate(s, ch_id)
        audit.record(s, client, "mfa_lock", "failure", user_id=user_id)
        return Outcome(False, locked_message(settings.mfa_lock_s), over=True, status=429,
                       retry_after=settings.mfa_lock_s, notice="mfa-locked")
    left = settings.mfa_max_checks - attempt.checks
    if left <= 0:
        challenges.invalidate(s, ch_id)
        return Outcome(False, TOO_MANY, over=True, status=429)
    noun = "recovery code" if factor == "recovery" else "code"
    return Outcome(False, f"That {noun} isn't right. {left} attempt{'s' if left != 1 else ''} left.")


def _settle_pass(s: Session, settings: Settings, client: Client, ch_id: str, user_id: int, factor: str,
                 recovery_row: int, acting: AuthSession | None, batch: recovery.Batch | None) -> Outcome:
    user = sessions.lock_user(s, user_id)
    ch = challenges.reload(s, ch_id)
    if user is None or (factor == "recovery" and not recovery.mark_used(s, recovery_row)):
        return _settle_failure(s, settings, client, ch_id, user_id, factor, _Attempt(ch.failed_checks, []))
    if ch.purpose in challenges.NEW_NUMBER and number_taken(s, settings, user_id, ch.phone_e164):
        challenges.invalidate(s, ch_id)
        return Outcome(False, NUMBER_REFUSED, over=True, status=422, notice="")
    if not challenges.consume(s, ch_id):
        return Outcome(False, "This step has ended. Please start again.", over=True, status=409, notice="")
    user.mfa_failed_count, user.mfa_locked_until = 0, None
    if factor == "recovery":
        audit.record(s, client, "recovery_code_used", "success", user_id=user.id, purpose=ch.purpose)
        notices.notify(s, user, "recovery_used")
    done = complete(s, settings, client, ch, user, factor=factor, acting=acting, batch=batch)
    return Outcome(True, done=done)
