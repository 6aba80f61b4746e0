"""Endpoint glue shared by the sign-in and profile code steps: one way to render, resend and close a step."""

from __future__ import annotations

import contextlib
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from webapp.htmx import render
from webapp.models import MfaChallenge
from webapp.security.cookies import cookie_state
from webapp.settings import Settings
from webapp.twofactor import challenges
from webapp.twofactor.challenges import (
    ADD_TOTP,
    CHANGE_EMAIL,
    CHANGE_NEW,
    CHANGE_OLD,
    DISABLE,
    ENROLL,
    LOGIN,
    RECOVERY_ALLOWED,
)
from webapp.twofactor.methods import SMS, TOTP, WEBAUTHN
from webapp.twofactor.phones import mask
from webapp.twofactor.sending import Refused, cooldown_left, send_code
from webapp.verify import VerifyError
from webapp.web import client, deps_of

HEADINGS = {
    LOGIN: "Enter your code",
    ENROLL: "Confirm your phone",
    DISABLE: "Confirm it's you",
    CHANGE_OLD: "Confirm it's you",
    CHANGE_NEW: "Confirm your new phone",
    ADD_TOTP: "Set up your authenticator app",
    CHANGE_EMAIL: "Confirm it's you",
}
METHOD_HEADINGS = {TOTP: "Enter the code from your app", WEBAUTHN: "Use your passkey"}
# Where "Try another way" can switch to: the steps that prove it's you with a method the account already has.
SWITCHABLE = frozenset({LOGIN, DISABLE})


def heading(ch: MfaChallenge) -> str:
    if ch.purpose in SWITCHABLE | {CHANGE_OLD} and ch.method in METHOD_HEADINGS:
        return METHOD_HEADINGS[ch.method]
    return HEADINGS.get(ch.purpose, "Enter your code")


def code_step(settings: Settings, ch: MfaChallenge, *, error: str = "", call_possible: bool = True) -> dict[str, Any]:
    cooldown = cooldown_left(settings, ch)
    return {
        "heading": heading(ch),
        "purpose": ch.purpose,
        "method": ch.method if ch.method in (SMS, TOTP, WEBAUTHN) else SMS,
        "other_ways": ch.purpose in SWITCHABLE,
        "masked": mask(ch.phone_e164),
        # The full number only where it catches a typo: confirming a new number (R-PR1).
        "full_number": ch.phone_e164 if ch.purpose in (ENROLL, CHANGE_NEW) else "",
        "channel": ch.channel,
        "sent": bool(ch.verification_sid),
        "cooldown": cooldown,
        # From the start of the step, disabled by the resend countdown during the cooldown (when the server refuses a
        # call too). Hidden only when no call can follow: nothing sent yet (unless Verify said landline, 60205), the
        # send limit reached, or the last send refused for a reason a call shares (R-O9, R-O11).
        "offer_call": call_possible and ch.sends < settings.mfa_max_sends and (ch.landline or ch.sends > 0),
        "allow_recovery": ch.purpose in RECOVERY_ALLOWED,
        "error": error,
    }


def render_code_step(request: Request, ch: MfaChallenge, *, error: str = "", status: int = 200,
                     flash: str = "", retry_after: int = 0, call_possible: bool = True) -> Response:
    headers = {"Retry-After": str(retry_after)} if retry_after else {}
    if ch.purpose == LOGIN:
        headers["HX-Push-Url"] = "/login/verify"
        page, fragment = "signin/verify.html", "signin/_code_step.html"
    else:
        page, fragment = "account/twofa.html", "account/_twofa_code.html"
    step = code_step(deps_of(request).settings, ch, error=error, call_possible=call_possible)
    return render(request, page, fragment, {"step": step, "flash": flash, "partial": fragment}, status, headers)


def sent_message(ch: MfaChallenge, channel: str, *, again: bool = False) -> str:
    if channel == "call":
        return f"We're calling the number ending {ch.phone_e164[-2:]}."
    return f"We sent {'a new code' if again else 'a code'} to the number ending {ch.phone_e164[-2:]}."


def sent_flash(request: Request, ch: MfaChallenge) -> str:
    """After a no-JS POST → 303, the step's page says what the POST did (the redirect carries only a code)."""
    if request.query_params.get("notice") == "code-sent" and ch.verification_sid:
        return sent_message(ch, ch.channel)
    return ""


async def send_and_render(request: Request, ch_id: str, channel: str = "sms", *, again: bool = False) -> Response:
    """Send a code, then show the step: with what happened, or why nothing was sent (R-X2)."""
    deps = deps_of(request)
    try:
        ch = await send_code(deps, client(request), ch_id, channel)
    except Refused as refused:
        ch = await deps.db.read(challenges.reload, ch_id)
        return render_code_step(request, ch, error=refused.message, status=refused.status,
                                retry_after=refused.retry_after, call_possible=refused.offer_call)
    return render_code_step(request, ch, flash=sent_message(ch, channel, again=again))


async def discard(request: Request) -> None:
    """Close the browser's pending step, whatever it is, and cancel its verification (R-O8, R-O16)."""
    state = cookie_state(request)
    token = state.get("challenge_id")
    state.set("challenge_id", None)
    if token:
        stale = await deps_of(request).db.write(challenges.discard_token, token)
        await cancel_verifications(request, stale)


async def cancel_verifications(request: Request, sids: list[str] | tuple[str, ...]) -> None:
    for sid in sids:
        # Best effort: an uncancelled verification expires by itself in 10 minutes.
        with contextlib.suppress(VerifyError):
            await deps_of(request).verify.cancel(sid)
