"""The second sign-in step: a challenge row per password success; the cookie holds only its id (R-O4, R-O7)."""

from __future__ import annotations

import contextlib

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import Response

from webapp.db import utcnow
from webapp.forms import read_form
from webapp.htmx import redirect, render, wants_fragment
from webapp.models import MfaChallenge, SecurityNotice, User
from webapp.security.audit import audit
from webapp.security.cookies import cookie_state
from webapp.security.redirects import safe_next
from webapp.security.sessions import start_session
from webapp.twofactor import challenges
from webapp.twofactor.challenges import LOGIN, hash_id
from webapp.twofactor.checking import Outcome, check_code, check_recovery
from webapp.twofactor.sending import Refused, send_code
from webapp.twofactor.views import render_code_step
from webapp.verify import VerifyError

LOGIN_ONLY = frozenset({LOGIN})


async def discard(request: Request, s: AsyncSession) -> list[str]:
    """Invalidate the browser's pending challenge; returns Verify sids for `cancel_verifications` (R-O8, R-O16)."""
    token = cookie_state(request).get("challenge_id")
    if not token:
        return []
    ch = (await s.execute(select(MfaChallenge).where(MfaChallenge.id_hash == hash_id(token)))).scalar_one_or_none()
    cookie_state(request).set("challenge_id", None)
    if ch is None or ch.consumed_at is not None or ch.invalidated_at is not None:
        return []
    await challenges.invalidate(s, ch)
    return [ch.verification_sid] if ch.verification_sid else []


async def cancel_verifications(request: Request, sids: list[str]) -> None:
    for sid in sids:
        # Best effort: an uncancelled verification expires by itself in 10 minutes.
        with contextlib.suppress(VerifyError):
            await request.app.state.verify.cancel(sid)


async def create(
    request: Request, s: AsyncSession, user: User, *, remember: bool, next_path: str
) -> tuple[str, list[str]]:
    """Inside the password step's transaction: replace any older challenge and open a new one."""
    stale = await discard(request, s)
    ch = await challenges.create(request, s, user, LOGIN, user.phone_e164 or "", next_path=next_path,
                                 remember=remember)
    return ch.id_hash, stale


async def after_password(request: Request, ch_id: str, stale: list[str]) -> Response:
    """Send the first code, then show the code step: in place for htmx, after a 303 without JavaScript."""
    await cancel_verifications(request, stale)
    try:
        await send_code(request, ch_id, "sms")
    except Refused as refused:
        # The challenge survives a failed send (R-X2): the code step offers resend or a recovery code.
        async with request.app.state.db.session() as s:
            ch = (await s.execute(select(MfaChallenge).where(MfaChallenge.id_hash == ch_id))).scalar_one()
        return render_code_step(request, ch, error=refused.message, status=refused.status,
                                retry_after=refused.retry_after, call_possible=refused.offer_call)
    if not wants_fragment(request):
        return redirect(request, "/login/verify")
    async with request.app.state.db.session() as s:
        ch = (await s.execute(select(MfaChallenge).where(MfaChallenge.id_hash == ch_id))).scalar_one()
    return render_code_step(request, ch, flash=f"We sent a code to the number ending {ch.phone_e164[-2:]}.")


async def _current(request: Request) -> tuple[challenges.Loaded | None, Response | None]:
    async with request.app.state.db.session() as s:
        loaded = await challenges.load(request, s, LOGIN_ONLY, include_expired=True)
    if loaded is None:
        if cookie_state(request).get("challenge_id"):
            await audit(request, "sequence_fail", "failure", step="login_verify")
        return None, redirect(request, "/login")
    if loaded.expired:
        async with request.app.state.db.session() as s:
            stale = await discard(request, s)
        await cancel_verifications(request, stale)
        return None, redirect(request, "/login", notice="login-expired")
    return loaded, None


async def verify_form(request: Request) -> Response:
    loaded, response = await _current(request)
    if response:
        return response
    assert loaded
    return render_code_step(request, loaded.challenge)


async def verify_submit(request: Request) -> Response:
    form = await read_form(request, {"code": 32})
    loaded, response = await _current(request)
    if response:
        return response
    assert loaded
    outcome = await check_code(request, loaded.challenge, loaded.user, form["code"])
    return await _finish(request, loaded, outcome, factor="sms")


async def recovery_form(request: Request) -> Response:
    loaded, response = await _current(request)
    if response:
        return response
    assert loaded
    return render(request, "signin/recovery.html", "signin/_recovery_step.html", {"error": ""})


async def recovery_submit(request: Request) -> Response:
    form = await read_form(request, {"recovery_code": 64})
    loaded, response = await _current(request)
    if response:
        return response
    assert loaded
    outcome = await check_recovery(request, loaded.challenge, loaded.user, form["recovery_code"])
    if not outcome.ok and not outcome.over:
        return render(request, "signin/recovery.html", "signin/_recovery_step.html", {"error": outcome.message},
                      outcome.status)
    return await _finish(request, loaded, outcome, factor="recovery")


async def _finish(request: Request, loaded: challenges.Loaded, outcome: Outcome, *, factor: str) -> Response:
    ch, user = loaded.challenge, loaded.user
    if not outcome.ok:
        if outcome.over:
            async with request.app.state.db.session() as s:
                s.add(SecurityNotice(user_id=user.id, kind="second_step_failed"))
                await discard(request, s)
            await cancel_verifications(request, [ch.verification_sid] if ch.verification_sid else [])
            return redirect(request, "/login", notice=outcome.notice)
        return render_code_step(request, ch, error=outcome.message, status=outcome.status,
                                retry_after=outcome.retry_after)
    async with request.app.state.db.session() as s:
        if not await challenges.consume(s, ch):
            return redirect(request, "/login")
        fresh = (await s.execute(select(User).where(User.id == user.id))).scalar_one()
        fresh.mfa_failed_count, fresh.mfa_locked_until = 0, None
        await start_session(request, s, fresh, remember=ch.remember, mfa_passed=True)
        await _note_abandoned(s, ch)
        # The channel the code went by, like every other MFA event (R-A2).
        await audit(request, "authn_login_success", "success", user_id=user.id, factor=factor, channel=ch.channel,
                    session=s)
        if factor == "recovery":
            s.add(SecurityNotice(user_id=user.id, kind="recovery_used", created_at=utcnow()))  # after the session
    if factor == "recovery":
        return redirect(request, "/2fa/recovery-used")
    return redirect(request, safe_next(ch.next_path))


async def _note_abandoned(s: AsyncSession, done: MfaChallenge) -> None:
    """Password right but the second step never finished earlier: tell the user at this sign-in (R-L6)."""
    # Only attempts since the last completed sign-in: older ones were reported then. Every unfinished one was
    # matched before, even those already reported (closing them set invalidated_at, not consumed_at), so the
    # banner came back at every sign-in. Attempts started while this one was pending count too, since closing
    # them below would otherwise hide them for good.
    last_ok = (await s.execute(
        select(func.max(MfaChallenge.consumed_at)).where(MfaChallenge.user_id == done.user_id,
                                                         MfaChallenge.purpose == LOGIN,
                                                         MfaChallenge.id_hash != done.id_hash)
    )).scalar_one_or_none()
    query = select(MfaChallenge.created_at).where(
        MfaChallenge.user_id == done.user_id, MfaChallenge.purpose == LOGIN, MfaChallenge.consumed_at.is_(None),
        MfaChallenge.id_hash != done.id_hash)
    if last_ok is not None:
        query = query.where(MfaChallenge.created_at > last_ok)
    earlier = (await s.execute(query.order_by(MfaChallenge.created_at).limit(1))).scalar_one_or_none()
    notified = (await s.execute(
        select(SecurityNotice.id).where(SecurityNotice.user_id == done.user_id,
                                        SecurityNotice.kind == "second_step_failed", SecurityNotice.seen_at.is_(None))
    )).first()
    if earlier and not notified:
        # Stamped with when the password was entered: the banner's UTC time is the attempt's, not this sign-in's.
        s.add(SecurityNotice(user_id=done.user_id, kind="second_step_failed", created_at=earlier))
    # Reported once: those earlier attempts are closed so the next sign-in doesn't repeat the banner.
    await s.execute(update(MfaChallenge).where(
        MfaChallenge.user_id == done.user_id, MfaChallenge.purpose == LOGIN, MfaChallenge.consumed_at.is_(None),
        MfaChallenge.invalidated_at.is_(None), MfaChallenge.id_hash != done.id_hash).values(invalidated_at=utcnow()))


async def _resend(request: Request, channel: str) -> Response:
    await read_form(request, {})
    loaded, response = await _current(request)
    if response:
        return response
    assert loaded
    try:
        ch = await send_code(request, loaded.challenge.id_hash, channel)
    except Refused as refused:
        async with request.app.state.db.session() as s:
            ch = (await s.execute(select(MfaChallenge).where(MfaChallenge.id_hash == loaded.challenge.id_hash))
                  ).scalar_one()
        return render_code_step(request, ch, error=refused.message, status=refused.status,
                                retry_after=refused.retry_after, call_possible=refused.offer_call)
    what = "calling" if channel == "call" else "sent a new code to"
    return render_code_step(request, ch, flash=f"We're {what} the number ending {ch.phone_e164[-2:]}."
                            if channel == "call" else f"We {what} the number ending {ch.phone_e164[-2:]}.")


async def resend_submit(request: Request) -> Response:
    return await _resend(request, "sms")


async def call_submit(request: Request) -> Response:
    return await _resend(request, "call")


async def cancel_submit(request: Request) -> Response:
    await read_form(request, {})
    async with request.app.state.db.session() as s:
        stale = await discard(request, s)
    await cancel_verifications(request, stale)
    return redirect(request, "/login")

