"""The second sign-in step: a challenge row per password success; the cookie holds only its id (R-O4, R-O7)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import Response

from webapp.models import User


async def begin(request: Request, s: AsyncSession, user: User, *, remember: bool, next_path: str) -> Response:
    raise NotImplementedError("the code step arrives with the two-factor flows")


async def discard(request: Request, s: AsyncSession) -> None:
    """Forget the browser's pending challenge, if any."""
