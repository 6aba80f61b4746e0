""""Try another way" at the sign-in code step: the user's other methods, in place with htmx or as a page."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import Response

from webapp.codestep import render_code_step, send_and_render
from webapp.forms import read_form
from webapp.htmx import redirect, render, wants_fragment
from webapp.models import User
from webapp.signin.code_step import current_step
from webapp.twofactor import challenges, methods
from webapp.twofactor.methods import SMS, TOTP, WEBAUTHN
from webapp.web import deps_of

WAYS = {
    WEBAUTHN: ("Use a passkey", "Needs a browser with JavaScript."),
    TOTP: ("Use your authenticator app", "Enter the code the app shows."),
    SMS: ("Text me a code", ""),
    "call": ("Call me with a code", "We read the code out by phone."),
}


def ways_for(s: Session, user: User) -> list[dict[str, str]]:
    """The user's methods, strongest first: a passkey, an app, then the phone by text or call."""
    kinds = methods.kinds_of(s, user.id) | ({SMS} if user.phone_e164 else set())
    ways = [w for w in (WEBAUTHN, TOTP) if w in kinds] + ([SMS, "call"] if SMS in kinds else [])
    return [{"way": w, "label": WAYS[w][0], "hint": WAYS[w][1]} for w in ways]


def _page(request: Request, ways: list[dict[str, str]], current: str, error: str = "", status: int = 200) -> Response:
    context: dict[str, Any] = {"ways": ways, "current": current, "error": error}
    return render(request, "signin/another_way.html", "signin/_another_way.html", context, status,
                  {"HX-Push-Url": "/login/another-way"} if wants_fragment(request) else None)


async def another_way_form(request: Request) -> Response:
    found = await current_step(request)
    if isinstance(found, Response):
        return found
    ways = await deps_of(request).db.read(ways_for, found.user)
    return _page(request, ways, found.challenge.method)


async def another_way_submit(request: Request) -> Response:
    form = await read_form(request, {"way": 16})
    found = await current_step(request)
    if isinstance(found, Response):
        return found
    deps = deps_of(request)
    ways = await deps.db.read(ways_for, found.user)
    way = form["way"]
    if way not in {w["way"] for w in ways}:
        return _page(request, ways, found.challenge.method, "Choose one of the ways listed.", 422)
    ch_id = found.challenge.id_hash
    if not await deps.db.write(challenges.switch_method, ch_id, SMS if way == "call" else way):
        return redirect(request, "/login", notice="login-expired")
    if way in (SMS, "call"):
        shown = await send_and_render(request, ch_id, "call" if way == "call" else "sms")
        if wants_fragment(request) or shown.status_code >= 400:
            return shown
        return redirect(request, "/login/verify", notice="code-sent")  # no JavaScript: POST → 303 → GET
    if not wants_fragment(request):
        return redirect(request, "/login/verify")
    return render_code_step(request, await deps.db.read(challenges.reload, ch_id))
