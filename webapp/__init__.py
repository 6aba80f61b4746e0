"""Starlette app with accounts and optional SMS two-factor authentication over Twilio Verify."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response

from webapp.accounts.passwords import hash_password
from webapp.db import Database
from webapp.errors import http_exception
from webapp.htmx import redirect
from webapp.logging_setup import configure_logging
from webapp.routes import build_routes
from webapp.security.audit import audit
from webapp.security.cookies import SignedCookieMiddleware
from webapp.security.csrf import CsrfRejected, FetchMetadataMiddleware
from webapp.security.headers import SecurityHeadersMiddleware
from webapp.security.sessions import LoginRequired
from webapp.settings import Settings, load_settings
from webapp.templating import make_templates

log = logging.getLogger("webapp")
MAX_BODY_BYTES = 64_000


async def _login_required(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, LoginRequired)
    target = "/login"
    if request.method == "GET" and request.url.path not in ("/", "/login"):
        from urllib.parse import quote

        target = "/login?next=" + quote(request.url.path, safe="/")
    response = redirect(request, target, notice="session-expired" if exc.expired else None)
    return response


async def _csrf_rejected(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, CsrfRejected)
    await audit(request, "malicious_csrf", "failure", reason=exc.reason)
    return await http_exception(request, exc)


def create_app(settings: Settings | None = None, verify: Any = None) -> Starlette:
    """Build the ASGI app.

    Args:
        settings: configuration; read from the environment when omitted.
        verify: a Verify gateway to use instead of the one the settings select (tests inject fakes).
    """
    settings = settings or load_settings()
    configure_logging()

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        db = Database(settings.database_url)
        app.state.db = db
        # Unknown usernames get a bcrypt check against this, so they cost the same as real ones (R-L4).
        app.state.dummy_hash = await hash_password(settings, secrets.token_urlsafe(24))
        async with contextlib.AsyncExitStack() as stack:
            if verify is not None:
                app.state.verify = verify
            else:
                from webapp.verify import open_gateway

                app.state.verify = await stack.enter_async_context(open_gateway(settings))
            app.state.verify_name = getattr(app.state.verify, "name", "")
            log.info("started", extra={"audit": {"env": settings.env, "verify_backend": app.state.verify_name}})
            try:
                yield
            finally:
                await db.dispose()
                await asyncio.sleep(0)

    app = Starlette(
        debug=False,
        routes=build_routes(settings),
        middleware=[
            Middleware(SecurityHeadersMiddleware, max_body_size=MAX_BODY_BYTES),
            Middleware(SignedCookieMiddleware, settings=settings),
            Middleware(FetchMetadataMiddleware),
        ],
        exception_handlers={
            HTTPException: http_exception,
            LoginRequired: _login_required,
            CsrfRejected: _csrf_rejected,
        },
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.templates = make_templates(settings)
    return app
