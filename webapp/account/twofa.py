"""Two-step settings on the profile: turn on, turn off, change phone, new recovery codes — each behind a step-up.

Without JavaScript every step answers POST → 303 → GET /2fa, which renders the step in progress from the
database; htmx swaps the same step in place. The recovery codes are the exception: they exist only in the
response that creates them, so that response shows them (a reload re-posts nothing that works twice).
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from webapp.account.phone import phone_form
from webapp.account.profile import status_view, twofa_status
from webapp.account.twofa_pages import (
    STATUS_PARTIAL,
    STEPUP_PARTIAL,
    app_setup,
    codes_page,
    next_step,
    page,
    passkey_add,
)
from webapp.codestep import cancel_verifications, discard, render_code_step, send_and_render, sent_flash
from webapp.forms import read_form
from webapp.htmx import redirect, render
from webapp.identity.users import confirm_password
from webapp.models import MfaChallenge
from webapp.security.cookies import cookie_state
from webapp.security.sessions import Auth
from webapp.twofactor import challenges, recovery, stepup
from webapp.twofactor.challenges import ADD_PASSKEY, ADD_TOTP, CHANGE_NEW, NEW_NUMBER, STEP_UP, Found
from webapp.twofactor.checking import check
from webapp.twofactor.methods import SMS, WEBAUTHN
from webapp.twofactor.passkeys import MAX_CREDENTIAL_JSON
from webapp.web import client, deps_of, require_auth, use_challenge, use_session

TITLES = {"enable": "Turn on two-step verification", "disable": "Turn off two-step verification",
          "phone": "Change your phone number", "recovery-codes": "Get new recovery codes",
          "app": "Set up an authenticator app", "passkey": "Add a passkey"}


def _title(action: str, auth: Auth) -> str:
    return "Add a phone" if action == "enable" and auth.user.mfa_enabled else TITLES[action]


def _action(request: Request, auth: Auth) -> str | None:
    action = str(request.path_params["action"])
    if action not in TITLES or not stepup.allowed(action, auth.user):
        return None
    return action


async def _current(request: Request, auth: Auth, purposes: frozenset[str] = STEP_UP) -> Found | None:
    token = cookie_state(request).get("challenge_id")
    return await deps_of(request).db.read(challenges.find, token, purposes, session_hash=auth.session.id_hash)


async def twofa_stepup_form(request: Request) -> Response:
    auth = await require_auth(request)
    action = _action(request, auth)
    if action is None:
        return redirect(request, "/profile")
    return page(request, STEPUP_PARTIAL, {"action": action, "title": _title(action, auth), "error": ""})


async def twofa_stepup_submit(request: Request) -> Response:
    """The password again; a right one opens a step bound to this session, a wrong one counts (R-L1)."""
    form = await read_form(request, {"password": 1024})
    auth = await require_auth(request)
    action = _action(request, auth)
    if action is None:
        return redirect(request, "/profile")
    deps = deps_of(request)
    problem = await confirm_password(deps, client(request), auth.user, form["password"], event="step_up")
    if problem:
        context = {"action": action, "title": _title(action, auth)}
        error = "That password isn't right." if problem == "wrong" else problem
        return page(request, STEPUP_PARTIAL, {**context, "error": error}, 422 if problem == "wrong" else 429)
    if action == "recovery-codes":
        await discard(request)
        made = await stepup.regenerate(deps, client(request), auth)
        if made is None:
            return redirect(request, "/profile")
        use_session(request, made[1])
        return codes_page(request, made[0], "New recovery codes are ready; the old ones no longer work.")
    token = cookie_state(request).get("challenge_id")
    begun = await deps.db.write(stepup.open_step, deps.settings, auth, action, token)
    await cancel_verifications(request, begun.stale_sids)
    if begun.step is None:
        return redirect(request, "/profile")
    use_challenge(request, begun.step.token)
    if action == "enable":
        return next_step(request, phone_form(request))
    ch = await deps.db.read(challenges.reload, begun.step.id_hash)
    if ch.method != SMS:  # an app or a passkey: nothing to send
        return next_step(request, _show(request, ch, auth))
    return next_step(request, await send_and_render(request, begun.step.id_hash), notice="code-sent")


def _show(request: Request, ch: MfaChallenge, auth: Auth, *, error: str = "", status: int = 200,
          retry_after: int = 0) -> Response:
    """The step in progress: a new app's setup, a new passkey, or a code step (by SMS, app or passkey)."""
    if ch.purpose == ADD_TOTP:
        return app_setup(request, ch, auth.user, error=error, status=status)
    if ch.purpose == ADD_PASSKEY:
        return passkey_add(request, error=error, status=status)
    return render_code_step(request, ch, error=error, status=status, retry_after=retry_after)


async def twofa_verify(request: Request) -> Response:
    """A code (from a message or an app) or a passkey's answer; `label` names an app being added."""
    form = await read_form(request, {"code": 32, "credential": MAX_CREDENTIAL_JSON, "label": 64})
    return await _check(request, form["code"], factor="code", credential=form["credential"], label=form["label"])


async def twofa_recovery(request: Request) -> Response:
    form = await read_form(request, {"recovery_code": 64})
    return await _check(request, form["recovery_code"], factor="recovery")


async def _check(request: Request, code: str, *, factor: str, credential: str = "", label: str = "") -> Response:
    auth = await require_auth(request)
    found = await _current(request, auth)
    if found is None or _awaits_number(found) or found.challenge.purpose == ADD_PASSKEY:
        return redirect(request, "/profile")
    if factor == "recovery" and found.challenge.purpose not in challenges.RECOVERY_ALLOWED:
        return redirect(request, "/2fa")
    deps = deps_of(request)
    answer = credential if factor != "recovery" and found.challenge.method == WEBAUTHN else code
    outcome = await check(deps, client(request), found, answer, factor=factor, acting=auth.session, label=label)
    if outcome.ok and outcome.done:
        return _passed(request, outcome.done)
    if outcome.over:
        await discard(request)
        left, listed = await deps.db.read(status_view, auth.user.id)
        return page(request, STATUS_PARTIAL, {**twofa_status(auth.user, left, listed), "error": outcome.message},
                    outcome.status)
    return _show(request, found.challenge, auth, error=outcome.message, status=outcome.status,
                 retry_after=outcome.retry_after)


def _awaits_number(found: Found) -> bool:
    """A phone step whose number is not chosen yet: nothing to check or send."""
    return found.challenge.purpose in NEW_NUMBER and not found.challenge.phone_e164


def _passed(request: Request, done: Any) -> Response:
    if done.next_step is not None:  # the old phone is confirmed: now the new number
        use_challenge(request, done.next_step.token)
        return next_step(request, phone_form(request, purpose=CHANGE_NEW))
    if done.session is None:  # nothing changed yet (a new address must confirm): the same session goes on
        use_challenge(request, None)
        return redirect(request, "/profile", notice=done.notice)
    use_session(request, done.session)
    if done.codes:
        return codes_page(request, done.codes, "Two-step verification is on.")
    return redirect(request, "/profile", notice=done.notice)


async def _resend(request: Request, channel: str) -> Response:
    await read_form(request, {})
    auth = await require_auth(request)
    found = await _current(request, auth)
    if found is None or not found.challenge.phone_e164 or found.challenge.method != SMS:
        return redirect(request, "/profile")
    return await send_and_render(request, found.challenge.id_hash, channel, again=True)


async def twofa_resend(request: Request) -> Response:
    return await _resend(request, "sms")


async def twofa_call(request: Request) -> Response:
    return await _resend(request, "call")


async def twofa_cancel(request: Request) -> Response:
    await read_form(request, {})
    await require_auth(request)
    await discard(request)
    return redirect(request, "/profile")


async def twofa_step(request: Request) -> Response:
    """GET /2fa: the step in progress as a full page, for reloads, history and no-JS."""
    auth = await require_auth(request)
    found = await _current(request, auth)
    if found is None:
        return redirect(request, "/profile")
    if _awaits_number(found):
        return phone_form(request, purpose=found.challenge.purpose)
    if found.challenge.method != SMS:
        return _show(request, found.challenge, auth)
    return render_code_step(request, found.challenge, flash=sent_flash(request, found.challenge))


async def twofa_recovery_used(request: Request) -> Response:
    """The interstitial after a recovery-code sign-in: how many remain and what to do next (R-RC5)."""
    auth = await require_auth(request)
    left = await deps_of(request).db.read(recovery.remaining, auth.user.id)
    return render(request, "account/recovery_used.html", None, twofa_status(auth.user, left))
