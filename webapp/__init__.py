"""Starlette app with accounts and optional SMS two-factor authentication over Twilio Verify."""

from __future__ import annotations

import contextlib
import logging
import secrets
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response

from webapp.db import Database
from webapp.deps import Deps
from webapp.errors import http_exception
from webapp.htmx import redirect
from webapp.identity.passwords import hash_password
from webapp.logging_setup import configure_logging
from webapp.mail.sender import MailSender
from webapp.mail.transport import Transport, open_transport
from webapp.monitoring import MetricsMiddleware
from webapp.routes import build_routes
from webapp.security.cookies import SignedCookieMiddleware
from webapp.security.csrf import CsrfRejected, FetchMetadataMiddleware, audit_refusal
from webapp.security.headers import SecurityHeadersMiddleware
from webapp.security.proxy import TrustedProxyMiddleware
from webapp.settings import Settings, load_settings
from webapp.templating import make_templates
from webapp.verify import VerifyGateway, open_gateway
from webapp.web import LoginRequired

log = logging.getLogger("webapp")
MAX_BODY_BYTES = 64_000


async def _login_required(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, LoginRequired)
    target = "/login"
    if request.method == "GET" and request.url.path not in ("/", "/login"):
        target = "/login?next=" + quote(request.url.path, safe="/")
    return redirect(request, target, notice="session-expired" if exc.expired else None)


async def _csrf_rejected(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, CsrfRejected)
    await audit_refusal(request, exc.reason)
    return await http_exception(request, exc)


def create_app(settings: Settings | None = None, verify: VerifyGateway | None = None,
               mail: Transport | None = None) -> Starlette:
    """Build the ASGI app.

    Args:
        settings: configuration; read from the environment when omitted.
        verify: a Verify gateway to use instead of the one the settings select (tests inject fakes).
        mail: where mail goes instead of the one the settings select (SMTP with SMTP_HOST, else the dev outbox).
    """
    settings = settings or load_settings()
    configure_logging(settings.log_level)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        db = Database(settings.database_url)
        dummy_hash = await hash_password(settings, secrets.token_urlsafe(24))
        async with contextlib.AsyncExitStack() as stack:
            gateway = verify if verify is not None else await stack.enter_async_context(open_gateway(settings))
            app.state.deps = Deps(settings=settings, db=db, verify=gateway, dummy_hash=dummy_hash)
            app.state.verify = gateway
            app.state.verify_name = getattr(gateway, "name", "")
            transport = mail if mail is not None else open_transport(settings)
            app.state.mail = transport
            # The outbox's sender lives as long as the app: requests only write rows, it delivers them.
            sender = MailSender(settings, db, transport)
            app.state.mail_sender = sender
            sender.start()
            log.info("started", extra={"audit": {"env": settings.env, "verify_backend": app.state.verify_name,
                                                 "mail_transport": transport.name}})
            try:
                yield
            finally:
                await sender.stop()
                db.dispose()

    middleware: list[Any] = [
        # First, so everything below (per-IP limits, audit rows, the Origin check) sees the real client.
        Middleware(TrustedProxyMiddleware, trusted=settings.forwarded_allow_ips),
        # Outside the headers middleware, so the error pages it renders itself (413, 500) are counted too.
        Middleware(MetricsMiddleware),
        Middleware(SecurityHeadersMiddleware, max_body_size=MAX_BODY_BYTES),
        Middleware(SignedCookieMiddleware, settings=settings),
        Middleware(FetchMetadataMiddleware),
    ]
    app = Starlette(
        debug=False,
        routes=build_routes(settings),
        middleware=middleware,
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
