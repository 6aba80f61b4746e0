"""The password step: the form, then a session or, with two-step verification on, the code step in place."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from webapp.codestep import cancel_verifications, render_code_step, sent_message
from webapp.forms import Form, read_form
from webapp.htmx import redirect, render, wants_fragment
from webapp.identity.usernames import canonical
from webapp.identity.users import password_step
from webapp.security.cookies import cookie_state
from webapp.security.redirects import safe_next
from webapp.signin import device
from webapp.twofactor import challenges
from webapp.twofactor.checking import locked_message
from webapp.twofactor.methods import SMS
from webapp.twofactor.sending import Refused, send_code
from webapp.web import client, deps_of, load_auth, use_challenge, use_session

LOGIN_FIELDS = {"username": 64, "password": 1024, "remember": 8, "next": 512}
LOGIN_ERROR = "Incorrect username or password."


def login_page(request: Request, form: Form, status: int = 200, error: str | None = None,
                retry_after: int = 0) -> Response:
    headers = {"Retry-After": str(retry_after)} if retry_after else None
    context = {"form": form, "error": error, "next": safe_next(form["next"] or request.query_params.get("next"))}
    return render(request, "signin/login.html", "signin/_password_step.html", context, status, headers)


async def login_form(request: Request) -> Response:
    if await load_auth(request):
        return redirect(request, safe_next(request.query_params.get("next")))
    return login_page(request, Form(values={"next": request.query_params.get("next", "")}))


async def login_submit(request: Request) -> Response:
    form = await read_form(request, LOGIN_FIELDS)
    # An unusable password field (too long, control characters) is an ordinary failed sign-in (R-P4).
    password = form.values.pop("password", "")
    form.errors.clear()
    form.values["next"] = safe_next(form["next"] or request.query_params.get("next"))
    deps = deps_of(request)
    result = await password_step(deps, client(request), canonical(form["username"]), password,
                                 remember=form["remember"] in ("1", "on", "true"), next_path=form["next"],
                                 challenge_token=cookie_state(request).get("challenge_id"),
                                 device_token=device.token_of(request))
    if result.retry_after:
        minutes = (result.retry_after + 59) // 60
        message = f"Too many sign-in attempts. Try again in {minutes} minute{'s' if minutes != 1 else ''}."
        return login_page(request, form, 429, message, result.retry_after)
    if result.mfa_wait:
        return login_page(request, form, 429, locked_message(result.mfa_wait), result.mfa_wait)
    if not result.ok:
        return login_page(request, form, 422, LOGIN_ERROR)
    if result.session:
        use_session(request, result.session)
        return redirect(request, form["next"])
    assert result.challenge
    use_challenge(request, result.challenge.token)
    await cancel_verifications(request, result.stale_sids)
    if result.method != SMS:  # an app or a passkey: nothing to send
        if not wants_fragment(request):
            return redirect(request, "/login/verify")
        return render_code_step(request, await deps.db.read(challenges.reload, result.challenge.id_hash))
    return await _first_code(request, result.challenge.id_hash)


async def _first_code(request: Request, ch_id: str) -> Response:
    """Send the first code, then show the code step: in place for htmx, after a 303 without JavaScript."""
    deps = deps_of(request)
    try:
        ch = await send_code(deps, client(request), ch_id, "sms")
    except Refused as refused:
        # The challenge survives a failed send (R-X2): the code step offers resend or a recovery code.
        ch = await deps.db.read(challenges.reload, ch_id)
        return render_code_step(request, ch, error=refused.message, status=refused.status,
                                retry_after=refused.retry_after, call_possible=refused.offer_call)
    if not wants_fragment(request):
        return redirect(request, "/login/verify")
    return render_code_step(request, ch, flash=sent_message(ch, "sms"))
