"""Two-step settings on the profile: turn on, turn off, change phone, new recovery codes — each behind a step-up.

Without JavaScript every step answers POST → 303 → GET /2fa, which renders the step in progress from the
database; htmx swaps the same step in place. The recovery codes are the exception: they exist only in the
response that creates them, so that response shows them (a reload re-posts nothing that works twice).
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from webapp.account.profile import twofa_status
from webapp.codestep import cancel_verifications, discard, render_code_step, send_and_render, sent_flash
from webapp.forms import read_form
from webapp.htmx import redirect, render, wants_fragment
from webapp.identity.users import confirm_password
from webapp.security.cookies import cookie_state
from webapp.security.sessions import Auth
from webapp.twofactor import challenges, recovery, stepup
from webapp.twofactor.challenges import CHANGE_NEW, ENROLL, NEW_NUMBER, STEP_UP, Found
from webapp.twofactor.checking import check
from webapp.twofactor.phones import MAX_PHONE_INPUT, country_options, parse_phone, region_from_language
from webapp.web import client, deps_of, require_auth, use_challenge, use_session

TITLES = {"enable": "Turn on two-step verification", "disable": "Turn off two-step verification",
          "phone": "Change your phone number", "recovery-codes": "Get new recovery codes"}


# One partial per state of the #twofa region; the code step's is chosen by render_code_step.
STATUS_PARTIAL = "account/_twofa_status.html"
STEPUP_PARTIAL = "account/_twofa_password.html"
PHONE_PARTIAL = "account/_twofa_phone.html"
CODES_PARTIAL = "account/_twofa_codes.html"


def _page(request: Request, partial: str, context: dict[str, Any], status: int = 200) -> Response:
    """The state's partial for htmx, else the two-step page around it (which includes `partial`)."""
    return render(request, "account/twofa.html", partial, {"flash": "", "partial": partial, **context}, status)


def _phone_form(request: Request, *, values: dict[str, str] | None = None, error: str = "", purpose: str = ENROLL,
                status: int = 200) -> Response:
    settings = deps_of(request).settings
    values = values or {}
    region = values.get("region") or region_from_language(
        request.headers.get("accept-language", ""), settings.phone_allowed_regions, settings.phone_default_region)
    return _page(request, PHONE_PARTIAL, {"countries": country_options(settings.phone_allowed_regions),
                           "region": region, "phone": values.get("phone", ""), "error": error, "purpose": purpose},
                 status)


def _action(request: Request, auth: Auth) -> str | None:
    action = str(request.path_params["action"])
    if action not in TITLES or (action == "enable") == auth.user.mfa_enabled:
        return None
    return action


async def _current(request: Request, auth: Auth, purposes: frozenset[str] = STEP_UP) -> Found | None:
    token = cookie_state(request).get("challenge_id")
    return await deps_of(request).db.read(challenges.find, token, purposes, session_hash=auth.session.id_hash)


def _next_step(request: Request, shown: Response, *, notice: str | None = None) -> Response:
    """htmx swaps the step in place; a plain form post goes on with a 303 to the step's own page (PRG)."""
    if wants_fragment(request) or shown.status_code >= 400:  # errors are shown where they happened
        return shown
    return redirect(request, "/2fa", notice=notice)


async def twofa_stepup_form(request: Request) -> Response:
    auth = await require_auth(request)
    action = _action(request, auth)
    if action is None:
        return redirect(request, "/profile")
    return _page(request, STEPUP_PARTIAL, {"action": action, "title": TITLES[action], "error": ""})


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
        context = {"action": action, "title": TITLES[action]}
        error = "That password isn't right." if problem == "wrong" else problem
        return _page(request, STEPUP_PARTIAL, {**context, "error": error}, 422 if problem == "wrong" else 429)
    if action == "recovery-codes":
        await discard(request)
        made = await stepup.regenerate(deps, client(request), auth)
        if made is None:
            return redirect(request, "/profile")
        use_session(request, made[1])
        return _codes_page(request, made[0], "New recovery codes are ready; the old ones no longer work.")
    token = cookie_state(request).get("challenge_id")
    begun = await deps.db.write(stepup.open_step, deps.settings, auth, action, token)
    await cancel_verifications(request, begun.stale_sids)
    if begun.step is None:
        return redirect(request, "/profile")
    use_challenge(request, begun.step.token)
    if action == "enable":
        return _next_step(request, _phone_form(request))
    return _next_step(request, await send_and_render(request, begun.step.id_hash), notice="code-sent")


async def twofa_phone(request: Request) -> Response:
    form = await read_form(request, {"region": 4, "phone": 64})
    auth = await require_auth(request)
    found = await _current(request, auth, NEW_NUMBER)
    if found is None:
        return redirect(request, "/profile")
    deps = deps_of(request)
    purpose = found.challenge.purpose
    e164, problem = parse_phone(form["phone"], form["region"].upper(), deps.settings.phone_allowed_regions)
    if "phone" in form.errors:  # over-long input arrives empty: say why, not "Enter a phone number" (R-V1)
        e164, problem = None, f"A phone number has at most {MAX_PHONE_INPUT} characters."
    if problem or not e164:
        return _phone_form(request, values=form.values, error=problem or form.errors.get("phone", ""),
                           purpose=purpose, status=422)
    begun = await deps.db.write(stepup.choose_number, deps.settings, found, e164)
    if begun.problem == "changed" or (begun.step is None and not begun.problem):
        return redirect(request, "/2fa")
    if begun.step is None:
        return _phone_form(request, values=form.values, error=begun.problem, purpose=purpose, status=422)
    use_challenge(request, begun.step.token)
    await cancel_verifications(request, begun.stale_sids)
    return _next_step(request, await send_and_render(request, begun.step.id_hash), notice="code-sent")


async def twofa_verify(request: Request) -> Response:
    form = await read_form(request, {"code": 32})
    return await _check(request, form["code"], factor="sms")


async def twofa_recovery(request: Request) -> Response:
    form = await read_form(request, {"recovery_code": 64})
    return await _check(request, form["recovery_code"], factor="recovery")


async def _check(request: Request, code: str, *, factor: str) -> Response:
    auth = await require_auth(request)
    found = await _current(request, auth)
    if found is None or not found.challenge.phone_e164:
        return redirect(request, "/profile")
    if factor == "recovery" and found.challenge.purpose not in challenges.RECOVERY_ALLOWED:
        return redirect(request, "/2fa")
    deps = deps_of(request)
    outcome = await check(deps, client(request), found, code, factor=factor, acting=auth.session)
    if outcome.ok and outcome.done:
        return _passed(request, outcome.done)
    if outcome.over:
        await discard(request)
        left = await deps.db.read(recovery.remaining, auth.user.id)
        return _page(request, STATUS_PARTIAL, {**twofa_status(auth.user, left), "error": outcome.message},
                     outcome.status)
    return render_code_step(request, found.challenge, error=outcome.message, status=outcome.status,
                            retry_after=outcome.retry_after)


def _passed(request: Request, done: Any) -> Response:
    if done.next_step is not None:  # the old phone is confirmed: now the new number
        use_challenge(request, done.next_step.token)
        return _next_step(request, _phone_form(request, purpose=CHANGE_NEW))
    if done.session is None:  # nothing changed yet (a new address must confirm): the same session goes on
        use_challenge(request, None)
        return redirect(request, "/profile", notice=done.notice)
    use_session(request, done.session)
    if done.codes:
        return _codes_page(request, done.codes, "Two-step verification is on.")
    return redirect(request, "/profile", notice=done.notice)


def _codes_page(request: Request, codes: list[str], flash: str) -> Response:
    """Shown once, never stored in clear (R-RC1). htmx swaps the whole page body: the session and its CSRF token
    were just re-issued, so every form on the page must be re-rendered with the new token."""
    context = {"partial": CODES_PARTIAL, "codes": codes, "codes_text": "\n".join(codes) + "\n", "flash": flash}
    headers = {"HX-Retarget": "body", "HX-Reswap": "innerHTML"} if wants_fragment(request) else None
    return render(request, "account/twofa.html", None, context, headers=headers)


async def _resend(request: Request, channel: str) -> Response:
    await read_form(request, {})
    auth = await require_auth(request)
    found = await _current(request, auth)
    if found is None or not found.challenge.phone_e164:
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
    if not found.challenge.phone_e164:
        return _phone_form(request, purpose=found.challenge.purpose)
    return render_code_step(request, found.challenge, flash=sent_flash(request, found.challenge))


async def twofa_recovery_used(request: Request) -> Response:
    """The interstitial after a recovery-code sign-in: how many remain and what to do next (R-RC5)."""
    auth = await require_auth(request)
    left = await deps_of(request).db.read(recovery.remaining, auth.user.id)
    return render(request, "account/recovery_used.html", None, twofa_status(auth.user, left))
