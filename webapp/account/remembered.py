"""Remembered browsers on the profile: "Forget" one, or "Forget all"."""

from __future__ import annotations

from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import Response

from webapp.forms import read_form
from webapp.htmx import redirect
from webapp.security import audit, sessions
from webapp.security.clients import Client
from webapp.signin import device
from webapp.twofactor import browsers
from webapp.web import client, deps_of, require_auth


def _forget(s: Session, client: Client, user_id: int, browser_id: int | None) -> int:
    sessions.lock_user(s, user_id)
    forgotten = browsers.forget_all(s, user_id) if browser_id is None else int(browsers.forget(s, user_id,
                                                                                              browser_id))
    if forgotten:
        audit.record(s, client, "browsers_forgotten", "success", user_id=user_id, count=forgotten)
    return forgotten


async def _forget_and_answer(request: Request, browser_id: int | None) -> Response:
    await read_form(request, {})
    auth = await require_auth(request)
    deps = deps_of(request)
    mine = await deps.db.read(browsers.current_id, auth.user.id, device.token_of(request))
    await deps.db.write(_forget, client(request), auth.user.id, browser_id)
    response = redirect(request, "/profile", notice="browser-forgotten" if browser_id else "browsers-forgotten")
    if mine is not None and browser_id in (None, mine):
        device.drop(response, deps.settings)  # this browser forgot itself: its cookie goes too
    return response


async def browser_forget(request: Request) -> Response:
    return await _forget_and_answer(request, int(request.path_params["browser_id"]))


async def browsers_forget_all(request: Request) -> Response:
    return await _forget_and_answer(request, None)
