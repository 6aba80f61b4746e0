"""Server-side sessions and the signed cookie (R-S1…R-S7, R-S11, R-C2, K10, K15)."""

from __future__ import annotations

import base64
import hashlib
import json
import zlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import urlsplit

import pytest
import time_machine
from itsdangerous import URLSafeSerializer
from starlette.applications import Starlette
from starlette.testclient import TestClient

from tests.support import CLIENT_KINDS, RESTORE, csrf, csrf_from, login, register, signed_in_client, sql
from webapp import create_app
from webapp.mail.transport import DevMailbox
from webapp.settings import Settings
from webapp.verify.dev import DevVerifyBackend

ALLOWED_KEYS = {"sid", "challenge_id", "csrf"}


def set_cookie(response: Any, name: str = "session") -> SimpleCookie:
    jar: SimpleCookie = SimpleCookie()
    for header in response.headers.get_list("set-cookie"):
        jar.load(header)
    assert name in jar, response.headers.get_list("set-cookie")
    return jar


def decode(settings: Settings, raw: str) -> dict[str, Any]:
    data = URLSafeSerializer(settings.secret_key, salt="webapp.cookie").loads(raw)
    assert isinstance(data, dict)
    return data


def raw_payload(raw: str) -> str:
    """What anyone holding the cookie can read without the key."""
    body = raw.rsplit(".", 1)[0]
    compressed = body.startswith(".")
    data = base64.urlsafe_b64decode(body.lstrip(".") + "=" * (-len(body.lstrip(".")) % 4))
    return (zlib.decompress(data) if compressed else data).decode()


def assert_is_signed_out(c: TestClient) -> None:
    """The home page sends anonymous visitors to the sign-in page, signed-in ones to their profile."""
    r = c.get("/")
    assert r.status_code == 303
    assert r.headers["location"] == "/login"
    profile = c.get("/profile")
    assert profile.status_code == 303
    assert urlsplit(profile.headers["location"]).path == "/login"
    assert "Your profile" not in profile.text


# --- R-S1 server-side revocation ----------------------------------------------------------------------------------


def test_r_s1_replaying_a_cookie_captured_before_logout_is_refused(app: Starlette, client: TestClient,
                                                                    settings: Settings) -> None:
    signed_in_client(client)
    captured = client.cookies["session"]
    r = client.post("/logout", data={"csrf_token": csrf(client, "/profile")})
    assert r.status_code == 303
    with TestClient(app, base_url="https://testserver", follow_redirects=False,
                    cookies={"session": captured}) as replay:
        assert_is_signed_out(replay)
    [(revoked_at,)] = sql(settings, "SELECT revoked_at FROM auth_sessions")
    assert revoked_at is not None


def test_r_s1_replayed_cookie_is_sent_to_login_from_profile(app: Starlette, client: TestClient) -> None:
    signed_in_client(client)
    captured = client.cookies["session"]
    client.post("/logout", data={"csrf_token": csrf(client, "/profile")})
    with TestClient(app, base_url="https://testserver", follow_redirects=False,
                    cookies={"session": captured}) as replay:
        r = replay.get("/profile")
    assert r.status_code == 303
    assert urlsplit(r.headers["location"]).path == "/login"


@pytest.mark.parametrize("kind", ["no-js", "partial", "boosted"])
def test_anonymous_profile_request_is_sent_to_login_with_next(client: TestClient, kind: str) -> None:
    r = client.get("/profile", headers=CLIENT_KINDS[kind])
    target = r.headers["location"] if kind == "no-js" else r.headers["hx-redirect"]
    assert target == "/login?next=/profile"


@pytest.mark.parametrize("kind", ["no-js", "partial", "boosted"])
def test_anonymous_profile_request_never_shows_the_page(client: TestClient, kind: str) -> None:
    r = client.get("/profile", headers=CLIENT_KINDS[kind])
    if kind == "no-js":
        assert r.status_code == 303
        assert "location" in r.headers
    else:
        assert r.status_code == 200
        assert "hx-redirect" in r.headers
        assert r.text == ""
    assert r.headers["vary"] == "HX-Request, HX-Request-Type"


def test_r_s1_db_keeps_only_the_sha256_of_the_session_id(client: TestClient, settings: Settings) -> None:
    signed_in_client(client)
    sid = decode(settings, client.cookies["session"])["sid"]
    assert len(sid) >= 43
    [(id_hash,)] = sql(settings, "SELECT id_hash FROM auth_sessions")
    assert id_hash == hashlib.sha256(sid.encode()).hexdigest()
    dump = json.dumps([list(map(str, row)) for row in sql(settings, "SELECT * FROM auth_sessions")])
    assert sid not in dump


def test_r_s1_forged_or_unknown_sid_is_not_a_session(app: Starlette, client: TestClient, settings: Settings) -> None:
    signed_in_client(client)
    forged = URLSafeSerializer("not-the-key", salt="webapp.cookie").dumps({"sid": "x" * 43, "csrf": "y" * 43})
    unknown = URLSafeSerializer(settings.secret_key, salt="webapp.cookie").dumps({"sid": "x" * 43})
    for value in (forged, unknown, "garbage", client.cookies["session"] + "x"):
        with TestClient(app, base_url="https://testserver", follow_redirects=False,
                        cookies={"session": value}) as c:
            assert_is_signed_out(c)


# --- R-S3 / K15 rotation and R-C2 ---------------------------------------------------------------------------------


def test_r_s3_cookie_and_csrf_token_change_at_login(client: TestClient, settings: Settings) -> None:
    register(client)
    page = client.get("/login")
    before = client.cookies["session"]
    token_before = csrf_from(page.text)
    assert decode(settings, before) == {"csrf": token_before}
    r = login(client)
    after = set_cookie(r)["session"].value
    assert after != before
    payload = decode(settings, after)
    assert set(payload) == {"sid", "csrf"}
    assert payload["csrf"] != token_before
    assert csrf_from(client.get("/profile").text) == payload["csrf"]


def test_r_s3_each_login_gets_a_fresh_sid(client: TestClient, settings: Settings) -> None:
    signed_in_client(client)
    first = decode(settings, client.cookies["session"])["sid"]
    client.post("/logout", data={"csrf_token": csrf(client, "/profile")})
    login(client)
    second = decode(settings, client.cookies["session"])["sid"]
    assert first != second
    assert int(sql(settings, "SELECT count(*) FROM auth_sessions")[0][0]) == 2


def test_r_c2_pre_login_token_is_refused_after_login(client: TestClient) -> None:
    register(client)
    old_token = csrf(client, "/login")
    login(client)
    r = client.post("/logout", data={"csrf_token": old_token})
    assert r.status_code == 403
    assert client.get("/profile").status_code == 200


def test_r_s3_fixation_planted_anonymous_cookie_does_not_become_the_session(app: Starlette, client: TestClient,
                                                                            settings: Settings) -> None:
    """An attacker's pre-login cookie (K15) is worth nothing once the victim signs in with it."""
    register(client)
    client.get("/login")
    planted = client.cookies["session"]
    with TestClient(app, base_url="https://testserver", follow_redirects=False,
                    cookies={"session": planted}) as victim:
        assert login(victim).status_code == 303
    with TestClient(app, base_url="https://testserver", follow_redirects=False,
                    cookies={"session": planted}) as attacker:
        assert_is_signed_out(attacker)


# --- R-S4 cookie attributes ---------------------------------------------------------------------------------------


@pytest.fixture
def prod_client(settings: Settings) -> Iterator[TestClient]:
    prod = create_app(settings.with_overrides(env="production", bcrypt_rounds=4), verify=DevVerifyBackend(),
                      mail=DevMailbox())
    with TestClient(prod, base_url="https://testserver", follow_redirects=False) as c:
        yield c


def test_r_s4_production_cookie_is_host_prefixed_secure_httponly_lax(prod_client: TestClient) -> None:
    register(prod_client)
    r = login(prod_client)
    assert r.status_code == 303
    [header] = [h for h in r.headers.get_list("set-cookie") if h.startswith("__Host-session=")]
    attrs = {}
    for part in header.split(";")[1:]:
        key, _, value = part.strip().partition("=")
        attrs[key.lower()] = value
    assert "secure" in attrs
    assert "httponly" in attrs
    assert attrs["samesite"].lower() == "lax"
    assert attrs["path"] == "/"
    assert "domain" not in attrs
    assert 0 < int(attrs["max-age"]) <= 43200
    assert prod_client.get("/profile").status_code == 200


def test_r_s4_production_remember_me_cookie_lasts_the_remember_period(prod_client: TestClient,
                                                                      settings: Settings) -> None:
    register(prod_client)
    r = login(prod_client, remember="1")
    header = next(h for h in r.headers.get_list("set-cookie") if h.startswith("__Host-session="))
    assert f"Max-Age={settings.session_remember_s}" in header


def test_r_s4_development_cookie_is_httponly_lax_without_domain(client: TestClient) -> None:
    register(client)
    header = login(client).headers["set-cookie"]
    assert header.startswith("session=")
    assert "HttpOnly" in header and "SameSite=Lax" in header and "Path=/" in header
    assert "domain" not in header.lower()


# --- R-S5 / K10 cookie content ------------------------------------------------------------------------------------


def test_r_s5_cookie_holds_only_opaque_ids_at_every_step(client: TestClient, settings: Settings) -> None:
    seen = []
    register(client, "alice", email="alice@example.com")
    seen.append(client.cookies["session"])
    login(client, "alice", remember="1", next="/profile")
    seen.append(client.cookies["session"])
    client.get("/profile")
    seen.append(client.cookies["session"])
    for raw in seen:
        assert set(decode(settings, raw)) <= ALLOWED_KEYS
        readable = raw_payload(raw)
        for secret in ("alice", "example.com", "violet", "remember", "profile", "notice"):
            assert secret not in readable
            assert secret not in raw


def test_r_s5_cookie_with_extra_keys_is_not_trusted_for_them(app: Starlette, client: TestClient,
                                                             settings: Settings) -> None:
    forged = URLSafeSerializer(settings.secret_key, salt="webapp.cookie").dumps(
        {"user_id": 1, "username": "alice", "mfa_passed": True, "csrf": "z" * 43})
    signed_in_client(client)
    with TestClient(app, base_url="https://testserver", follow_redirects=False,
                    cookies={"session": forged}) as c:
        assert_is_signed_out(c)


# --- R-S6 idle and absolute timeouts ------------------------------------------------------------------------------


def test_r_s6_idle_timeout_is_thirty_minutes_from_last_activity(client: TestClient) -> None:
    with time_machine.travel(datetime.now(UTC), tick=False) as traveller:
        signed_in_client(client)
        traveller.shift(timedelta(minutes=29))
        assert client.get("/profile").status_code == 200
        traveller.shift(timedelta(minutes=29))
        assert client.get("/profile").status_code == 200
        traveller.shift(timedelta(minutes=31))
        assert_is_signed_out(client)


def test_r_s6_thirty_one_idle_minutes_after_login_end_the_session(client: TestClient) -> None:
    with time_machine.travel(datetime.now(UTC), tick=False) as traveller:
        signed_in_client(client)
        traveller.shift(timedelta(minutes=31))
        assert_is_signed_out(client)


@pytest.mark.parametrize("kind", ["no-js", "partial"])
def test_r_h3_expired_session_is_sent_to_login_with_notice(client: TestClient, kind: str) -> None:
    with time_machine.travel(datetime.now(UTC), tick=False) as traveller:
        signed_in_client(client)
        traveller.shift(timedelta(minutes=31))
        r = client.get("/profile", headers=CLIENT_KINDS[kind])
    target = r.headers["location"] if kind == "no-js" else r.headers["hx-redirect"]
    assert urlsplit(target).path == "/login"
    assert "notice=session-expired" in target


def test_r_s6_absolute_timeout_twelve_hours_despite_activity(client: TestClient) -> None:
    """Activity every 20 minutes keeps the session until 11 h 59, not past 12 h 01."""
    with time_machine.travel(datetime.now(UTC), tick=False) as traveller:
        signed_in_client(client)
        for _ in range(35):
            traveller.shift(timedelta(minutes=20))
            assert client.get("/").headers["location"] == "/profile"
        traveller.shift(timedelta(minutes=19))
        assert client.get("/profile").status_code == 200
        traveller.shift(timedelta(minutes=2))
        assert_is_signed_out(client)


def test_r_s6_remember_me_outlasts_idle_and_absolute_limits(client: TestClient, settings: Settings) -> None:
    with time_machine.travel(datetime.now(UTC), tick=False) as traveller:
        register(client)
        assert login(client, remember="1").status_code == 303
        traveller.shift(timedelta(hours=13))
        assert client.get("/profile").status_code == 200
        traveller.shift(timedelta(days=29))
        assert client.get("/profile").status_code == 200
        traveller.shift(timedelta(days=2))
        assert_is_signed_out(client)
    [(remember,)] = sql(settings, "SELECT remember FROM auth_sessions")
    assert bool(remember)


def test_r_s6_expiry_does_not_rely_on_the_cookie(app: Starlette, client: TestClient) -> None:
    """The server decides: an old cookie replayed by a fresh browser is refused after 31 idle minutes."""
    with time_machine.travel(datetime.now(UTC), tick=False) as traveller:
        signed_in_client(client)
        captured = client.cookies["session"]
        traveller.shift(timedelta(minutes=31))
        with TestClient(app, base_url="https://testserver", follow_redirects=False,
                        cookies={"session": captured}) as replay:
            assert_is_signed_out(replay)


# --- R-S2 / R-S12 sign out everywhere -----------------------------------------------------------------------------


def test_r_s2_sign_out_everywhere_ends_every_session(client: TestClient, other_client: TestClient,
                                                     settings: Settings) -> None:
    signed_in_client(client)
    assert login(other_client).status_code == 303
    assert other_client.get("/profile").status_code == 200
    r = client.post("/sessions/end-all", data={"csrf_token": csrf(client, "/profile")})
    assert r.status_code == 303
    assert r.headers["location"] == "/login?notice=signed-out-everywhere"
    assert "Max-Age=0" in r.headers["set-cookie"]
    assert_is_signed_out(other_client)
    assert_is_signed_out(client)
    assert sql(settings, "SELECT session_epoch FROM users") == [(1,)]
    events = [e for (e,) in sql(settings, "SELECT event FROM security_events ORDER BY id")]
    assert events[-1] == "session_revoked"


@pytest.mark.parametrize("kind", ["partial", "boosted"])
def test_r_s2_sign_out_everywhere_over_htmx_uses_hx_redirect(client: TestClient, kind: str) -> None:
    signed_in_client(client)
    r = client.post("/sessions/end-all", headers=CLIENT_KINDS[kind], data={"csrf_token": csrf(client, "/profile")})
    assert r.status_code == 200
    assert r.headers["hx-redirect"] == "/login?notice=signed-out-everywhere"


def test_sign_out_everywhere_needs_a_session(client: TestClient, settings: Settings) -> None:
    r = client.post("/sessions/end-all", data={"csrf_token": csrf(client, "/login")})
    assert r.status_code == 303
    assert r.headers["location"] == "/login"


def test_r_s12_profile_lists_each_active_session(client: TestClient, other_client: TestClient) -> None:
    signed_in_client(client)
    login(other_client)
    html = client.get("/profile").text
    assert html.count("(this device)") == 1
    assert html.count("last active") == 2


# --- R-S7 / K17 logout --------------------------------------------------------------------------------------------


def test_r_s7_get_logout_is_405_and_signs_nobody_out(client: TestClient, settings: Settings) -> None:
    signed_in_client(client)
    r = client.get("/logout")
    assert r.status_code == 405
    assert r.headers["allow"] == "POST"
    assert "Method not allowed" in r.text
    assert client.get("/profile").status_code == 200
    assert sql(settings, "SELECT revoked_at FROM auth_sessions") == [(None,)]


def test_r_s7_logout_without_token_is_403_and_keeps_the_session(client: TestClient, settings: Settings) -> None:
    signed_in_client(client)
    r = client.post("/logout")
    assert r.status_code == 403
    assert "This form has expired or came from another site." in r.text
    assert client.get("/profile").status_code == 200
    assert sql(settings, "SELECT revoked_at FROM auth_sessions") == [(None,)]


def test_r_s7_logout_revokes_expires_cookie_and_clears_site_data(client: TestClient, settings: Settings) -> None:
    signed_in_client(client)
    r = client.post("/logout", data={"csrf_token": csrf(client, "/profile")})
    assert r.status_code == 303
    assert r.headers["location"] == "/login?notice=signed-out"
    assert r.headers["clear-site-data"] == '"cache", "cookies", "storage"'
    cookie = set_cookie(r)["session"]
    assert cookie.value == ""
    assert cookie["max-age"] == "0"
    [(revoked_at,)] = sql(settings, "SELECT revoked_at FROM auth_sessions")
    assert revoked_at is not None
    assert_is_signed_out(client)
    assert "You have been signed out." in client.get("/login?notice=signed-out").text


@pytest.mark.parametrize("kind", ["partial", "boosted"])
def test_r_s7_logout_over_htmx_answers_hx_redirect(client: TestClient, kind: str) -> None:
    signed_in_client(client)
    r = client.post("/logout", headers=CLIENT_KINDS[kind], data={"csrf_token": csrf(client, "/profile")})
    assert r.status_code == 200
    assert r.headers["hx-redirect"] == "/login?notice=signed-out"
    assert r.headers["clear-site-data"] == '"cache", "cookies", "storage"'
    assert_is_signed_out(client)


def test_r_s7_every_authenticated_page_has_a_post_logout_form(client: TestClient) -> None:
    signed_in_client(client)
    html = client.get("/profile").text
    assert '<form method="post" action="/logout"' in html
    assert 'href="/logout"' not in html


def test_logout_when_not_signed_in_is_harmless(client: TestClient) -> None:
    r = client.post("/logout", data={"csrf_token": csrf(client, "/login")})
    assert r.status_code == 303
    assert r.headers["location"] == "/login?notice=signed-out"


# --- R-S11 caching and history restore ----------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/login", "/register", "/profile", "/does-not-exist"])
def test_r_s11_session_pages_are_no_store(client: TestClient, path: str) -> None:
    if path == "/profile":
        signed_in_client(client)
    r = client.get(path)
    assert r.headers["cache-control"] == "no-store"


def test_r_s11_history_restore_after_logout_gets_no_profile(client: TestClient) -> None:
    signed_in_client(client)
    restored = client.get("/profile", headers=RESTORE)
    assert restored.status_code == 200
    assert "<html" in restored.text
    client.post("/logout", data={"csrf_token": csrf(client, "/profile")})
    r = client.get("/profile", headers=RESTORE)
    assert r.status_code == 200
    assert r.headers["hx-redirect"].startswith("/login")
    assert "Your profile" not in r.text


def test_r_s11_history_restore_after_logout_is_sent_to_login(client: TestClient) -> None:
    signed_in_client(client)
    client.post("/logout", data={"csrf_token": csrf(client, "/profile")})
    r = client.get("/profile", headers=RESTORE)
    assert urlsplit(r.headers["hx-redirect"]).path == "/login"


def test_r_s11_no_template_loads_hx_history_cache() -> None:
    from pathlib import Path

    root = Path(__file__).resolve().parents[2] / "templates"
    for path in root.rglob("*.html"):
        assert "history-cache" not in path.read_text(encoding="utf-8"), path
