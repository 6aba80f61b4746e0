"""Open-redirect defence for `next` (R-R1, R-R3, K12): only same-origin relative paths survive."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from tests.support import BOOSTED, PARTIAL, PASSWORD, csrf, login, register
from webapp.security.redirects import DEFAULT_NEXT, safe_next

# Django's tests/utils_tests/test_http.py, IsSafeURLTests.test_bad_urls.
DJANGO_BAD_URLS = [
    "http://example.com",
    "http:///example.com",
    "https://example.com",
    "ftp://example.com",
    r"\\example.com",
    r"\\\example.com",
    r"/\\/example.com",
    r"\\\example.com",
    r"\\//example.com",
    r"/\/example.com",
    r"\/example.com",
    r"/\example.com",
    "http:///example.com",
    r"http:/\//example.com",
    r"http:\/example.com",
    r"http:/\example.com",
    'javascript:alert("XSS")',
    "\njavascript:alert(x)",
    "\x08//example.com",
    r"http://otherserver\@example.com",
    r"http:\\testserver\@example.com",
    r"http://testserver\me:pass@example.com",
    r"http://testserver\@example.com",
    r"http:\\testserver\confirm\me@example.com",
    "http:999999999",
    "ftp:9999999999",
    "\n",
    "http://[2001:cdba:0000:0000:0000:0000:3257:9652/",
    "http://2001:cdba:0000:0000:0000:0000:3257:9652]/",
]
MORE_BAD = [
    "//example.com", "///example.com", "//evil.example/profile", "/\t/example.com", "/\r\n/example.com",
    "/ /example.com", "\u3000//example.com", "/\u2028/example.com",
    "data:text/html,<script>alert(1)</script>", "JAVASCRIPT:alert(1)", " /profile", "/profile\x00",
    "profile", "../profile", "", "/login", "/login?next=//evil.example", "/logout", "/register",
    "/" + "a" * 600,
]
GOOD = ["/profile", "/settings?tab=1", "/settings?tab=1&x=%2F%2Fevil.example", "/a/b/c#frag", "/sessions?page=2",
        "/%2F%2Fexample.com", "/profile?next=https://evil.example"]


@pytest.fixture
def alice(client: TestClient) -> TestClient:
    assert register(client).status_code == 303
    return client


@pytest.mark.parametrize("target", DJANGO_BAD_URLS)
def test_r_r1_django_bad_url_in_query_next_lands_on_profile(alice: TestClient, target: str) -> None:
    token = csrf(alice)
    r = alice.post("/login", params={"next": target},
                   data={"csrf_token": token, "username": "alice", "password": PASSWORD})
    assert r.status_code == 303
    assert r.headers["location"] == "/profile"


@pytest.mark.parametrize("target", [*DJANGO_BAD_URLS[:6], "//evil.example", "javascript:alert(1)"])
def test_r_r1_bad_url_in_form_next_lands_on_profile(alice: TestClient, target: str) -> None:
    r = login(alice, next=target)
    assert r.status_code == 303
    assert r.headers["location"] == "/profile"


def test_r_r1_relative_next_with_query_is_kept(alice: TestClient) -> None:
    token = csrf(alice)
    r = alice.post("/login", params={"next": "/settings?tab=1"},
                   data={"csrf_token": token, "username": "alice", "password": PASSWORD})
    assert r.status_code == 303
    assert r.headers["location"] == "/settings?tab=1"


def test_r_r1_form_next_wins_over_query_next(alice: TestClient) -> None:
    token = csrf(alice)
    r = alice.post("/login", params={"next": "/from-query"},
                   data={"csrf_token": token, "username": "alice", "password": PASSWORD, "next": "/from-form"})
    assert r.headers["location"] == "/from-form"


def test_r_r1_login_form_carries_only_a_validated_next(client: TestClient) -> None:
    html = client.get("/login", params={"next": "//evil.example/x"}).text
    assert 'name="next" value="/profile"' in html
    assert "evil.example" not in html
    html = client.get("/login", params={"next": "/settings?tab=1"}).text
    assert 'name="next" value="/settings?tab=1"' in html


def test_r_r1_signed_in_visit_to_login_follows_only_safe_next(alice: TestClient) -> None:
    login(alice)
    assert alice.get("/login", params={"next": "//evil.example"}).headers["location"] == "/profile"
    assert alice.get("/login", params={"next": "/settings?tab=1"}).headers["location"] == "/settings?tab=1"


@pytest.mark.parametrize("headers", [PARTIAL, BOOSTED], ids=["partial", "boosted"])
@pytest.mark.parametrize("target", ["//evil.example", "https://evil.example/", r"/\evil.example"])
def test_r_r3_hx_redirect_uses_the_same_validator(alice: TestClient, headers: dict[str, str], target: str) -> None:
    token = csrf(alice)
    r = alice.post("/login", params={"next": target}, headers=headers,
                   data={"csrf_token": token, "username": "alice", "password": PASSWORD})
    assert r.status_code == 200
    assert r.headers["hx-redirect"] == "/profile"


def test_r_r3_hx_redirect_keeps_a_safe_next(alice: TestClient) -> None:
    r = login(alice, headers=PARTIAL, next="/settings?tab=1")
    assert r.headers["hx-redirect"] == "/settings?tab=1"


# --- unit: safe_next ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("target", DJANGO_BAD_URLS + MORE_BAD)
def test_safe_next_refuses_unsafe_targets(target: str) -> None:
    assert safe_next(target) == DEFAULT_NEXT == "/profile"


@pytest.mark.parametrize("target", GOOD)
def test_safe_next_keeps_relative_paths(target: str) -> None:
    assert safe_next(target) == target


def test_safe_next_handles_none_and_custom_default() -> None:
    assert safe_next(None) == "/profile"
    assert safe_next(None, default="/") == "/"
    assert safe_next("//evil.example", default="/home") == "/home"


def test_safe_next_accepts_exactly_512_characters() -> None:
    target = "/" + "a" * 511
    assert safe_next(target) == target
    assert safe_next(target + "a") == "/profile"


def test_r_c7_next_echoed_into_the_form_is_escaped(client: TestClient) -> None:
    html = client.get("/login", params={"next": '/x"><script>alert(1)</script>'}).text
    assert "<script>alert(1)</script>" not in html
    assert 'name="next" value="/x&#34;&gt;&lt;script&gt;alert(1)&lt;/script&gt;"' in html
