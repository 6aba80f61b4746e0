"""The sign-in code step at /login/verify: check a code or a recovery code, resend, call, start over."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from webapp.codestep import cancel_verifications, discard, render_code_step, send_and_render, sent_flash
from webapp.forms import read_form
from webapp.htmx import redirect, render
from webapp.passkeystep import ceremony_options, json_response
from webapp.security.cookies import cookie_state
from webapp.security.redirects import safe_next
from webapp.signin import device
from webapp.twofactor import challenges
from webapp.twofactor.challenges import LOGIN, Found
from webapp.twofactor.checking import Outcome, check
from webapp.twofactor.completion import note_failed_step
from webapp.twofactor.methods import WEBAUTHN
from webapp.twofactor.passkeys import MAX_CREDENTIAL_JSON
from webapp.web import client, deps_of, record, use_session

LOGIN_ONLY = frozenset({LOGIN})


async def current_step(request: Request) -> Found | Response:
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
    found = await current_step(request)
    if isinstance(found, Response):
        return found
    return render_code_step(request, found.challenge, flash=sent_flash(request, found.challenge))


async def verify_submit(request: Request) -> Response:
    """A code (from a message or an app) or a passkey's answer, whichever the step's method takes."""
    form = await read_form(request, {"code": 32, "credential": MAX_CREDENTIAL_JSON, "remember_browser": 8})
    found = await current_step(request)
    if isinstance(found, Response):
        return found
    answer = form["credential"] if found.challenge.method == WEBAUTHN else form["code"]
    outcome = await check(deps_of(request), client(request), found, answer, factor="code",
                          remember_browser=form["remember_browser"] in ("1", "on"))
    return await _after_check(request, found, outcome)


async def passkey_options(request: Request) -> Response:
    """The WebAuthn request options for the pending sign-in's passkeys (JSON for static/webauthn.js)."""
    await read_form(request, {})
    found = await current_step(request)
    if isinstance(found, Response) or found.challenge.method != WEBAUTHN:
        return json_response({"error": "This sign-in step has ended. Please start again."}, 409)
    return await ceremony_options(request, found)


def _recovery_page(request: Request, error: str = "", status: int = 200) -> Response:
    return render(request, "signin/recovery.html", "signin/_recovery_step.html", {"error": error}, status)


async def recovery_form(request: Request) -> Response:
    found = await current_step(request)
    if isinstance(found, Response):
        return found
    return _recovery_page(request)


async def recovery_submit(request: Request) -> Response:
    form = await read_form(request, {"recovery_code": 64})
    found = await current_step(request)
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
        response = redirect(request, "/2fa/recovery-used" if recovery else safe_next(outcome.done.next_path))
        if outcome.done.device_token:
            device.keep(response, deps_of(request).settings, outcome.done.device_token)
        return response
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
    found = await current_step(request)
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
