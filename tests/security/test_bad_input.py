"""Hostile and odd input: clear messages, no 500s, no half-written rows (R-V5, R-V6, R-P4, R-C5, R-C8)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from tests.support import CLIENT_KINDS, PARTIAL, PASSWORD, count, csrf, login, register, sql
from webapp import create_app
from webapp.identity.usernames import USERNAME_RE, canonical
from webapp.settings import Settings
from webapp.verify.dev import DevVerifyBackend

BAD_CHARS = "contains characters that aren&#39;t allowed"
LOGIN_ERROR = "Incorrect username or password."


def register_with(client: TestClient, headers: dict[str, str] | None = None, **fields: str) -> Any:
    data = {"username": "alice", "email": "a@example.com", "password": PASSWORD, "password_confirm": PASSWORD}
    data.update(fields)
    return client.post("/register", headers=headers or {}, data={"csrf_token": csrf(client, "/register"), **data})


def assert_security_headers(r: Any) -> None:
    assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["strict-transport-security"].startswith("max-age=31536000")
    assert r.headers["referrer-policy"] == "strict-origin-when-cross-origin"


# --- over-long fields ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("field", "length", "message"), [
    ("username", 65, "Username is too long (at most 64 characters)."),
    ("email", 255, "Email is too long (at most 254 characters)."),
    ("password", 1025, "Password is too long (at most 1024 characters)."),
    ("password_confirm", 1025, "Confirmation is too long (at most 1024 characters)."),
    ("username", 10_000, "Username is too long (at most 64 characters)."),
])
@pytest.mark.parametrize("kind", ["no-js", "partial"])
def test_register_field_over_its_maximum_gets_a_clear_message(client: TestClient, settings: Settings, field: str,
                                                              length: int, message: str, kind: str) -> None:
    r = register_with(client, CLIENT_KINDS[kind], **{field: "a" * length})
    assert r.status_code == 422
    assert message in r.text
    assert ("a" * length) not in r.text
    assert count(settings, "users") == 0


@pytest.mark.parametrize("field", ["username", "password"])
def test_login_field_over_its_maximum_is_an_ordinary_failure(client: TestClient, settings: Settings,
                                                             field: str) -> None:
    register(client)
    r = client.post("/login", data={"csrf_token": csrf(client), "username": "alice", "password": PASSWORD,
                                    field: "a" * 5000})
    assert r.status_code == 422
    assert LOGIN_ERROR in r.text
    assert count(settings, "auth_sessions") == 0


def test_login_next_over_its_maximum_is_ignored(client: TestClient) -> None:
    register(client)
    r = login(client, next="/" + "a" * 600)
    assert (r.status_code, r.headers["location"]) == (303, "/profile")


def test_register_username_between_33_and_64_characters_gets_the_pattern_message(client: TestClient) -> None:
    r = register_with(client, username="a" * 40)
    assert r.status_code == 422
    assert "Use 3 to 32 characters" in r.text


# --- control characters and odd Unicode ------------------------------------------------------------------------------


ODD = {
    "nul": "ali\x00ce",
    "bell": "ali\x07ce",
    "escape": "ali\x1b[31mce",
    "del": "ali\x7fce",
    "c1": "ali\x85ce",
    "rtl-override": "ali\u202ece",
    "zero-width-space": "ali\u200bce",
    "bom": "\ufeffalice",
    "private-use": "ali\ue000ce",
    "unassigned": "ali\U000e0080ce",
    "tag-char": "alice\U000e0041",
}


@pytest.mark.parametrize("value", list(ODD.values()), ids=list(ODD))
@pytest.mark.parametrize("field", ["username", "email", "password"])
def test_control_and_invisible_characters_are_refused_with_a_message(client: TestClient, settings: Settings,
                                                                     field: str, value: str) -> None:
    if field == "email":
        value = value + "@example.com"
    elif field == "password":
        value = value + "-long-enough-pass"
    fields = {field: value, **({"password_confirm": value} if field == "password" else {})}
    r = register_with(client, **fields)
    assert r.status_code == 422
    assert BAD_CHARS in r.text
    assert count(settings, "users") == 0


@pytest.mark.parametrize("value", list(ODD.values()), ids=list(ODD))
def test_control_characters_at_login_are_a_generic_failure(client: TestClient, settings: Settings,
                                                           value: str) -> None:
    register(client)
    r = login(client, username=value, password=PASSWORD + value)
    assert r.status_code == 422
    assert LOGIN_ERROR in r.text
    assert count(settings, "auth_sessions") == 0


def test_zero_width_joiner_emoji_password_is_allowed(client: TestClient) -> None:
    family = "\U0001f468\u200d\U0001f469\u200d\U0001f467"  # one emoji sequence with ZWJs
    password = family * 4
    r = register_with(client, password=password, password_confirm=password)
    assert r.status_code == 303
    assert login(client, password=password).status_code == 303


@pytest.mark.parametrize("username", ["\uff41\uff4c\uff49\uff43\uff45", "ALICE", "Alice"])
def test_fullwidth_and_uppercase_usernames_are_stored_canonical(client: TestClient, settings: Settings,
                                                                username: str) -> None:
    assert register_with(client, username=username).status_code == 303
    assert sql(settings, "SELECT username FROM users") == [("alice",)]


def test_invalid_utf8_in_urlencoded_body_is_not_a_500(client: TestClient, settings: Settings) -> None:
    token = csrf(client, "/register")
    body = f"csrf_token={token}&username=%ff%fe%80&email=a%40example.com&password=%ed%a0%80".encode()
    r = client.post("/register", content=body, headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code in (400, 422)
    assert count(settings, "users") == 0


# --- body size and malformed bodies -------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/register", "/login", "/logout", "/sessions/end-all"])
def test_oversized_body_is_a_413_page_with_security_headers(client: TestClient, settings: Settings, path: str) -> None:
    token = csrf(client, "/register")
    r = client.post(path, data={"csrf_token": token, "username": "alice", "email": "x" * 64_001})
    assert r.status_code == 413
    assert "Too much data" in r.text
    assert "<html" in r.text
    assert_security_headers(r)
    assert count(settings, "users") == 0


def test_oversized_body_partial_is_a_413_fragment(client: TestClient) -> None:
    r = client.post("/login", headers=PARTIAL, content=b"a=" + b"x" * 70_000)
    assert r.status_code == 413
    assert "<html" not in r.text
    assert "Too much data" in r.text


def test_oversized_chunked_body_without_length_is_a_413(client: TestClient, settings: Settings) -> None:
    token = csrf(client, "/register")

    def chunks() -> Iterator[bytes]:
        yield f"csrf_token={token}&username=alice&email=".encode()
        for _ in range(20):
            yield b"x" * 8_000

    r = client.post("/register", content=chunks(), headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 413
    assert "Too much data" in r.text
    assert_security_headers(r)
    assert count(settings, "users") == 0


def test_field_up_to_the_part_limit_gets_the_field_message(client: TestClient, settings: Settings) -> None:
    r = register_with(client, email="x" * 16_000)
    assert r.status_code == 422
    assert "Email is too long" in r.text


def test_field_over_the_part_limit_is_a_readable_400_page(client: TestClient, settings: Settings) -> None:
    """python-multipart's max_part_size (16 384) stops one huge field before the 64 000-byte body limit."""
    r = register_with(client, email="x" * 60_000)
    assert r.status_code == 400
    assert "Bad request" in r.text
    assert "exceeded maximum size" in r.text
    assert_security_headers(r)
    assert count(settings, "users") == 0


MALFORMED_MULTIPART = {
    "no-boundary": ("multipart/form-data", b"--x\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nb\r\n--x--\r\n"),
    "wrong-boundary": ("multipart/form-data; boundary=abc", b"--xyz\r\ngarbage\r\n--xyz--\r\n"),
    "truncated": ("multipart/form-data; boundary=abc", b"--abc\r\nContent-Disposition: form-data; name=\"a\"\r\n"),
    "no-disposition": ("multipart/form-data; boundary=abc", b"--abc\r\nX-Other: 1\r\n\r\nvalue\r\n--abc--\r\n"),
    "binary-junk": ("multipart/form-data; boundary=abc", bytes(range(256)) * 10),
    "empty": ("multipart/form-data; boundary=abc", b""),
    "file-upload": ("multipart/form-data; boundary=abc",
                    b"--abc\r\nContent-Disposition: form-data; name=\"username\"; filename=\"a.txt\"\r\n"
                    b"Content-Type: text/plain\r\n\r\nalice\r\n--abc--\r\n"),
    "many-fields": ("multipart/form-data; boundary=abc",
                    b"".join(b"--abc\r\nContent-Disposition: form-data; name=\"f%d\"\r\n\r\nv\r\n" % i
                             for i in range(100)) + b"--abc--\r\n"),
    "weird-type": ("application/json", b'{"username": "alice"}'),
    "text-plain": ("text/plain", b"username=alice"),
}


@pytest.mark.parametrize("path", ["/register", "/login", "/logout", "/sessions/end-all"])
@pytest.mark.parametrize("name", list(MALFORMED_MULTIPART))
def test_malformed_bodies_are_refused_without_a_500(client: TestClient, settings: Settings, path: str,
                                                    name: str) -> None:
    csrf(client, "/login")
    content_type, body = MALFORMED_MULTIPART[name]
    r = client.post(path, content=body, headers={"Content-Type": content_type})
    assert r.status_code in (400, 403, 413, 422), r.status_code
    assert "Traceback" not in r.text
    assert_security_headers(r)
    assert count(settings, "users") == 0


def test_valid_multipart_form_with_token_works(client: TestClient, settings: Settings) -> None:
    token = csrf(client, "/register")
    r = client.post("/register", files={"x": (None, b"")}, data={
        "csrf_token": token, "username": "alice", "email": "a@example.com", "password": PASSWORD,
        "password_confirm": PASSWORD})
    assert r.status_code == 303
    assert count(settings, "users") == 1


# --- property: random fields at every POST route ------------------------------------------------------------------


@pytest.fixture
def fuzz_settings(settings: Settings) -> Settings:
    return settings.with_overrides(registrations_per_ip_per_hour=1_000_000, ip_requests_per_minute=1_000_000)


@pytest.fixture
def fuzz_client(fuzz_settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(fuzz_settings, verify=DevVerifyBackend()), base_url="https://testserver",
                    follow_redirects=False) as c:
        yield c


FIELDS = ["username", "email", "password", "password_confirm", "remember", "next"]
EXTRA_KEYS = ["mfa_enabled", "is_admin", "phone_e164", "session_epoch", "id", "user_id", "csrf", "sid",
              "challenge_id", "failed_login_count"]
any_text = st.text(alphabet=st.characters(exclude_categories=("Cs",)), max_size=80)
values = st.one_of(
    any_text,
    st.sampled_from(["alice", "bob_2", "a@example.com", PASSWORD, "1", "on", "/profile", "//evil.example", "",
                     "' OR 1=1 --", "<script>alert(1)</script>", "\x00", "\u202e", "a" * 1025]),
    st.text(alphabet="ab\x00\r\n\t\u200b", max_size=2000),
)
keys = st.one_of(st.sampled_from(FIELDS + EXTRA_KEYS), st.text(min_size=1, max_size=20))
forms = st.dictionaries(keys, values, max_size=12)
client_kinds = st.sampled_from(list(CLIENT_KINDS.values()))
FUZZ = hsettings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def post_with_token(c: TestClient, path: str, fields: dict[str, str], headers: dict[str, str]) -> Any:
    """A valid token from a form the client can see, whatever random keys the example brings."""
    token = csrf(c, {"/register": "/register", "/login": "/login"}.get(path, "/profile"))
    return c.post(path, headers=headers, data={**fields, "csrf_token": token})


def ensure_signed_in(c: TestClient) -> None:
    if c.get("/").headers["location"] != "/profile":
        assert login(c).status_code == 303


@FUZZ
@given(fields=forms, headers=client_kinds)
def test_property_register_never_500s_and_leaves_no_partial_row(fuzz_client: TestClient, fuzz_settings: Settings,
                                                                fields: dict[str, str],
                                                                headers: dict[str, str]) -> None:
    before = count(fuzz_settings, "users")
    r = post_with_token(fuzz_client, "/register", fields, headers)
    assert r.status_code < 500
    after = count(fuzz_settings, "users")
    succeeded = r.status_code == 303 or r.headers.get("hx-redirect") == "/login?notice=registered"
    assert after == before + (1 if succeeded else 0)
    if succeeded:
        [(name, admin_like)] = sql(fuzz_settings, "SELECT username, mfa_enabled FROM users ORDER BY id DESC LIMIT 1")
        assert name == canonical(fields["username"]) and USERNAME_RE.fullmatch(name)
        assert not admin_like


@FUZZ
@given(fields=forms, headers=client_kinds)
def test_property_login_never_500s_and_starts_no_session_on_failure(fuzz_client: TestClient,
                                                                    fuzz_settings: Settings,
                                                                    fields: dict[str, str],
                                                                    headers: dict[str, str]) -> None:
    if count(fuzz_settings, "users") == 0:
        register(fuzz_client)
    fuzz_client.cookies.clear()
    before = count(fuzz_settings, "auth_sessions")
    r = post_with_token(fuzz_client, "/login", fields, headers)
    assert r.status_code < 500
    succeeded = r.status_code == 303 or "hx-redirect" in r.headers
    assert r.status_code in ((303, 200) if succeeded else (422, 429))
    assert count(fuzz_settings, "auth_sessions") == before + (1 if succeeded else 0)
    if succeeded:
        assert fields.get("password") == PASSWORD


@FUZZ
@given(fields=forms, headers=client_kinds, path=st.sampled_from(["/logout", "/sessions/end-all"]))
def test_property_logout_routes_never_500_and_always_end_the_session(fuzz_client: TestClient,
                                                                     fuzz_settings: Settings,
                                                                     fields: dict[str, str], headers: dict[str, str],
                                                                     path: str) -> None:
    if count(fuzz_settings, "users") == 0:
        register(fuzz_client)
    ensure_signed_in(fuzz_client)
    r = post_with_token(fuzz_client, path, fields, headers)
    assert r.status_code in (200, 303)
    assert r.headers.get("location", r.headers.get("hx-redirect", "")).startswith("/login?notice=signed-out")
    assert fuzz_client.get("/").headers["location"] == "/login"
    [(epoch,)] = sql(fuzz_settings, "SELECT session_epoch FROM users")
    live = sql(fuzz_settings, "SELECT count(*) FROM auth_sessions WHERE revoked_at IS NULL AND epoch = :e", e=epoch)
    assert live == [(0,)]
