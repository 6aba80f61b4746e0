"""CSRF in three layers, security headers on every response, templates and the pinned htmx (R-C1…R-C8)."""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import time_machine
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.testclient import TestClient

from tests.support import PARTIAL, PASSWORD, count, csrf, login, register, signed_in_client, sql
from webapp import create_app
from webapp.settings import Settings
from webapp.verify.dev import DevVerifyBackend

ROOT = Path(__file__).resolve().parents[2]
CSRF_MESSAGE = "This form has expired or came from another site. Reload the page and try again."
HTMX_SHA384 = "Qp9rdC8H7EqOoX+nR0P3RPG2Noji+qdwJlGpfzwQJsfOpp3sGwIdSP9xO3+UlEhn"


def events(settings: Settings, name: str) -> list[tuple[str, dict[str, Any]]]:
    rows = sql(settings, "SELECT outcome, details FROM security_events WHERE event = :e ORDER BY id", e=name)
    return [(outcome, json.loads(details) if isinstance(details, str) else details) for outcome, details in rows]


def assert_security_headers(r: Any) -> None:
    csp = r.headers["content-security-policy"]
    directives = {d.strip().split(" ", 1)[0]: d.strip() for d in csp.split(";")}
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert directives["default-src"] == "default-src 'self'"
    assert directives["script-src"] == "script-src 'self'"
    assert directives["object-src"] == "object-src 'none'"
    assert directives["base-uri"] == "base-uri 'none'"
    assert directives["frame-ancestors"] == "frame-ancestors 'none'"
    assert directives["form-action"] == "form-action 'self'"
    assert r.headers["strict-transport-security"] == "max-age=31536000; includeSubDomains"
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["referrer-policy"] == "strict-origin-when-cross-origin"


# Each POST route with a valid body (CSRF token added by the test) and how to see that it did nothing.
POST_ROUTES: dict[str, dict[str, str]] = {
    "/register": {"username": "mallory", "email": "m@example.com", "password": PASSWORD, "password_confirm": PASSWORD},
    "/login": {"username": "alice", "password": PASSWORD},
    "/logout": {},
    "/sessions/end-all": {},
}


def state(settings: Settings) -> tuple[int, int, int, Any]:
    return (count(settings, "users"), count(settings, "auth_sessions"),
            int(sql(settings, "SELECT count(*) FROM auth_sessions WHERE revoked_at IS NULL")[0][0]),
            sql(settings, "SELECT session_epoch FROM users ORDER BY id"))


@pytest.fixture
def victim(client: TestClient) -> TestClient:
    """Alice, signed in, so logout and end-all have something to destroy."""
    return signed_in_client(client)


# --- R-C1 token -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", list(POST_ROUTES))
def test_r_c1_post_without_token_is_403_readable_page_and_changes_nothing(victim: TestClient, settings: Settings,
                                                                          path: str) -> None:
    before = state(settings)
    r = victim.post(path, data=POST_ROUTES[path])
    assert r.status_code == 403
    assert "<html" in r.text
    assert "Not allowed" in r.text
    assert CSRF_MESSAGE in r.text
    assert state(settings) == before
    assert events(settings, "malicious_csrf")[-1][1]["reason"] == "token missing"


@pytest.mark.parametrize("path", list(POST_ROUTES))
def test_r_c1_another_sessions_token_is_403(victim: TestClient, other_client: TestClient, settings: Settings,
                                            path: str) -> None:
    foreign = csrf(other_client, "/login")
    before = state(settings)
    r = victim.post(path, data={"csrf_token": foreign, **POST_ROUTES[path]})
    assert r.status_code == 403
    assert CSRF_MESSAGE in r.text
    assert state(settings) == before
    assert events(settings, "malicious_csrf")[-1][1]["reason"] == "token mismatch"


@pytest.mark.parametrize("path", list(POST_ROUTES))
def test_r_c1_token_in_another_field_or_empty_is_403(victim: TestClient, settings: Settings, path: str) -> None:
    token = csrf(victim, "/profile")
    for data in ({"csrf": token}, {"csrf_token": ""}, {"csrf_token": token[:-1]}, {"csrf_token": token + "A"}):
        assert victim.post(path, data={**data, **POST_ROUTES[path]}).status_code == 403


def test_r_c1_partial_csrf_refusal_is_a_fragment(victim: TestClient) -> None:
    r = victim.post("/logout", headers=PARTIAL)
    assert r.status_code == 403
    assert "<html" not in r.text
    assert CSRF_MESSAGE in r.text
    assert r.headers["vary"] == "HX-Request, HX-Request-Type"


def test_r_c1_header_only_token_on_htmx_request_is_accepted(client: TestClient, settings: Settings) -> None:
    register(client)
    token = csrf(client, "/login")
    r = client.post("/login", headers={**PARTIAL, "X-CSRF-Token": token},
                    data={"username": "alice", "password": PASSWORD})
    assert r.status_code == 200
    assert r.headers["hx-redirect"] == "/profile"
    token = csrf(client, "/profile")
    r = client.post("/logout", headers={**PARTIAL, "X-CSRF-Token": token})
    assert r.headers["hx-redirect"] == "/login?notice=signed-out"
    assert sql(settings, "SELECT count(*) FROM auth_sessions WHERE revoked_at IS NULL") == [(0,)]


def post_forms(html: str) -> list[str]:
    return [f for f in re.findall(r"<form\b.*?</form>", html, flags=re.S) if 'method="post"' in f]


def test_r_c1_body_token_is_the_hidden_field_in_every_post_form(victim: TestClient) -> None:
    token = csrf(victim, "/profile")
    forms = post_forms(victim.get("/profile").text)
    assert len(forms) >= 2  # sign out, sign out everywhere
    assert all(f'name="csrf_token" value="{token}"' in form for form in forms)
    victim.post("/logout", data={"csrf_token": token})
    for path in ("/login", "/register"):
        forms = post_forms(victim.get(path).text)
        assert forms
        assert all('name="csrf_token"' in form for form in forms), path


def test_r_c1_body_carries_the_header_token_for_formless_requests(victim: TestClient) -> None:
    html = victim.get("/profile").text
    token = csrf(victim, "/profile")
    assert f"hx-headers:inherited='{{\"X-CSRF-Token\": \"{token}\"}}'" in html


# --- R-C2 rotation --------------------------------------------------------------------------------------------------


def test_r_c2_token_changes_at_login_and_the_old_one_is_refused(client: TestClient) -> None:
    register(client)
    anonymous_token = csrf(client, "/login")
    login(client)
    signed_in_token = csrf(client, "/profile")
    assert anonymous_token != signed_in_token
    assert client.post("/logout", data={"csrf_token": anonymous_token}).status_code == 403
    assert client.post("/logout", data={"csrf_token": signed_in_token}).status_code == 303


# --- R-C3 fetch metadata --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", list(POST_ROUTES))
@pytest.mark.parametrize("headers", [
    {"Origin": "https://evil.example"},
    {"Origin": "null"},
    {"Origin": "http://testserver"},
    {"Sec-Fetch-Site": "cross-site"},
    {"Sec-Fetch-Site": "same-site"},
    {"Sec-Fetch-Site": "cross-site", "Origin": "https://testserver"},
    {"Referer": "https://evil.example/page"},
    {"Referer": "https://testserver.evil.example/"},
], ids=["origin-evil", "origin-null", "origin-http", "sfs-cross-site", "sfs-same-site", "sfs-wins-over-origin",
        "referer-evil", "referer-prefix"])
def test_r_c3_cross_site_request_is_403_even_with_a_valid_token(victim: TestClient, settings: Settings, path: str,
                                                                 headers: dict[str, str]) -> None:
    token = csrf(victim, "/profile")
    before = state(settings)
    r = victim.post(path, headers=headers, data={"csrf_token": token, **POST_ROUTES[path]})
    assert r.status_code == 403
    assert CSRF_MESSAGE in r.text
    assert_security_headers(r)
    assert state(settings) == before
    assert victim.get("/profile").status_code == 200


@pytest.mark.parametrize("headers", [
    {"Sec-Fetch-Site": "same-origin"},
    {"Sec-Fetch-Site": "none"},
    {"Origin": "https://testserver"},
    {"Referer": "https://testserver/profile"},
    {},
], ids=["sfs-same-origin", "sfs-none", "origin-same", "referer-same", "no-metadata"])
def test_r_c3_same_origin_request_with_token_is_accepted(victim: TestClient, settings: Settings,
                                                         headers: dict[str, str]) -> None:
    r = victim.post("/logout", headers=headers, data={"csrf_token": csrf(victim, "/profile")})
    assert r.status_code == 303
    assert r.headers["location"] == "/login?notice=signed-out"
    assert sql(settings, "SELECT count(*) FROM auth_sessions WHERE revoked_at IS NULL") == [(0,)]


def test_r_c3_refusal_is_audited_as_malicious_csrf(client: TestClient, settings: Settings) -> None:
    token = csrf(client, "/login")
    r = client.post("/login", headers={"Origin": "https://evil.example"}, data={"csrf_token": token})
    assert r.status_code == 403
    rows = events(settings, "malicious_csrf")
    assert [(outcome, details["reason"]) for outcome, details in rows] == [("failure", "origin mismatch")]


def test_refused_anonymous_posts_from_one_address_make_one_audit_row_per_window(
        client: TestClient, settings: Settings) -> None:
    """A flood of forged posts is refused every time but audited once per address per window (R-A1)."""
    token = csrf(client, "/login")
    for _ in range(20):
        assert client.post("/login", headers={"Sec-Fetch-Site": "cross-site"}, data={"csrf_token": token}
                           ).status_code == 403
        assert client.post("/login", data={"csrf_token": "forged"}).status_code == 403
    assert [details["reason"] for _, details in events(settings, "malicious_csrf")] == ["sec-fetch-site=cross-site"]
    with time_machine.travel(datetime.now(UTC) + timedelta(minutes=11)):
        assert client.post("/login", data={"csrf_token": "forged"}).status_code == 403
    assert len(events(settings, "malicious_csrf")) == 2


# --- R-C4 no state change on safe methods -------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/logout", "/sessions/end-all"])
@pytest.mark.parametrize("method", ["GET", "HEAD", "OPTIONS"])
def test_r_c4_mutating_routes_refuse_safe_methods(victim: TestClient, settings: Settings, path: str,
                                                  method: str) -> None:
    before = state(settings)
    r = victim.request(method, path)
    assert r.status_code == 405
    assert r.headers["allow"] == "POST"
    assert state(settings) == before
    assert victim.get("/profile").status_code == 200


@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH"])
def test_r_c4_other_methods_on_forms_are_405(victim: TestClient, method: str) -> None:
    token = csrf(victim, "/profile")
    for path in ("/login", "/register", "/profile"):
        r = victim.request(method, path, headers={"X-CSRF-Token": token})
        assert r.status_code == 405, path


# --- R-C5 headers on every response ---------------------------------------------------------------------------------


def test_r_c5_login_page_carries_security_headers(client: TestClient) -> None:
    assert_security_headers(client.get("/login"))


def test_r_c5_profile_page_carries_security_headers(victim: TestClient) -> None:
    r = victim.get("/profile")
    assert r.status_code == 200
    assert_security_headers(r)


@pytest.mark.parametrize("headers", [{}, PARTIAL], ids=["no-js", "partial"])
def test_r_c5_404_page_carries_security_headers(client: TestClient, headers: dict[str, str]) -> None:
    r = client.get("/no/such/page", headers=headers)
    assert r.status_code == 404
    assert "Page not found" in r.text
    assert ("<html" in r.text) is (not headers)
    assert_security_headers(r)


@pytest.mark.parametrize("headers", [{}, PARTIAL], ids=["no-js", "partial"])
def test_r_c5_405_page_carries_security_headers(client: TestClient, headers: dict[str, str]) -> None:
    r = client.get("/logout", headers=headers)
    assert r.status_code == 405
    assert "Method not allowed" in r.text
    assert ("<html" in r.text) is (not headers)
    assert_security_headers(r)


def test_r_c5_static_files_and_healthz_carry_security_headers(client: TestClient) -> None:
    for path in ("/static/app.css", "/static/vendor/htmx-4.0.1.min.js", "/healthz"):
        r = client.get(path)
        assert r.status_code == 200
        assert_security_headers(r)


@pytest.fixture
def boom_app(settings: Settings) -> Starlette:
    async def raiser(request: Request) -> Response:
        raise RuntimeError("db password=hunter2 leaked in SELECT * FROM users")

    app = create_app(settings, verify=DevVerifyBackend())
    app.router.routes.append(Route("/boom", raiser, methods=["GET", "POST"]))
    return app


@pytest.fixture
def boom_client(boom_app: Starlette) -> Iterator[TestClient]:
    with TestClient(boom_app, base_url="https://testserver", follow_redirects=False) as c:
        yield c


@pytest.mark.parametrize("headers", [{}, PARTIAL], ids=["no-js", "partial"])
def test_r_c8_unhandled_error_is_a_generic_500_with_headers_and_one_error_record(
        boom_client: TestClient, caplog: pytest.LogCaptureFixture, headers: dict[str, str]) -> None:
    caplog.clear()
    r = boom_client.get("/boom", headers=headers)
    assert r.status_code == 500
    assert "Something went wrong" in r.text
    assert ("<html" in r.text) is (not headers)
    for leak in ("Traceback", "RuntimeError", "hunter2", "SELECT"):
        assert leak not in r.text
    assert_security_headers(r)
    errors = [rec for rec in caplog.records if rec.levelno >= logging.ERROR]
    assert len(errors) == 1
    assert errors[0].exc_info is not None
    reference = re.search(r"Reference: <code>([0-9a-f]{16})</code>", r.text)
    assert reference and getattr(errors[0], "request_id", None) == reference.group(1)


def test_r_c8_app_runs_without_debug(app: Starlette) -> None:
    assert app.debug is False


# --- R-C6 templates and htmx --------------------------------------------------------------------------------------


def template_texts() -> dict[Path, str]:
    paths = sorted((ROOT / "templates").rglob("*.html"))
    assert paths
    return {p: p.read_text(encoding="utf-8") for p in paths}


def test_r_c6_templates_have_no_hx_on_js_or_javascript_values() -> None:
    for path, source in template_texts().items():
        assert not re.search(r"hx-on[:\-]", source, flags=re.I), path
        assert not re.search(r"""["']\s*js:""", source, flags=re.I), path
        assert "javascript:" not in source.lower(), path
        assert not re.search(r"\son[a-z]+\s*=", source, flags=re.I), f"inline handler in {path}"
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", source, flags=re.I), f"inline script in {path}"
        assert "style=" not in source, path


def test_r_c6_htmx_is_served_locally_at_the_pinned_version(client: TestClient) -> None:
    html = client.get("/login").text
    sources = re.findall(r'<script src="([^"]+)"', html)
    assert "/static/vendor/htmx-4.0.1.min.js" in sources
    assert all(src.startswith("/static/") for src in sources)
    assert "htmx.org" not in html and "unpkg" not in html and "jsdelivr" not in html


def test_r_c6_vendored_htmx_matches_the_recorded_sha384(client: TestClient) -> None:
    data = (ROOT / "static" / "vendor" / "htmx-4.0.1.min.js").read_bytes()
    assert base64.b64encode(hashlib.sha384(data).digest()).decode() == HTMX_SHA384
    served = client.get("/static/vendor/htmx-4.0.1.min.js")
    assert served.status_code == 200
    assert served.content == data


def test_r_c6_htmx_config_keeps_same_origin_mode() -> None:
    base = (ROOT / "templates" / "base.html").read_text(encoding="utf-8")
    config = re.search(r"<meta name=\"htmx-config\" content='([^']*)'", base)
    assert config is not None
    assert '"mode"' not in config.group(1) or '"mode":"same-origin"' in config.group(1).replace(" ", "")


def test_r_c7_autoescape_is_on_for_every_template(app: Starlette) -> None:
    env = app.state.templates.env
    for path in template_texts():
        name = path.relative_to(ROOT / "templates").as_posix()
        template = env.get_template(name)
        assert env.autoescape is True or (callable(env.autoescape) and env.autoescape(name)), name
        assert template is not None


def test_r_c7_error_page_escapes_reflected_text(client: TestClient) -> None:
    r = client.get('/<script>alert(1)</script>')
    assert r.status_code == 404
    assert "<script>alert(1)</script>" not in r.text


def test_r_c5_every_response_kind_in_one_sweep(victim: TestClient) -> None:
    calls: list[Callable[[], Any]] = [
        lambda: victim.get("/"), lambda: victim.get("/profile"), lambda: victim.get("/healthz"),
        lambda: victim.post("/login"), lambda: victim.get("/nope"), lambda: victim.put("/logout"),
    ]
    for call in calls:
        assert_security_headers(call())
