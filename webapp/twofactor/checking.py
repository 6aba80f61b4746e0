"""Checking a code or a recovery code against a challenge, with per-challenge and per-user counters (R-O5, R-O6)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select
from starlette.requests import Request

from webapp.db import utcnow
from webapp.models import MfaChallenge, User
from webapp.security.audit import audit
from webapp.settings import Settings
from webapp.twofactor import recovery
from webapp.twofactor.challenges import clean_code
from webapp.verify import TooManyChecks, VerificationGone, VerifyError

UNAVAILABLE = "We couldn't reach the SMS service to check the code. Nothing has changed; please try again in a minute."


@dataclass(frozen=True)
class Outcome:
    """ok: approved and consumable. Otherwise `message`, whether the challenge is over, and the HTTP status."""

    ok: bool
    message: str = ""
    over: bool = False
    status: int = 422
    retry_after: int = 0
    notice: str = "too-many-attempts"


def locked_message(seconds: int) -> str:
    minutes = max(1, (seconds + 59) // 60)
    return f"Two-step verification is temporarily locked after too many wrong codes. Try again in {minutes} minutes."


def lock_left(user: User) -> int:
    if user.mfa_locked_until and user.mfa_locked_until > utcnow():
        return int((user.mfa_locked_until - utcnow()).total_seconds()) + 1
    return 0


async def _record_failure(request: Request, ch_id: str, factor: str) -> Outcome:
    """A wrong or malformed code: both counters go up, resends never reset them (R-O6)."""
    settings: Settings = request.app.state.settings
    async with request.app.state.db.session() as s:
        ch = (await s.execute(select(MfaChallenge).where(MfaChallenge.id_hash == ch_id).with_for_update())).scalar_one()
        user = (await s.execute(select(User).where(User.id == ch.user_id).with_for_update())).scalar_one()
        ch.failed_checks += 1
        user.mfa_failed_count += 1
        await audit(request, "mfa_check_fail", "failure", user_id=user.id, factor=factor, purpose=ch.purpose,
                    channel=ch.channel, session=s)
        if user.mfa_failed_count >= settings.mfa_lock_failures:
            user.mfa_locked_until = utcnow() + timedelta(seconds=settings.mfa_lock_s)
            user.mfa_failed_count = 0
            ch.invalidated_at = utcnow()
            await audit(request, "mfa_lock", "failure", user_id=user.id, session=s)
            return Outcome(False, locked_message(settings.mfa_lock_s), over=True, status=429,
                           retry_after=settings.mfa_lock_s, notice="mfa-locked")
        left = settings.mfa_max_checks - ch.failed_checks
        if left <= 0:
            ch.invalidated_at = utcnow()
            return Outcome(False, "Too many wrong codes. Please start again.", over=True, status=429)
    noun = "recovery code" if factor == "recovery" else "code"
    return Outcome(False, f"That {noun} isn't right. {left} attempt{'s' if left != 1 else ''} left.")


async def check_code(request: Request, ch: MfaChallenge, user: User, raw_code: str) -> Outcome:
    if wait := lock_left(user):
        return Outcome(False, locked_message(wait), status=429, retry_after=wait)
    if ch.expires_at <= utcnow():
        return Outcome(False, "This code has expired. Please start again.", over=True, notice="login-expired")
    code = clean_code(raw_code)
    if code is None or not ch.verification_sid:
        outcome = await _record_failure(request, ch.id_hash, "sms")
        if outcome.over:
            return outcome
        return Outcome(False, "Enter the 6-digit code from the message. " + outcome.message.split(". ", 1)[1])
    try:
        result = await request.app.state.verify.check(ch.verification_sid, code)
    except TooManyChecks:
        return Outcome(False, "Too many wrong codes. Please start again.", over=True, status=429)
    except VerificationGone:
        return Outcome(False, "This code has expired. Please start again.", over=True, notice="login-expired")
    except VerifyError:
        return Outcome(False, UNAVAILABLE, status=503, retry_after=60)
    if result.approved:
        return Outcome(True)
    return await _record_failure(request, ch.id_hash, "sms")


async def check_recovery(request: Request, ch: MfaChallenge, user: User, raw_code: str) -> Outcome:
    """Recovery codes count against the same limits, with no Twilio call (R-RC4). Success marks the code used."""
    if wait := lock_left(user):
        return Outcome(False, locked_message(wait), status=429, retry_after=wait)
    if ch.expires_at <= utcnow():
        return Outcome(False, "This attempt has expired. Please start again.", over=True, notice="login-expired")
    async with request.app.state.db.session() as s:
        used = await recovery.use(s, user.id, raw_code[:64])
        if used:
            await audit(request, "recovery_code_used", "success", user_id=user.id, purpose=ch.purpose, session=s)
    if used:
        return Outcome(True)
    return await _record_failure(request, ch.id_hash, "recovery")


async def reset_failures(request: Request, user_id: int) -> None:
    async with request.app.state.db.session() as s:
        user = (await s.execute(select(User).where(User.id == user_id))).scalar_one()
        user.mfa_failed_count, user.mfa_locked_until = 0, None
