"""Sending codes within every limit (R-O9, R-O11) and turning each Verify answer into a human message."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from starlette.requests import Request

from webapp.db import utcnow
from webapp.models import MfaChallenge
from webapp.security import throttle
from webapp.security.audit import audit
from webapp.security.clients import client_ip
from webapp.settings import Settings
from webapp.twofactor.challenges import CHANGE_NEW, ENROLL
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


async def send_code(request: Request, ch_id: str, channel: str) -> MfaChallenge:
    """Reserve the send under row locks, call Verify outside any transaction, then record what happened."""
    settings: Settings = request.app.state.settings
    db = request.app.state.db
    try:
        phone, purpose, user_id, previous_sent_at = await _reserve(request, ch_id, settings)
    except _LimitHit as hit:
        # Audited after the reservation rolled back: a second write while it held SQLite's write lock waited
        # for it until the busy timeout (a 500), and an event written inside it would be rolled back too.
        await audit(request, "excess_rate_limit_exceeded", "failure", user_id=hit.user_id, limit=hit.limit)
        raise hit.refused from None
    try:
        verification = await request.app.state.verify.start(
            phone, "call" if channel == "call" else "sms", locale=_locale(request),
            rate_limit_key=user_rate_key(settings, user_id),
        )
    except VerifyError as exc:
        refused = message_for_send_error(exc)
        async with db.session() as s:
            ch = (await s.execute(select(MfaChallenge).where(MfaChallenge.id_hash == ch_id))).scalar_one()
            ch.last_sent_at = previous_sent_at  # a failed send must not start the cooldown
            if refused.offer_call:
                ch.landline = True
            await audit(request, "mfa_code_send_failed", "failure", user_id=user_id, channel=channel,
                        provider_code=exc.code, purpose=purpose, session=s)
        if isinstance(exc, ServiceUnavailable):
            log.error("verify unavailable", extra={"audit": {"event": "provider_error", "provider": "twilio",
                                                              "code": exc.code}})
        raise refused from None
    async with db.session() as s:
        sent: MfaChallenge = (await s.execute(select(MfaChallenge).where(MfaChallenge.id_hash == ch_id))).scalar_one()
        sent.verification_sid, sent.channel, sent.sends = verification.sid, channel, sent.sends + 1
        await audit(request, "mfa_code_sent", "success", user_id=user_id, channel=channel, purpose=purpose, session=s)
    return sent


class _LimitHit(Exception):
    def __init__(self, limit: str, user_id: int, refused: Refused) -> None:
        super().__init__(limit)
        self.limit, self.user_id, self.refused = limit, user_id, refused


async def _reserve(request: Request, ch_id: str, settings: Settings) -> tuple[str, str, int, datetime | None]:
    """Cooldown, per-challenge and budget checks under row locks; starts the cooldown. Raises Refused/_LimitHit."""
    async with request.app.state.db.session() as s:
        ch = (await s.execute(select(MfaChallenge).where(MfaChallenge.id_hash == ch_id).with_for_update())).scalar_one()
        now = utcnow()
        if ch.last_sent_at and now - ch.last_sent_at < timedelta(seconds=settings.mfa_resend_cooldown_s):
            wait = settings.mfa_resend_cooldown_s - int((now - ch.last_sent_at).total_seconds())
            # offer_call: only the wait stands between the user and a call (the button counts down meanwhile).
            raise Refused(f"Please wait {wait} seconds before asking for another code.", 429, max(wait, 1),
                          offer_call=True)
        if ch.sends >= settings.mfa_max_sends:
            raise Refused("You've asked for the most codes allowed for this attempt. "
                          "Start over in 10 minutes or use a recovery code.", 429, 600)
        checks = [
            (throttle.throttle_key(settings.secret_key, "sends-user", str(ch.user_id)),
             settings.mfa_sends_per_user_per_day, 86400, "You've reached today's limit of codes. Try again tomorrow."),
            (throttle.throttle_key(settings.secret_key, "sends-global", "all"), settings.sms_global_daily_budget,
             86400, "We can't send more codes today. Please try again later or use a recovery code."),
        ]
        if ch.purpose in (ENROLL, CHANGE_NEW):
            checks.append((throttle.throttle_key(settings.secret_key, "enroll-ip", client_ip(request)),
                           settings.enroll_sends_per_ip_per_hour, 3600,
                           "Too many numbers were set up from this network. Try again in an hour."))
        for key, limit, window, message in checks:
            verdict = await throttle.hit(s, key, limit, window)
            if not verdict.allowed:
                raise _LimitHit(key.split(":")[0], ch.user_id, Refused(message, 429, verdict.retry_after))
        previous_sent_at, ch.last_sent_at = ch.last_sent_at, now
        return ch.phone_e164, ch.purpose, ch.user_id, previous_sent_at


def _locale(request: Request) -> str | None:
    lang = request.headers.get("accept-language", "").split(",")[0].split(";")[0].strip()
    return lang[:2].lower() or None if lang and lang[:2].isalpha() else None


def cooldown_left(settings: Settings, ch: MfaChallenge) -> int:
    if not ch.last_sent_at:
        return 0
    left = settings.mfa_resend_cooldown_s - (utcnow() - ch.last_sent_at).total_seconds()
    return max(0, int(left + 0.999))
