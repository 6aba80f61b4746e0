"""The sign-in code step at /login/verify: check a code or a recovery code, resend, call, start over."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from webapp.codestep import cancel_verifications, discard, render_code_step, send_and_render, sent_flash
from webapp.forms import read_form
from webapp.htmx import redirect, render
from webapp.security.cookies import cookie_state
from webapp.security.redirects import safe_next
from webapp.twofactor import challenges
from webapp.twofactor.challenges import LOGIN, Found
from webapp.twofactor.checking import Outcome, check
from webapp.twofactor.completion import note_failed_step
from webapp.web import client, deps_of, record, use_session

LOGIN_ONLY = frozenset({LOGIN})


async def _current(request: Request) -> Found | Response:
    """The browser's pending sign-in step, or where to go instead."""
    token = cookie_state(request).get("challenge_id")
    found = await deps_of(request).db.read(challenges.find, token, LOGIN_ONLY, include_expired=True)
    if found is None:
        if token:
            await record(request, "sequence_fail", "failure", step="login_verify")
        return redirect(request, "/login")
    if found.expired:
        await discard(request)
        return redirect(request, "/login", notice="login-expired")
    return found


async def verify_form(request: Request) -> Response:
    found = await _current(request)
    if isinstance(found, Response):
        return found
    return render_code_step(request, found.challenge, flash=sent_flash(request, found.challenge))


async def verify_submit(request: Request) -> Response:
    form = await read_form(request, {"code": 32})
    found = await _current(request)
    if isinstance(found, Response):
        return found
    outcome = await check(deps_of(request), client(request), found, form["code"], factor="sms")
    return await _after_check(request, found, outcome)


def _recovery_page(request: Request, error: str = "", status: int = 200) -> Response:
    return render(request, "signin/recovery.html", "signin/_recovery_step.html", {"error": error}, status)


async def recovery_form(request: Request) -> Response:
    found = await _current(request)
    if isinstance(found, Response):
        return found
    return _recovery_page(request)


async def recovery_submit(request: Request) -> Response:
    form = await read_form(request, {"recovery_code": 64})
    found = await _current(request)
    if isinstance(found, Response):
        return found
    outcome = await check(deps_of(request), client(request), found, form["recovery_code"], factor="recovery")
    if not outcome.ok and not outcome.over:
        return _recovery_page(request, outcome.message, outcome.status)
    return await _after_check(request, found, outcome, recovery=True)


async def _after_check(request: Request, found: Found, outcome: Outcome, *, recovery: bool = False) -> Response:
    ch = found.challenge
    if outcome.ok:
        assert outcome.done and outcome.done.session
        use_session(request, outcome.done.session)
        return redirect(request, "/2fa/recovery-used" if recovery else safe_next(outcome.done.next_path))
    if outcome.over:
        if outcome.result != "ended":  # "ended": another request finished this step; nothing failed
            await deps_of(request).db.write(note_failed_step, ch.user_id)
        await discard(request)
        await cancel_verifications(request, [ch.verification_sid] if ch.verification_sid else [])
        return redirect(request, "/login", notice=outcome.notice or None)
    return render_code_step(request, ch, error=outcome.message, status=outcome.status,
                            retry_after=outcome.retry_after)


async def _resend(request: Request, channel: str) -> Response:
    await read_form(request, {})
    found = await _current(request)
    if isinstance(found, Response):
        return found
    return await send_and_render(request, found.challenge.id_hash, channel, again=True)


async def verify_resend(request: Request) -> Response:
    return await _resend(request, "sms")


async def verify_call(request: Request) -> Response:
    return await _resend(request, "call")


async def verify_cancel(request: Request) -> Response:
    await read_form(request, {})
    await discard(request)
    return redirect(request, "/login")
