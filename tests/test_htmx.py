"""Page or fragment: the htmx helpers and the contract every route keeps with the three clients (R-H1…R-H3)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from starlette.requests import Request
from starlette.testclient import TestClient

from tests.support import BOOSTED, CLIENT_KINDS, NO_JS, PARTIAL, RESTORE, signed_in_client
from webapp.htmx import VARY, is_htmx, wants_fragment

ROOT = Path(__file__).resolve().parent.parent


def request_with(headers: dict[str, str]) -> Request:
    return Request({
        "type": "http", "method": "GET", "path": "/", "query_string": b"", "scheme": "https",
        "server": ("testserver", 443), "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
    })


# --- wants_fragment / is_htmx --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("headers", "fragment", "htmx"), [
    ({}, False, False),
    (NO_JS, False, False),
    # htmx 4
    (PARTIAL, True, True),
    (BOOSTED, False, True),
    ({"HX-Request": "true", "HX-Request-Type": "full"}, False, True),
    (RESTORE, False, False),
    ({"HX-Request": "true", "HX-Request-Type": "partial", "HX-History-Restore-Request": "true"}, False, False),
    ({"HX-Request": "true", "HX-Request-Type": "partial", "HX-Boosted": "true"}, True, True),
    # htmx 2 (no HX-Request-Type)
    ({"HX-Request": "true"}, True, True),
    ({"HX-Request": "true", "HX-Boosted": "true"}, False, True),
    ({"HX-Request": "true", "HX-History-Restore-Request": "true"}, False, False),
    ({"HX-Request": "true", "HX-Target": "auth-step", "HX-Trigger": "btn"}, True, True),
    # not htmx at all
    ({"HX-Request": "false", "HX-Request-Type": "partial"}, False, False),
    ({"HX-Request-Type": "partial"}, False, False),
    ({"HX-Boosted": "true"}, False, False),
    ({"HX-Request": "TRUE"}, False, False),
    ({"HX-Request": "true", "HX-Request-Type": "weird"}, False, True),
], ids=["none", "no-js", "h4-partial", "h4-boosted", "h4-full", "h4-restore", "h4-restore-partial",
        "h4-partial-boosted", "h2-plain", "h2-boosted", "h2-restore", "h2-target-ids", "hx-false", "type-only",
        "boosted-only", "hx-uppercase", "h4-unknown-type"])
def test_r_h2_wants_fragment_for_each_header_combination(headers: dict[str, str], fragment: bool,
                                                         htmx: bool) -> None:
    req = request_with(headers)
    assert wants_fragment(req) is fragment
    assert is_htmx(req) is htmx


def test_vary_names_both_htmx_headers() -> None:
    assert VARY == "HX-Request, HX-Request-Type"


# --- each route for each client ------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", list(CLIENT_KINDS))
def test_healthz_is_plain_ok_for_every_client(client: TestClient, kind: str) -> None:
    r = client.get("/healthz", headers=CLIENT_KINDS[kind])
    assert r.status_code == 200
    assert r.text == "ok"
    assert r.headers["content-type"].startswith("text/plain")
    assert r.headers["cache-control"] == "no-store"


def test_home_without_js_redirects_303_by_session(client: TestClient) -> None:
    r = client.get("/")
    assert (r.status_code, r.headers["location"]) == (303, "/login")
    signed_in_client(client)
    r = client.get("/")
    assert (r.status_code, r.headers["location"]) == (303, "/profile")


@pytest.mark.parametrize("kind", ["partial", "boosted"])
def test_r_h3_home_over_htmx_uses_hx_redirect(client: TestClient, kind: str) -> None:
    r = client.get("/", headers=CLIENT_KINDS[kind])
    assert (r.status_code, r.headers["hx-redirect"]) == (200, "/login")
    assert r.headers["vary"] == VARY
    signed_in_client(client)
    r = client.get("/", headers=CLIENT_KINDS[kind])
    assert (r.status_code, r.headers["hx-redirect"]) == (200, "/profile")


def test_home_history_restore_is_redirected_by_htmx_so_the_address_bar_follows(client: TestClient) -> None:
    r = client.get("/", headers=RESTORE)
    assert (r.status_code, r.headers["hx-redirect"]) == (200, "/login")
    assert "location" not in r.headers


@pytest.mark.parametrize("kind", ["no-js", "boosted", "restore"])
def test_profile_is_a_full_page_for_page_loads(client: TestClient, kind: str) -> None:
    signed_in_client(client)
    r = client.get("/profile", headers={**CLIENT_KINDS, "restore": RESTORE}[kind])
    assert r.status_code == 200
    assert "<html" in r.text
    assert "Your profile" in r.text
    assert r.headers["vary"] == VARY
    assert r.headers["cache-control"] == "no-store"


def test_profile_partial_request_still_gets_the_profile(client: TestClient) -> None:
    """/profile has no fragment of its own; a partial request gets the page rather than an error."""
    signed_in_client(client)
    r = client.get("/profile", headers=PARTIAL)
    assert r.status_code == 200
    assert "Your profile" in r.text
    assert r.headers["vary"] == VARY


@pytest.mark.parametrize("path", ["/login", "/register", "/no-such-page"])
@pytest.mark.parametrize("kind", ["no-js", "boosted", "restore"])
def test_r_h2_page_loads_get_full_pages(client: TestClient, path: str, kind: str) -> None:
    r = client.get(path, headers={**CLIENT_KINDS, "restore": RESTORE}[kind])
    assert "<html" in r.text
    assert r.headers["vary"] == VARY


@pytest.mark.parametrize("path", ["/login", "/register", "/no-such-page"])
def test_r_h2_partial_requests_get_fragments_with_the_same_vary(client: TestClient, path: str) -> None:
    r = client.get(path, headers=PARTIAL)
    assert "<html" not in r.text
    assert "<body" not in r.text
    assert r.headers["vary"] == VARY


def test_r_h2_fragment_and_page_differ_only_by_the_surrounding_layout(client: TestClient) -> None:
    page = client.get("/login").text
    fragment = client.get("/login", headers=PARTIAL).text
    section = re.search(r'<section id="auth-step".*?</section>', fragment, flags=re.S)
    assert section is not None
    assert section.group(0) in page


# --- R-H1 every flow works without JavaScript ---------------------------------------------------------------------


def test_r_h1_every_hx_post_sits_on_a_form_posting_to_the_same_url() -> None:
    found = 0
    for path in sorted((ROOT / "templates").rglob("*.html")):
        source = path.read_text(encoding="utf-8")
        for tag in re.findall(r"<[a-z]+\b[^>]*\bhx-post=[^>]*>", source, flags=re.S):
            found += 1
            assert tag.startswith("<form"), f"{path.name}: hx-post outside a form: {tag}"
            assert 'method="post"' in tag, f"{path.name}: {tag}"
            action = re.search(r'\baction="([^"]+)"', tag)
            hx_post = re.search(r'\bhx-post="([^"]+)"', tag)
            assert action and hx_post and action.group(1) == hx_post.group(1), f"{path.name}: {tag}"
    assert found >= 2


def test_r_h1_base_layout_boosts_and_sends_the_csrf_header_by_explicit_inheritance() -> None:
    base = (ROOT / "templates" / "base.html").read_text(encoding="utf-8")
    assert 'hx-boost:inherited="true"' in base
    assert "hx-headers:inherited=" in base
    assert 'id="flash" role="status"' in base
    assert base.count('id="flash"') == 1
