"""The pure-ASGI security middleware on tiny apps, as Starlette's own suite tests its middleware (R-C3, R-C5, R-C8)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.testclient import TestClient

from tests.support import sql
from webapp.db import Database
from webapp.deps import Deps
from webapp.security.csrf import FetchMetadataMiddleware
from webapp.security.headers import BASE_HEADERS, SecurityHeadersMiddleware
from webapp.settings import Settings
from webapp.templating import make_templates
from webapp.verify.dev import DevVerifyBackend


class Calls:
    def __init__(self) -> None:
        self.count = 0


def tiny_app(settings: Settings, calls: Calls, *middleware: Middleware) -> Starlette:
    async def hello(request: Request) -> Response:
        calls.count += 1
        await request.body()
        return PlainTextResponse("hello")

    async def broken(request: Request) -> Response:
        raise RuntimeError("boom")

    # The error page's layout links to these; the tiny app only needs them to exist.
    linked = [Route(f"/{name}", hello, name=name) for name in
              ("home", "login_form", "logout_submit", "profile_show", "register_form", "dev_outbox")]
    app = Starlette(routes=[Route("/", hello, methods=["GET", "POST"]), Route("/broken", broken), *linked,
                            Mount("/static", StaticFiles(directory=settings.static_dir), name="static")],
                    middleware=list(middleware))
    app.state.settings = settings
    app.state.templates = make_templates(settings)
    return app


@pytest.fixture
def calls() -> Calls:
    return Calls()


@pytest.fixture
def headers_client(settings: Settings, calls: Calls) -> Iterator[TestClient]:
    app = tiny_app(settings, calls, Middleware(SecurityHeadersMiddleware, max_body_size=100))
    with TestClient(app, base_url="https://testserver", raise_server_exceptions=False) as client:
        yield client


def test_every_response_gets_the_security_headers(headers_client: TestClient) -> None:
    r = headers_client.get("/")
    assert r.text == "hello"
    assert {k: r.headers[k] for k in BASE_HEADERS} == BASE_HEADERS


def test_an_unhandled_error_becomes_a_readable_500_with_headers_and_one_log_record(
        headers_client: TestClient, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR, logger="webapp.errors"):
        r = headers_client.get("/broken")
    assert r.status_code == 500 and "boom" not in r.text and "Traceback" not in r.text
    assert r.headers["Content-Security-Policy"] == BASE_HEADERS["Content-Security-Policy"]
    assert [rec.getMessage() for rec in caplog.records] == ["unhandled error"]


def test_a_declared_body_over_the_limit_is_413_before_the_endpoint_runs(headers_client: TestClient,
                                                                         calls: Calls) -> None:
    r = headers_client.post("/", content=b"x" * 101)
    assert r.status_code == 413 and calls.count == 0
    assert r.headers["X-Frame-Options"] == "DENY"


def test_a_streamed_body_over_the_limit_is_413(headers_client: TestClient) -> None:
    def chunks() -> Iterator[bytes]:
        yield b"x" * 60
        yield b"x" * 60

    r = headers_client.post("/", content=chunks())
    assert r.status_code == 413


@pytest.fixture
def fetch_client(settings: Settings, calls: Calls, tmp_path: Path) -> Iterator[TestClient]:
    app = tiny_app(settings, calls, Middleware(SecurityHeadersMiddleware), Middleware(FetchMetadataMiddleware))
    db = Database(settings.database_url)
    app.state.deps = Deps(settings=settings, db=db, verify=DevVerifyBackend(), dummy_hash="")
    try:
        with TestClient(app, base_url="https://testserver") as client:
            yield client
    finally:
        db.dispose()


@pytest.mark.parametrize("headers", [{"Sec-Fetch-Site": "cross-site"}, {"Sec-Fetch-Site": "same-site"},
                                     {"Origin": "https://evil.example"}, {"Referer": "https://evil.example/x"}])
def test_a_cross_site_post_is_refused_before_the_endpoint_runs(fetch_client: TestClient, calls: Calls,
                                                              settings: Settings, headers: dict[str, str]) -> None:
    r = fetch_client.post("/", headers=headers)
    assert r.status_code == 403 and calls.count == 0
    assert sql(settings, "SELECT count(*) FROM security_events WHERE event = 'malicious_csrf'") == [(1,)]


@pytest.mark.parametrize("headers", [{"Sec-Fetch-Site": "same-origin"}, {"Sec-Fetch-Site": "none"},
                                     {"Origin": "https://testserver"}, {}])
def test_a_same_origin_post_reaches_the_endpoint(fetch_client: TestClient, calls: Calls,
                                                headers: dict[str, str]) -> None:
    assert fetch_client.post("/", headers=headers).text == "hello" and calls.count == 1


def test_a_cross_site_get_is_not_the_middlewares_business(fetch_client: TestClient, calls: Calls) -> None:
    assert fetch_client.get("/", headers={"Sec-Fetch-Site": "cross-site"}).text == "hello"
