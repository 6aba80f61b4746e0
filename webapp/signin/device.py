"""The device cookie of "Don't ask again on this browser": a random token in a cookie of its own.

`__Host-device` in production (Secure, so only over https), `device` in development; HttpOnly and SameSite=Lax
everywhere. It holds nothing but the token; the row (webapp.twofactor.browsers) keeps its hash.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from webapp.settings import Settings
from webapp.twofactor.browsers import REMEMBER_DAYS


def cookie_name(settings: Settings) -> str:
    return "__Host-device" if settings.production else "device"


def token_of(request: Request) -> str | None:
    value = request.cookies.get(cookie_name(request.app.state.settings))
    return value if value and len(value) <= 128 else None


def keep(response: Response, settings: Settings, token: str) -> None:
    response.set_cookie(cookie_name(settings), token, max_age=REMEMBER_DAYS * 86400, path="/",
                        secure=settings.production, httponly=True, samesite="lax")


def drop(response: Response, settings: Settings) -> None:
    response.delete_cookie(cookie_name(settings), path="/", secure=settings.production, httponly=True,
                           samesite="lax")
