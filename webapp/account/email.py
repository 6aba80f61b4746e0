"""The account's email address: verify it (link from the mail), send the link again, change it."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from webapp.codestep import cancel_verifications, send_and_render
from webapp.forms import Form, read_form
from webapp.htmx import redirect, render, wants_fragment
from webapp.identity import emails
from webapp.identity.usernames import email_problem
from webapp.identity.users import confirm_password
from webapp.mail import tokens
from webapp.security.cookies import cookie_state
from webapp.signin.forgot import link_invalid
from webapp.web import client, deps_of, load_auth, require_auth, use_challenge, use_session

FIELDS = {"email": 254, "password": 1024}


def _page(request: Request, form: Form, status: int = 200) -> Response:
    form.values.pop("password", None)
    return render(request, "account/email.html", "account/_email_form.html", {"form": form}, status)


async def email_form(request: Request) -> Response:
    await require_auth(request)
    return _page(request, Form(values={}))


async def email_submit(request: Request) -> Response:
    form = await read_form(request, FIELDS, {"email": "New email address"})
    auth = await require_auth(request)
    deps = deps_of(request)
    new = form["email"].strip()
    if "email" not in form.errors and (problem := email_problem(new)):
        form.error("email", problem)
    elif new.lower() == auth.user.email.lower():
        form.error("email", "That is already your address.")
    if not form.ok:
        return _page(request, form, 422)
    problem = await confirm_password(deps, client(request), auth.user, form["password"], event="step_up")
    if problem:
        form.error("password", "Your password isn't right." if problem == "wrong" else problem)
        return _page(request, form, 422 if problem == "wrong" else 429)
    if not auth.user.mfa_enabled:
        sent = await emails.request_change(deps, client(request), auth, new)
        return redirect(request, "/profile", notice="email-change-sent" if sent else None)
    token = cookie_state(request).get("challenge_id")
    step, stale = await deps.db.write(emails.open_change_step, deps.settings, auth, new, token)
    await cancel_verifications(request, stale)
    if step is None:
        return redirect(request, "/profile")
    use_challenge(request, step.token)
    shown = await send_and_render(request, step.id_hash)
    # The code step lives on the two-step page (/2fa): a full load there, with or without JavaScript; a refused
    # send is shown there too (the step survives it, with resend and recovery codes).
    return redirect(request, "/2fa", notice="code-sent" if shown.status_code < 400 else None)


async def email_resend(request: Request) -> Response:
    await read_form(request, {})
    auth = await require_auth(request)
    wait = await emails.resend_verification(deps_of(request), client(request), auth)
    flash = (f"You asked for several links already. Try again in {(wait + 59) // 60} minutes." if wait
             else f"We sent a new link to {auth.user.email}.")
    if wants_fragment(request):
        context = {"flash": "" if wait else flash, "error": flash if wait else ""}
        return render(request, "account/profile.html", "account/_email_status.html", context, 429 if wait else 200)
    return redirect(request, "/profile", notice="verify-wait" if wait else "verification-sent")


async def _link_page(request: Request, purpose: str) -> Response:
    found = await deps_of(request).db.read(tokens.find, str(request.path_params["token"]), purpose)
    if found is None or (purpose == tokens.VERIFY and found.token.email != found.user.email):
        return link_invalid(request, purpose)
    context = {"purpose": purpose, "address": found.token.email, "action": request.url.path}
    return render(request, "account/email_link.html", None, context)


async def verify_link(request: Request) -> Response:
    return await _link_page(request, tokens.VERIFY)


async def confirm_link(request: Request) -> Response:
    return await _link_page(request, tokens.CHANGE)


async def verify_link_submit(request: Request) -> Response:
    await read_form(request, {})
    if not await emails.verify_address(deps_of(request), client(request), str(request.path_params["token"])):
        return redirect(request, request.url.path)
    signed_in = await load_auth(request) is not None
    return redirect(request, "/profile" if signed_in else "/login", notice="email-verified")


async def confirm_link_submit(request: Request) -> Response:
    await read_form(request, {})
    auth = await load_auth(request)
    done = await emails.confirm_change(deps_of(request), client(request), str(request.path_params["token"]), auth)
    if not done.ok:
        return redirect(request, request.url.path)
    if done.session is not None:
        use_session(request, done.session)
        return redirect(request, "/profile", notice="email-changed")
    return redirect(request, "/login", notice="email-changed")
