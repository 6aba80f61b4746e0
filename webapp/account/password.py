"""Change password (R-P9): current and new password, the same policy as registration, other sessions ended."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from webapp.forms import Form, read_form
from webapp.htmx import redirect, render
from webapp.identity.passwords import password_problem
from webapp.identity.users import change_password, confirm_password
from webapp.web import client, deps_of, require_auth, use_session

FIELDS = {"current_password": 1024, "new_password": 1024, "new_password_confirm": 1024}
LABELS = {"current_password": "Current password", "new_password": "New password",
          "new_password_confirm": "Confirmation"}


def _page(request: Request, form: Form, status: int = 200) -> Response:
    for name in FIELDS:
        form.values.pop(name, None)
    return render(request, "account/password.html", "account/_password_form.html", {"form": form}, status)


async def password_form(request: Request) -> Response:
    await require_auth(request)
    return _page(request, Form(values={}))


async def password_submit(request: Request) -> Response:
    form = await read_form(request, FIELDS, LABELS)
    auth = await require_auth(request)
    deps = deps_of(request)
    problem = await confirm_password(deps, client(request), auth.user, form["current_password"],
                                     event="authn_password_change")
    if problem:
        locked = problem != "wrong"
        form.error("current_password", problem if locked else "Your current password isn't right.")
        return _page(request, form, 429 if locked else 422)
    if problem := await password_problem(deps.settings, form["new_password"], auth.user.username):
        form.error("new_password", problem)
    elif form["new_password"] != form["new_password_confirm"]:
        form.error("new_password_confirm", "The two passwords don't match.")
    if not form.ok:
        return _page(request, form, 422)
    result = await change_password(deps, client(request), auth, form["new_password"])
    if isinstance(result, str):
        form.error("current_password", result)
        return _page(request, form, 409)
    use_session(request, result)
    return redirect(request, "/profile", notice="password-changed")
