"""The signed cookie: opaque ids only (`sid`, `challenge_id`, `csrf`), never personal data (R-S5, D-1)."""

from __future__ import annotations

import secrets
from typing import Any

from itsdangerous import BadSignature, URLSafeSerializer
from starlette.datastructures import MutableHeaders
from starlette.requests import HTTPConnection, cookie_parser
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from webapp.settings import Settings

ALLOWED_KEYS = ("sid", "challenge_id", "csrf")
SCOPE_KEY = "webapp.cookie"


class CookieState:
    """What the browser holds; changes are written back as one Set-Cookie when the response starts."""

    def __init__(self, data: dict[str, Any], max_age: int) -> None:
        self._data = {k: v for k, v in data.items() if k in ALLOWED_KEYS and isinstance(v, str) and v}
        self.max_age = max_age
        self.dirty = False

    def get(self, key: str) -> str | None:
        return self._data.get(key)

    def set(self, key: str, value: str | None) -> None:
        assert key in ALLOWED_KEYS, key
        if value is None:
            if self._data.pop(key, None) is not None:
                self.dirty = True
        elif self._data.get(key) != value:
            self._data[key] = value
            self.dirty = True

    def rotate_csrf(self) -> str:
        """A new token whenever `sid` or `challenge_id` changes (R-C2)."""
        token = secrets.token_urlsafe(32)
        self.set("csrf", token)
        return token

    def csrf(self) -> str:
        return self.get("csrf") or self.rotate_csrf()

    def clear(self) -> None:
        if self._data:
            self._data.clear()
            self.dirty = True

    def payload(self) -> dict[str, str]:
        return dict(self._data)


def cookie_state(conn: HTTPConnection) -> CookieState:
    """The request's cookie state; a blank one for responses made before the cookie middleware ran."""
    state = conn.scope.get(SCOPE_KEY)
    if state is None:
        state = conn.scope[SCOPE_KEY] = CookieState({}, 0)
    assert isinstance(state, CookieState)
    return state


class SignedCookieMiddleware:
    """Pure-ASGI: load the cookie into the scope, write it back only when it changed."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings
        self.serializer = URLSafeSerializer(settings.secret_key, salt="webapp.cookie")
        self.name = settings.session_cookie
        self.secure = settings.production

    def load(self, raw: str | None) -> dict[str, Any]:
        if not raw:
            return {}
        try:
            data = self.serializer.loads(raw)
        except (BadSignature, UnicodeDecodeError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def header(self, state: CookieState) -> str:
        payload = state.payload()
        flags = "; Path=/; HttpOnly; SameSite=Lax" + ("; Secure" if self.secure else "")
        if not payload:
            return f"{self.name}=; Max-Age=0{flags}"
        return f"{self.name}={self.serializer.dumps(payload)}; Max-Age={state.max_age}{flags}"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        raw = None
        for key, value in scope["headers"]:
            if key == b"cookie":
                # Starlette's lenient parser, as request.cookies uses: SimpleCookie drops every cookie after one
                # malformed neighbour (`x[y]=1`, `name=José`, `a="x`), which would sign the user out.
                raw = cookie_parser(value.decode("latin-1")).get(self.name, raw)
        state = CookieState(self.load(raw), self.settings.session_absolute_s)
        scope[SCOPE_KEY] = state

        async def send_with_cookie(message: Message) -> None:
            if message["type"] == "http.response.start" and state.dirty:
                MutableHeaders(scope=message).append("set-cookie", self.header(state))
            await send(message)

        await self.app(scope, receive, send_with_cookie)
