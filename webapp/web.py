"""What endpoints share: the domain's dependencies, who is asking, who is signed in, and the cookie."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

from webapp.deps import Deps
from webapp.security import audit, sessions
from webapp.security.clients import Client, client_of
from webapp.security.cookies import cookie_state
from webapp.security.sessions import Auth, NewSession


class LoginRequired(Exception):
    """Raised by `require_auth`; answered with a redirect to the sign-in page."""

    def __init__(self, expired: bool = False) -> None:
        super().__init__("login required")
        self.expired = expired


def deps_of(request: Request) -> Deps:
    deps: Deps = request.app.state.deps
    return deps


def client(request: Request) -> Client:
    return client_of(request)


async def load_auth(request: Request) -> Auth | None:
    """The signed-in user for this request, or None; one read, and a last-seen touch at most once a minute."""
    if hasattr(request.state, "auth"):
        cached: Auth | None = request.state.auth
        return cached
    request.state.auth = None
    sid = cookie_state(request).get("sid")
    if not sid:
        return None
    deps = deps_of(request)
    auth, expired = await deps.db.read(sessions.load, deps.settings, sid)
    request.state.session_expired = expired
    if auth is not None and sessions.needs_touch(auth):
        await deps.db.write(sessions.touch, auth.session.id_hash)
    request.state.auth = auth
    return auth


def remember_auth(request: Request, auth: Auth | None, expired: bool = False) -> None:
    """For endpoints that read the session together with their own data in one transaction."""
    request.state.auth = auth
    request.state.session_expired = expired


async def require_auth(request: Request) -> Auth:
    auth = await load_auth(request)
    if auth is None:
        raise LoginRequired(expired=bool(getattr(request.state, "session_expired", False)))
    return auth


def use_session(request: Request, new: NewSession) -> None:
    """The new session's id in the cookie, the pending challenge gone, a new CSRF token (R-S3, R-C2)."""
    settings = deps_of(request).settings
    state = cookie_state(request)
    state.set("sid", new.sid)
    state.set("challenge_id", None)
    state.rotate_csrf()
    state.max_age = settings.session_remember_s if new.remember else settings.session_absolute_s


def use_challenge(request: Request, token: str | None) -> None:
    state = cookie_state(request)
    state.set("challenge_id", token)
    state.rotate_csrf()


async def record(request: Request, event: str, outcome: str, **fields: Any) -> None:
    """An audit event on its own, for endpoints with nothing else to write."""
    await deps_of(request).db.write(audit.record, client(request), event, outcome, **fields)
