""""Sign in with a passkey" on the sign-in page: no password, no code (needs JavaScript, static/webauthn.js)."""

from __future__ import annotations

import json

from starlette.requests import Request
from starlette.responses import Response

from webapp.forms import Form, read_form
from webapp.htmx import redirect
from webapp.passkeystep import json_response
from webapp.security.redirects import safe_next
from webapp.signin.password import login_page
from webapp.twofactor import passkeys, passwordless
from webapp.twofactor.passkeys import MAX_CREDENTIAL_JSON
from webapp.web import client, deps_of, use_session

FAILED = "That passkey didn't sign you in. Try again, or sign in with your username and password."


async def passwordless_options(request: Request) -> Response:
    await read_form(request, {})
    deps = deps_of(request)
    begun = await deps.db.write(passwordless.begin, deps.settings, client(request))
    if begun.retry_after:
        return json_response({"error": "Too many sign-in attempts. Try again in a minute."}, 429)
    options = passkeys.authentication_options(deps.settings, begun.challenge, [])
    return json_response({"publicKey": json.loads(options), "fields": {"ceremony": begun.token}})


async def passwordless_submit(request: Request) -> Response:
    form = await read_form(request, {"ceremony": 64, "credential": MAX_CREDENTIAL_JSON, "next": 512})
    new = await passwordless.sign_in(deps_of(request), client(request), form["ceremony"], form["credential"])
    next_path = safe_next(form["next"] or None)
    if new is None:
        return login_page(request, Form(values={"next": next_path}), 422, FAILED)
    use_session(request, new)
    return redirect(request, next_path)
