"""The signed cookie survives malformed neighbours: one bad cookie from another app must not sign the user out."""

from __future__ import annotations

import pytest
from itsdangerous import URLSafeSerializer
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from webapp.security.cookies import SignedCookieMiddleware, cookie_state
from webapp.settings import Settings

SETTINGS = Settings(secret_key="cookie-test-key-" + "k" * 40)
SIGNED = URLSafeSerializer(SETTINGS.secret_key, salt="webapp.cookie").dumps({"sid": "s-123"})
OURS = f"{SETTINGS.session_cookie}={SIGNED}".encode()
# Each of these makes http.cookies.SimpleCookie give up on the whole header.
MALFORMED = ["x[y]=1", "name=José", 'a="x', 'a=b"c', "flag", "=orphan", "x=1;;", "\x7f=1"]


def sid_app() -> Starlette:
    async def show(request: Request) -> PlainTextResponse:
        return PlainTextResponse(cookie_state(request).get("sid") or "-")

    return Starlette(routes=[Route("/", show)], middleware=[Middleware(SignedCookieMiddleware, settings=SETTINGS)])


def sid_for(*cookie_headers: bytes) -> str:
    with TestClient(sid_app()) as client:
        return client.get("/", headers=[(b"cookie", h) for h in cookie_headers]).text


def test_signed_cookie_loads_alone() -> None:
    assert sid_for(OURS) == "s-123"


@pytest.mark.parametrize("neighbour", MALFORMED)
def test_signed_cookie_loads_after_a_malformed_neighbour(neighbour: str) -> None:
    assert sid_for(neighbour.encode() + b"; " + OURS + b"; later=1") == "s-123"


@pytest.mark.parametrize("neighbour", MALFORMED)
def test_signed_cookie_loads_before_a_malformed_neighbour(neighbour: str) -> None:
    assert sid_for(OURS + b"; " + neighbour.encode()) == "s-123"


@pytest.mark.parametrize("neighbour", MALFORMED)
def test_signed_cookie_loads_from_one_of_several_cookie_headers(neighbour: str) -> None:
    assert sid_for(neighbour.encode(), OURS, b"other=2") == "s-123"
    assert sid_for(OURS, neighbour.encode()) == "s-123"


def test_non_utf8_bytes_beside_the_cookie_do_not_break_it() -> None:
    assert sid_for(b"bin=\xff\xfe\x80; " + OURS) == "s-123"


@pytest.mark.parametrize("header", [b"x[y]=1", b'session="', b"session=not-signed", b";;;", b""])
def test_no_valid_signed_cookie_means_a_blank_state(header: bytes) -> None:
    assert sid_for(header) == "-"


def test_tampered_cookie_beside_a_malformed_neighbour_is_still_refused() -> None:
    assert sid_for(b"x[y]=1; " + OURS[:-2] + b"zz") == "-"
