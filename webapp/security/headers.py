"""Pure-ASGI outer layer: request id, security headers on every response, body limit, and the 500 page."""

from __future__ import annotations

import logging
import secrets

from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from webapp.errors import error_response
from webapp.logging_setup import request_id

log = logging.getLogger("webapp.errors")

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)
BASE_HEADERS = {
    "Content-Security-Policy": CSP,
    "Strict-Transport-Security": "max-age=31536000; includeSubDomains",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "strict-origin-when-cross-origin",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), interest-cohort=()",
}


class SecurityHeadersMiddleware:
    """Outermost user middleware, so even error pages it renders itself carry the headers (R-C5)."""

    def __init__(self, app: ASGIApp, max_body_size: int = 64_000) -> None:
        self.app = app
        self.max_body_size = max_body_size

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = secrets.token_hex(8)
        scope.setdefault("state", {})["request_id"] = rid
        token = request_id.set(rid)  # every log line written while handling this request carries it
        try:
            await self._handle(scope, receive, send)
        finally:
            request_id.reset(token)

    async def _handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = False

        async def send_with_headers(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                headers = MutableHeaders(scope=message)
                for key, value in BASE_HEADERS.items():
                    headers.setdefault(key, value)
                if headers.get("content-type", "").startswith("text/html"):
                    headers.setdefault("Cache-Control", "no-store")
            await send(message)

        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_size:
                    raise HTTPException(413)
            return message

        try:
            length = int(dict(scope["headers"]).get(b"content-length", b"0") or 0)
        except ValueError:
            length = 0
        request = Request(scope, receive)
        try:
            if length > self.max_body_size:
                await error_response(request, 413)(scope, receive, send_with_headers)
                return
            await self.app(scope, limited_receive, send_with_headers)
        except HTTPException as exc:
            if started:
                raise
            await error_response(request, exc.status_code)(scope, receive, send_with_headers)
        except Exception:
            log.exception("unhandled error", extra={"event": "server_error", "request_id": request.state.request_id})
            if started:
                raise
            await error_response(request, 500)(scope, receive, send_with_headers)
