"""Redirect targets become ASCII headers: a decoded `next` such as "/€" must not turn HX-Redirect into a 500."""

from __future__ import annotations

from urllib.parse import quote, unquote

import pytest
from hypothesis import given
from hypothesis import strategies as st
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from starlette.testclient import TestClient

from tests.support import BOOSTED, NO_JS, PARTIAL, PASSWORD, RESTORE, csrf, register, signed_in_client
from webapp.htmx import ascii_url, redirect
from webapp.security.redirects import safe_next

HTMX_KINDS = {"partial": PARTIAL, "boosted": BOOSTED, "restore": RESTORE}
# (target as the app holds it, decoded; the header value; the path the browser then requests, decoded again)
TARGETS = [
    ("/€", "/%E2%82%AC", "/€"),
    ("/%E2%82%AC", "/%E2%82%AC", "/€"),
    ("/café/日本", "/caf%C3%A9/%E6%97%A5%E6%9C%AC", "/café/日本"),
    ("/a b", "/a%20b", "/a b"),
    ("/100%", "/100%25", "/100%"),
    ("/%zz", "/%25zz", "/%zz"),
    ("/settings?tab=ü&x=1", "/settings?tab=%C3%BC&x=1", "/settings"),
    ("/settings?tab=1&x=%2F%2Fevil.example", "/settings?tab=1&x=%2F%2Fevil.example", "/settings"),
    ('/q"<x>', "/q%22%3Cx%3E", '/q"<x>'),
]


def redirect_app() -> Starlette:
    async def go(request: Request) -> Response:
        return redirect(request, request.query_params["to"], notice=request.query_params.get("notice"))

    async def land(request: Request) -> PlainTextResponse:
        return PlainTextResponse(request.url.path)

    return Starlette(routes=[Route("/go", go), Route("/{rest:path}", land)])


@pytest.fixture
def tiny() -> TestClient:
    return TestClient(redirect_app(), base_url="https://testserver", follow_redirects=False)


@pytest.mark.parametrize(("target", "header", "path"), TARGETS)
def test_redirect_without_htmx_is_a_303_to_an_ascii_location(tiny: TestClient, target: str, header: str,
                                                             path: str) -> None:
    r = tiny.get("/go", params={"to": target}, headers=NO_JS)
    assert r.status_code == 303
    assert r.headers["location"] == header
    assert r.headers["location"].isascii()
    assert tiny.get(r.headers["location"]).text == path


@pytest.mark.parametrize("kind", list(HTMX_KINDS))
@pytest.mark.parametrize(("target", "header", "path"), TARGETS)
def test_redirect_over_htmx_sends_an_ascii_hx_redirect(tiny: TestClient, kind: str, target: str, header: str,
                                                       path: str) -> None:
    r = tiny.get("/go", params={"to": target}, headers=HTMX_KINDS[kind])
    assert r.status_code == 200
    assert r.headers["hx-redirect"] == header
    assert "location" not in r.headers
    assert tiny.get(r.headers["hx-redirect"]).text == path


def test_redirect_encodes_the_notice_with_the_target(tiny: TestClient) -> None:
    r = tiny.get("/go", params={"to": "/€", "notice": "signed-out"}, headers=PARTIAL)
    assert r.headers["hx-redirect"] == "/%E2%82%AC?notice=signed-out"


@pytest.mark.parametrize("target", ["//evil.example", "/\\evil.example", "https://evil.example/€", "€"])
def test_redirect_still_refuses_other_origins(tiny: TestClient, target: str) -> None:
    assert tiny.get("/go", params={"to": target}).headers["location"] == "/profile"
    assert tiny.get("/go", params={"to": target}, headers=PARTIAL).headers["hx-redirect"] == "/profile"


def test_encoding_cannot_turn_a_refused_or_kept_target_into_another_origin() -> None:
    """Browsers strip tabs and newlines ("/\\t/x" is "//x"): safe_next refuses them, and escaped they stay inert."""
    assert safe_next("/\t/evil.example") == "/profile"
    assert ascii_url("/\t/evil.example") == "/%09/evil.example"
    assert ascii_url("/\uff0f\uff0fevil.example").startswith("/%EF%BC%8F")


# --- ascii_url properties -------------------------------------------------------------------------------------------


@given(st.text())
def test_ascii_url_is_ascii_and_idempotent(text: str) -> None:
    once = ascii_url(text)
    assert once.isascii()
    assert ascii_url(once) == once
    # Starlette's RedirectResponse quotes again with the same safe set: nothing changes.
    assert quote(once, safe=":/%#?=@[]!$&'()*+,;") == once


@given(st.text().filter(lambda t: "%" not in t))
def test_ascii_url_round_trips_text_without_percent_signs(text: str) -> None:
    assert unquote(ascii_url(text)) == text


def test_ascii_url_survives_a_lone_surrogate() -> None:
    assert ascii_url("/\ud800").isascii()


# --- through the app: next=/%E2%82%AC ------------------------------------------------------------------------------


@pytest.mark.parametrize("headers", [NO_JS, PARTIAL, BOOSTED], ids=["no-js", "partial", "boosted"])
def test_login_with_a_non_latin1_next_redirects_instead_of_500(client: TestClient, headers: dict[str, str]) -> None:
    assert register(client).status_code == 303
    token = csrf(client)
    r = client.post("/login?next=/%E2%82%AC", headers=headers,
                    data={"csrf_token": token, "username": "alice", "password": PASSWORD})
    assert r.status_code in (200, 303)
    assert (r.headers.get("hx-redirect") or r.headers["location"]) == "/%E2%82%AC"


@pytest.mark.parametrize("headers", [NO_JS, PARTIAL, RESTORE], ids=["no-js", "partial", "restore"])
def test_signed_in_visit_to_login_with_a_non_latin1_next(client: TestClient, headers: dict[str, str]) -> None:
    signed_in_client(client)
    r = client.get("/login?next=/%E2%82%AC?q=%C3%BC", headers=headers)
    assert (r.headers.get("hx-redirect") or r.headers["location"]) == "/%E2%82%AC?q=%C3%BC"
