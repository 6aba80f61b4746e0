"""Overlapping requests against one app: async browsers (each its own cookie jar) sharing one event loop.

Requests interleave wherever the app awaits (database threads, bcrypt, Verify), as they do under uvicorn.
Where a race needs a precise order, `Gate` holds one request at a chosen await until the other has finished.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx2
from starlette.applications import Starlette

from tests.support import PASSWORD

_CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


class Browser:
    def __init__(self, app: Starlette) -> None:
        self.http = httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app), base_url="https://testserver",
                                       follow_redirects=False)

    async def token(self, page: str) -> str:
        match = _CSRF_RE.search((await self.http.get(page)).text)
        assert match, f"no csrf token on {page}"
        return match.group(1)

    async def post(self, path: str, data: dict[str, str] | None = None, *, page: str = "/profile",
                   token: str | None = None) -> httpx2.Response:
        return await self.http.post(path, data={"csrf_token": token or await self.token(page), **(data or {})})

    async def register(self, username: str, password: str = PASSWORD) -> None:
        r = await self.post("/register", {"username": username, "email": f"{username}@example.com",
                                          "password": password, "password_confirm": password}, page="/register")
        assert r.status_code == 303, r.text

    async def login(self, username: str, password: str = PASSWORD) -> httpx2.Response:
        return await self.post("/login", {"username": username, "password": password}, page="/login")

    async def signed_in(self) -> bool:
        r = await self.http.get("/profile")
        return r.status_code == 200


class Gate:
    """Wrap an async function so the first call pauses after it returns, until `open()`."""

    def __init__(self) -> None:
        self.reached = asyncio.Event()
        self._open = asyncio.Event()
        self._used = False

    def wrap(self, fn: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        async def held(*args: Any, **kwargs: Any) -> Any:
            result = await fn(*args, **kwargs)
            if not self._used:
                self._used = True
                self.reached.set()
                await self._open.wait()
            return result
        return held

    def open(self) -> None:
        self._open.set()


@asynccontextmanager
async def running(app: Starlette) -> AsyncIterator[Callable[[], Browser]]:
    """The app with its lifespan, and a factory of browsers that are closed at the end."""
    browsers: list[Browser] = []

    def browser() -> Browser:
        b = Browser(app)
        browsers.append(b)
        return b

    async with app.router.lifespan_context(app):
        try:
            yield browser
        finally:
            for b in browsers:
                await b.http.aclose()
