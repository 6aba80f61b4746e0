"""Change password (R-P9): current and new password, the same policy as registration, other sessions ended."""

from __future__ import annotations

from sqlalchemy import select
from starlette.requests import Request
from starlette.responses import Response

from webapp.accounts.passwords import check_password, hash_password, password_problem
from webapp.forms import Form, read_form
from webapp.htmx import redirect, render
from webapp.models import SecurityNotice, User
from webapp.security import throttle
from webapp.security.audit import audit
from webapp.security.sessions import end_other_sessions, require_auth
from webapp.settings import Settings

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
    settings: Settings = request.app.state.settings
    key = throttle.throttle_key(settings.secret_key, "login-user", auth.user.username)
    async with request.app.state.db.session() as s:
        locked = await throttle.locked_for(s, key)
    if locked:
        form.error("current_password", "Too many wrong passwords. Try again later.")
        return _page(request, form, 429)
    if not await check_password(settings, form["current_password"], auth.user.password_hash):
        async with request.app.state.db.session() as s:
            await throttle.record_failure(s, key, settings.login_max_failures, settings.login_lock_s)
            await audit(request, "authn_password_change", "failure", user_id=auth.user.id, session=s)
        form.error("current_password", "Your current password isn't right.")
        return _page(request, form, 422)
    if problem := await password_problem(settings, form["new_password"], auth.user.username):
        form.error("new_password", problem)
    elif form["new_password"] != form["new_password_confirm"]:
        form.error("new_password_confirm", "The two passwords don't match.")
    if not form.ok:
        return _page(request, form, 422)
    new_hash = await hash_password(settings, form["new_password"])
    async with request.app.state.db.session() as s:
        user = (await s.execute(select(User).where(User.id == auth.user.id))).scalar_one()
        user.password_hash, user.pepper_id = new_hash, settings.pepper_id
        s.add(SecurityNotice(user_id=user.id, kind="password_changed"))
        await audit(request, "authn_password_change", "success", user_id=user.id, session=s)
        await end_other_sessions(request, s, user, auth.session)  # two-step verification stays as it was
    return redirect(request, "/profile", notice="password-changed")
