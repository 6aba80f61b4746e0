"""Sign out: a POST (never a link, K17) that revokes the session row and any pending step."""

from __future__ import annotations

from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import Response

from webapp.codestep import cancel_verifications
from webapp.forms import read_form
from webapp.htmx import redirect
from webapp.security import audit, sessions
from webapp.security.clients import Client
from webapp.security.cookies import cookie_state
from webapp.signin import device
from webapp.twofactor import challenges
from webapp.web import client, deps_of, load_auth


def _sign_out(s: Session, client: Client, sid: str | None, token: str | None, user_id: int | None) -> list[str]:
    if sid:
        sessions.revoke(s, sessions.hash_token(sid))
    stale = challenges.discard_token(s, token)
    if user_id is not None:
        audit.record(s, client, "session_logout", "success", user_id=user_id)
    return stale


async def logout_submit(request: Request) -> Response:
    await read_form(request, {})
    state = cookie_state(request)
    auth = await load_auth(request)
    stale = await deps_of(request).db.write(_sign_out, client(request), state.get("sid"), state.get("challenge_id"),
                                            auth.user.id if auth else None)
    await cancel_verifications(request, stale)
    state.clear()
    response = redirect(request, "/login", notice="signed-out")
    # A remembered browser keeps its device cookie across a sign-out (that is what remembering is for); the session
    # cookie is expired above either way. Without one, every cookie of the site goes.
    remembered = device.token_of(request) is not None
    response.headers["Clear-Site-Data"] = '"cache", "storage"' if remembered else '"cache", "cookies", "storage"'
    return response
