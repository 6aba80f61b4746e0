"""CSRF in three layers (R-C1…R-C3): fetch metadata in middleware, then the token, checked by each endpoint."""

from __future__ import annotations

import hmac
import logging

from sqlalchemy.orm import Session
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from webapp.errors import CSRF_MESSAGE, error_response
from webapp.security import audit, throttle
from webapp.security.clients import Client, client_of
from webapp.security.cookies import cookie_state

log = logging.getLogger("webapp.security")

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
CSRF_AUDIT_WINDOW_S = 600


class CsrfRejected(HTTPException):
    def __init__(self, reason: str) -> None:
        super().__init__(403, CSRF_MESSAGE)
        self.reason = reason


def origin_of(request: Request) -> str:
    return f"{request.url.scheme}://{request.headers.get('host', '')}"


def cross_site_reason(request: Request) -> str | None:
    """Why an unsafe request looks cross-site, or None; browsers send Sec-Fetch-Site, older ones Origin/Referer."""
    site = request.headers.get("sec-fetch-site")
    if site is not None:
        return None if site in ("same-origin", "none") else f"sec-fetch-site={site}"
    origin = request.headers.get("origin")
    if origin is not None:
        return None if origin == origin_of(request) else "origin mismatch"
    referer = request.headers.get("referer")
    if referer is not None and not (referer == origin_of(request) or referer.startswith(origin_of(request) + "/")):
        return "referer mismatch"
    return None


class FetchMetadataMiddleware:
    """Refuse cross-site unsafe requests before any endpoint runs, even with a valid token (R-C3)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] not in SAFE_METHODS:
            request = Request(scope, receive)
            reason = cross_site_reason(request)
            if reason:
                await audit_refusal(request, reason)
                await error_response(request, 403, CSRF_MESSAGE)(scope, receive, send)
                return
        await self.app(scope, receive, send)


def _record_refusal(s: Session, secret: str, client: Client, reason: str) -> None:
    # One row per address per window: a flood of forged posts must not become a flood of writes and rows.
    key = throttle.throttle_key(secret, "csrf-audit", client.ip)
    if throttle.hit(s, key, 1, CSRF_AUDIT_WINDOW_S).allowed:
        audit.record(s, client, "malicious_csrf", "failure", reason=reason, window_s=CSRF_AUDIT_WINDOW_S)


async def audit_refusal(request: Request, reason: str) -> None:
    deps = request.app.state.deps
    await deps.db.write(_record_refusal, deps.settings.secret_key, client_of(request), reason)


def check_csrf(request: Request, form_token: str | None) -> None:
    """The form field (or htmx's header for formless requests) must equal the cookie's token."""
    expected = cookie_state(request).get("csrf")
    given = form_token or request.headers.get(CSRF_HEADER) or ""
    if not expected or not hmac.compare_digest(expected.encode(), given.encode()):
        raise CsrfRejected("token missing" if not given else "token mismatch")
