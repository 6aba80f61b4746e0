""""Forgot your password?": ask for the address (the same answer whether or not an account has it), then the
mailed link's page to choose a new password. A reset never signs in: the next step is the ordinary sign-in."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from webapp.forms import Form, read_form
from webapp.htmx import redirect, render, wants_fragment
from webapp.identity.passwords import password_problem
from webapp.identity.reset import request_reset, reset_password
from webapp.identity.usernames import email_problem
from webapp.mail import tokens
from webapp.web import client, deps_of

FORGOT_PAGE = "signin/forgot.html"
FORGOT_FORM = "signin/_forgot_form.html"
FORGOT_SENT = "signin/_forgot_sent.html"
RESET_FIELDS = {"new_password": 1024, "new_password_confirm": 1024}


def _forgot(request: Request, partial: str, context: dict[str, Any], status: int = 200,
            retry_after: int = 0) -> Response:
    headers = {"Retry-After": str(retry_after)} if retry_after else None
    return render(request, FORGOT_PAGE, partial, {"partial": partial, **context}, status, headers)


async def forgot_form(request: Request) -> Response:
    return _forgot(request, FORGOT_FORM, {"form": Form(values={})})


async def forgot_sent(request: Request) -> Response:
    return _forgot(request, FORGOT_SENT, {})


async def forgot_submit(request: Request) -> Response:
    form = await read_form(request, {"email": 254}, {"email": "Email address"})
    if "email" not in form.errors and (problem := email_problem(form["email"])):
        form.error("email", problem)
    if not form.ok:
        return _forgot(request, FORGOT_FORM, {"form": form}, 422)
    taken = await request_reset(deps_of(request), client(request), form["email"])
    if not taken.allowed:
        minutes = (taken.retry_after + 59) // 60
        form.error("email", f"Too many reset requests. Try again in {minutes} minute{'s' if minutes != 1 else ''}.")
        return _forgot(request, FORGOT_FORM, {"form": form}, 429, taken.retry_after)
    # The same answer for every address, known or not: nothing here tells whether an account exists.
    if wants_fragment(request):
        return _forgot(request, FORGOT_SENT, {})
    return redirect(request, "/password/forgot/sent")


def link_invalid(request: Request, kind: str) -> Response:
    """A used, expired or unknown mailed link: a clear page, 410 (the link is gone for good)."""
    return render(request, "account/link_invalid.html", None, {"kind": kind}, 410)


def _reset_page(request: Request, found: tokens.Found, form: Form, status: int = 200) -> Response:
    for name in RESET_FIELDS:
        form.values.pop(name, None)
    context = {"form": form, "username": found.user.username, "token": request.path_params["token"]}
    return render(request, "signin/reset.html", "signin/_reset_form.html", context, status)


async def reset_form(request: Request) -> Response:
    """Opening the link changes nothing (mail scanners open links too); the POST below uses it."""
    found = await deps_of(request).db.read(tokens.find, str(request.path_params["token"]), tokens.RESET)
    if found is None:
        return link_invalid(request, "reset")
    return _reset_page(request, found, Form(values={}))


async def reset_submit(request: Request) -> Response:
    form = await read_form(request, RESET_FIELDS, {"new_password": "New password",
                                                   "new_password_confirm": "Confirmation"})
    deps = deps_of(request)
    token = str(request.path_params["token"])
    found = await deps.db.read(tokens.find, token, tokens.RESET)
    if found is None:
        return redirect(request, request.url.path)  # the link's page now says it is used or expired
    if "new_password" not in form.errors:
        if problem := await password_problem(deps.settings, form["new_password"], found.user.username):
            form.error("new_password", problem)
        elif form["new_password"] != form["new_password_confirm"]:
            form.error("new_password_confirm", "The two passwords don't match.")
    if not form.ok:
        return _reset_page(request, found, form, 422)
    if not await reset_password(deps, client(request), found, token, form["new_password"]):
        return redirect(request, request.url.path)
    # Signed out everywhere, this browser included: the new password (and the second step, if on) signs in.
    return redirect(request, "/login", notice="password-reset")
