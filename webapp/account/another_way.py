""""Try another way" while proving it's you on the profile (turning two-step off): the same choices as at sign-in."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from webapp.account.twofa_pages import next_step, page
from webapp.codestep import render_code_step, send_and_render
from webapp.forms import read_form
from webapp.htmx import redirect
from webapp.security.cookies import cookie_state
from webapp.signin.another_way import ways_for
from webapp.twofactor import challenges
from webapp.twofactor.challenges import DISABLE, Found
from webapp.twofactor.methods import SMS
from webapp.web import deps_of, require_auth

PARTIAL = "account/_twofa_another_way.html"
SWITCHABLE = frozenset({DISABLE})


async def _current(request: Request) -> Found | None:
    auth = await require_auth(request)
    token = cookie_state(request).get("challenge_id")
    return await deps_of(request).db.read(challenges.find, token, SWITCHABLE, session_hash=auth.session.id_hash)


async def twofa_another_way_form(request: Request) -> Response:
    found = await _current(request)
    if found is None:
        return redirect(request, "/profile")
    ways = await deps_of(request).db.read(ways_for, found.user)
    return page(request, PARTIAL, {"ways": ways, "error": ""})


async def twofa_another_way_submit(request: Request) -> Response:
    form = await read_form(request, {"way": 16})
    found = await _current(request)
    if found is None:
        return redirect(request, "/profile")
    deps = deps_of(request)
    ways = await deps.db.read(ways_for, found.user)
    way = form["way"]
    if way not in {w["way"] for w in ways}:
        return page(request, PARTIAL, {"ways": ways, "error": "Choose one of the ways listed."}, 422)
    ch_id = found.challenge.id_hash
    if not await deps.db.write(challenges.switch_method, ch_id, SMS if way == "call" else way):
        return redirect(request, "/profile")
    if way in (SMS, "call"):
        return next_step(request, await send_and_render(request, ch_id, "call" if way == "call" else "sms"),
                         notice="code-sent")
    return next_step(request, render_code_step(request, await deps.db.read(challenges.reload, ch_id)))
