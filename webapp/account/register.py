"""Create an account."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from webapp import metrics
from webapp.forms import Form, read_form
from webapp.htmx import redirect, render
from webapp.identity.passwords import password_problem
from webapp.identity.usernames import canonical, email_problem, username_problem
from webapp.identity.users import create_user, username_taken
from webapp.security import audit, throttle
from webapp.web import client, deps_of, load_auth

REGISTER_FIELDS = {"username": 64, "email": 254, "password": 1024, "password_confirm": 1024}
TAKEN = "That username is taken; choose another."


def _register_page(request: Request, form: Form, status: int = 200, retry_after: int = 0) -> Response:
    for name in ("password", "password_confirm"):  # keep what the user typed, except secrets
        form.values.pop(name, None)
    headers = {"Retry-After": str(retry_after)} if retry_after else None
    return render(request, "account/register.html", "account/_register_form.html", {"form": form}, status, headers)


async def register_form(request: Request) -> Response:
    if await load_auth(request):
        return redirect(request, "/profile")
    return _register_page(request, Form(values={}))


async def register_submit(request: Request) -> Response:
    deps = deps_of(request)
    settings = deps.settings
    form = await read_form(request, REGISTER_FIELDS, {"password_confirm": "Confirmation"})
    key = throttle.throttle_key(settings.secret_key, "register-ip", client(request).ip)
    verdict = await deps.db.write(throttle.hit, key, settings.registrations_per_ip_per_hour, 3600)
    if not verdict.allowed:
        await deps.db.write(audit.record, client(request), "excess_rate_limit_exceeded", "failure",
                            limit="register-ip")
        metrics.refused("register-ip")
        minutes = verdict.retry_after // 60 + 1
        form.error("username", f"Too many new accounts from this network. Try again in {minutes} minutes.")
        return _register_page(request, form, 429, verdict.retry_after)
    username = canonical(form["username"])
    if problem := username_problem(form["username"]):
        form.error("username", problem)
    if problem := email_problem(form["email"]):
        form.error("email", problem)
    if "password" not in form.errors:
        if problem := await password_problem(settings, form["password"], username):
            form.error("password", problem)
        elif form["password"] != form["password_confirm"]:
            form.error("password_confirm", "The two passwords don't match.")
    if form.ok and await deps.db.read(username_taken, username):
        form.error("username", TAKEN)
    if not form.ok:
        return _register_page(request, form, 422)
    if not await create_user(deps, client(request), username, form["username"].strip(), form["email"].strip(),
                             form["password"]):
        form.error("username", TAKEN)
        return _register_page(request, form, 422)
    return redirect(request, "/login", notice="registered")
