"""Sending codes within every limit (R-O9, R-O11) and turning each Verify answer into a human message.

The send is reserved by one conditional UPDATE (cooldown passed, sends left, challenge open), so concurrent
resends admit exactly one; Verify is called outside any transaction; a failed send gives the reservation back.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from webapp import metrics
from webapp.db import utcnow
from webapp.deps import Deps
from webapp.models import MfaChallenge
from webapp.security import audit, throttle
from webapp.security.clients import Client
from webapp.settings import Settings
from webapp.twofactor.challenges import NEW_NUMBER, open_conditions, reload
from webapp.verify import (
    CountryBlocked,
    InvalidNumber,
    LandlineNoSms,
    RateLimited,
    SendBlocked,
    ServiceUnavailable,
    TooManySends,
    VerifyError,
)

log = logging.getLogger("webapp.twofactor")
UNAVAILABLE = (
    "We couldn't reach the SMS service, so no code was sent. Nothing has changed; please try again in a minute."
)


@dataclass
class Refused(Exception):
    """A send that did not happen: what to tell the user, the HTTP status, and what they may do next."""

    message: str
    status: int = 429
    retry_after: int = 0
    offer_call: bool = False  # a call can still follow (landline, or only the cooldown in the way): keep the button
    limit: str = ""  # which limit refused it, for the throttle-refusal metric; empty for provider errors


def message_for_send_error(exc: VerifyError) -> Refused:
    if isinstance(exc, LandlineNoSms):
        return Refused("This number can't receive text messages. We can call it and read the code instead, "
                       "or you can use a mobile number.", 422, offer_call=True)
    if isinstance(exc, TooManySends):
        return Refused("Too many codes requested for this number. Try again in up to 10 minutes.", 429, 600)
    if isinstance(exc, CountryBlocked):
        return Refused("We can't send codes to that country.", 422)
    if isinstance(exc, SendBlocked):
        return Refused("We can't send a code to this number right now. Try again later or use another number.", 422)
    if isinstance(exc, InvalidNumber):
        return Refused("That number can't receive codes. Check the number and try again.", 422)
    if isinstance(exc, RateLimited):
        # 20429 is Twilio's own concurrency limit, already retried once: the service is busy, not the user (R-X4).
        status = 503 if exc.code == 20429 else 429
        return Refused("The SMS service is busy. Please try again in a minute.", status, exc.retry_after or 60)
    return Refused(UNAVAILABLE, 503, 60)


def user_rate_key(settings: Settings, user_id: int) -> str:
    """Hashed id for Verify's Service Rate Limits: never a number or a name (R-PR3)."""
    return hashlib.sha256(f"{settings.secret_key}:{user_id}".encode()).hexdigest()


@dataclass(frozen=True)
class Reservation:
    phone: str
    purpose: str
    user_id: int
    previous_sent_at: datetime | None
    reserved_at: datetime


class _BudgetSpent(Exception):
    def __init__(self, limit: str, user_id: int, refused: Refused) -> None:
        super().__init__(limit)
        self.limit, self.user_id, self.refused = limit, user_id, refused


async def send_code(deps: Deps, client: Client, ch_id: str, channel: str) -> MfaChallenge:
    """Reserve, call Verify, record. Raises Refused with a message for the user."""
    try:
        held = await deps.db.write(_reserve, deps.settings, client, ch_id)
    except _BudgetSpent as spent:
        # Audited after the reservation rolled back, in its own unit of work.
        await deps.db.write(_audit_spent, client, spent)
        metrics.code_sent(channel, "refused")
        metrics.refused(spent.limit)
        raise spent.refused from None
    except Refused as limited:
        if limited.limit:
            metrics.code_sent(channel, "refused")
            metrics.refused(limited.limit)
        raise
    try:
        verification = await deps.verify.start(held.phone, "call" if channel == "call" else "sms",
                                               locale=client.locale,
                                               rate_limit_key=user_rate_key(deps.settings, held.user_id))
    except VerifyError as exc:
        refused = message_for_send_error(exc)
        await deps.db.write(_give_back, client, ch_id, held, channel, exc, refused.offer_call)
        metrics.code_sent(channel, "failed")
        if isinstance(exc, ServiceUnavailable):
            log.error("verify unavailable", extra={"audit": {"event": "provider_error", "provider": "twilio",
                                                              "code": exc.code}})
        raise refused from None
    sent = await deps.db.write(_record_sent, client, ch_id, held, channel, verification.sid)
    metrics.code_sent(channel, "sent")
    return sent


def _audit_spent(s: Session, client: Client, spent: _BudgetSpent) -> None:
    audit.record(s, client, "excess_rate_limit_exceeded", "failure", user_id=spent.user_id, limit=spent.limit)


def _why_not(s: Session, settings: Settings, ch_id: str, now: datetime) -> Refused:
    ch = reload(s, ch_id)
    if ch.last_sent_at and now - ch.last_sent_at < timedelta(seconds=settings.mfa_resend_cooldown_s):
        wait = max(1, settings.mfa_resend_cooldown_s - int((now - ch.last_sent_at).total_seconds()))
        # offer_call: only the wait stands between the user and a call (the button counts down meanwhile).
        return Refused(f"Please wait {wait} seconds before asking for another code.", 429, wait, offer_call=True,
                       limit="resend-cooldown")
    if ch.sends >= settings.mfa_max_sends:
        return Refused("You've asked for the most codes allowed for this attempt. "
                       "Start over in 10 minutes or use a recovery code.", 429, 600, limit="challenge-sends")
    return Refused("This step has ended. Please start again.", 409)


def _reserve(s: Session, settings: Settings, client: Client, ch_id: str) -> Reservation:
    now = utcnow()
    before = s.execute(select(MfaChallenge.last_sent_at).where(MfaChallenge.id_hash == ch_id)).scalar_one()
    cooldown_over = now - timedelta(seconds=settings.mfa_resend_cooldown_s)
    taken = s.execute(
        update(MfaChallenge).where(
            MfaChallenge.id_hash == ch_id, MfaChallenge.phone_e164 != "", MfaChallenge.sends < settings.mfa_max_sends,
            (MfaChallenge.last_sent_at.is_(None)) | (MfaChallenge.last_sent_at <= cooldown_over),
            *open_conditions(now))
        .values(last_sent_at=now, sends=MfaChallenge.sends + 1)
        .returning(MfaChallenge.phone_e164, MfaChallenge.purpose, MfaChallenge.user_id)
    ).first()
    if taken is None:
        raise _why_not(s, settings, ch_id, now)
    phone, purpose, user_id = taken
    budgets = [
        ("sends-user", str(user_id), settings.mfa_sends_per_user_per_day, 86400,
         "You've reached today's limit of codes. Try again tomorrow."),
        ("sends-global", "all", settings.sms_global_daily_budget, 86400,
         "We can't send more codes today. Please try again later or use a recovery code."),
    ]
    if purpose in NEW_NUMBER:
        budgets.append(("enroll-ip", client.ip, settings.enroll_sends_per_ip_per_hour, 3600,
                        "Too many numbers were set up from this network. Try again in an hour."))
    for kind, value, limit, window, message in budgets:
        verdict = throttle.hit(s, throttle.throttle_key(settings.secret_key, kind, value), limit, window)
        if not verdict.allowed:
            raise _BudgetSpent(kind, user_id, Refused(message, 429, verdict.retry_after))
    return Reservation(phone, purpose, user_id, before, now)


def _give_back(s: Session, client: Client, ch_id: str, held: Reservation, channel: str, exc: VerifyError,
               landline: bool) -> None:
    """A failed send must not start the cooldown nor use up a send."""
    values: dict[str, object] = {"last_sent_at": held.previous_sent_at, "sends": MfaChallenge.sends - 1}
    if landline:
        values["landline"] = True
    s.execute(update(MfaChallenge).where(MfaChallenge.id_hash == ch_id, MfaChallenge.last_sent_at == held.reserved_at)
              .values(**values))
    audit.record(s, client, "mfa_code_send_failed", "failure", user_id=held.user_id, channel=channel,
                 provider_code=exc.code, purpose=held.purpose)


def _record_sent(s: Session, client: Client, ch_id: str, held: Reservation, channel: str,
                 verification_sid: str) -> MfaChallenge:
    s.execute(update(MfaChallenge).where(MfaChallenge.id_hash == ch_id)
              .values(verification_sid=verification_sid, channel=channel))
    audit.record(s, client, "mfa_code_sent", "success", user_id=held.user_id, channel=channel, purpose=held.purpose)
    return reload(s, ch_id)


def cooldown_left(settings: Settings, ch: MfaChallenge) -> int:
    if not ch.last_sent_at:
        return 0
    left = settings.mfa_resend_cooldown_s - (utcnow() - ch.last_sent_at).total_seconds()
    return max(0, int(left + 0.999))
