"""Trusted proxies: the client IP and scheme come from X-Forwarded-* only when the direct peer is trusted (R-L2)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, cast

from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from webapp.settings import parse_forwarded_allow_ips


class TrustedProxyMiddleware:
    """Pure-ASGI: rewrite scope["client"] and scope["scheme"] for trusted peers only; by default nobody is trusted.

    uvicorn's ProxyHeadersMiddleware does the rewriting: the client becomes the rightmost X-Forwarded-For hop that
    is not itself trusted, so whatever a client puts in front of its proxy's entry is never used. uvicorn's own copy
    trusts 127.0.0.1 by default, which lets any local process reset per-IP limits: run uvicorn with
    --no-proxy-headers and let the app decide from FORWARDED_ALLOW_IPS.
    """

    def __init__(self, app: ASGIApp, trusted: Iterable[str] | str = ()) -> None:
        # Parsed again so a hand-built middleware gets the same ConfigError as the environment would.
        self.trusted = parse_forwarded_allow_ips(trusted if isinstance(trusted, str) else ",".join(trusted))
        self.app = app
        # Nothing trusted: the headers are ignored without any per-request work.
        self.inner: ASGIApp = app
        if self.trusted:
            # uvicorn types scopes as TypedDicts, Starlette as a MutableMapping; the ASGI contract is the same.
            inner = ProxyHeadersMiddleware(cast(Any, app), trusted_hosts=list(self.trusted))
            self.inner = cast(ASGIApp, inner)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.inner(scope, receive, send)
