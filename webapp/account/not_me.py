""""This wasn't me" from a security mail: works signed out, because whoever changed things may have locked the
owner out. The GET only explains; the POST ends every session and mailed link (identity/disown)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from webapp.forms import read_form
from webapp.htmx import redirect, render
from webapp.identity.disown import disown
from webapp.mail import tokens
from webapp.security.cookies import cookie_state
from webapp.signin.forgot import link_invalid
from webapp.web import client, deps_of


async def not_me_form(request: Request) -> Response:
    found = await deps_of(request).db.read(tokens.find, str(request.path_params["token"]), tokens.NOT_ME)
    if found is None:
        return link_invalid(request, tokens.NOT_ME)
    return render(request, "account/not_me.html", None, {"action": request.url.path})


async def not_me_submit(request: Request) -> Response:
    await read_form(request, {})
    if not await disown(deps_of(request), client(request), str(request.path_params["token"])):
        return redirect(request, request.url.path)
    cookie_state(request).clear()  # this browser's session, if it was one of them, is over too
    return redirect(request, "/account/secured")


async def not_me_done(request: Request) -> Response:
    return render(request, "account/not_me_done.html", None, {})
