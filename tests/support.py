"""Everything the tests share, typed: the client kinds (htmx style guide §2.1), CSRF tokens read from forms,
account and two-step flows, a counting Verify backend, database peeks, and the Twilio-fake fixtures."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable, Iterator
from typing import Any

import httpx2
import pytest
from sqlalchemy import create_engine, text
from starlette.applications import Starlette
from starlette.testclient import TestClient

from tests.counting import CountingVerify
from tests.fakeverify.plugin import FakeVerify
from webapp import create_app
from webapp.db import sync_url
from webapp.settings import Settings

Response = httpx2.Response

NO_JS: dict[str, str] = {}
BOOSTED = {"HX-Request": "true", "HX-Boosted": "true", "HX-Request-Type": "full"}
PARTIAL = {"HX-Request": "true", "HX-Request-Type": "partial"}
# What htmx 4.0.1 really sends on Back/Forward: no HX-Request header (observed in Chromium).
RESTORE = {"HX-History-Restore-Request": "true", "HX-Request-Type": "full"}
CLIENT_KINDS = {"no-js": NO_JS, "boosted": BOOSTED, "partial": PARTIAL}

PASSWORD = "violet-harbour-lantern-47"

_CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_from(html: str) -> str:
    match = _CSRF_RE.search(html)
    assert match, "no csrf_token field in the page"
    return match.group(1)


def csrf(client: TestClient, path: str = "/login") -> str:
    response = client.get(path)
    return csrf_from(response.text)


def post(client: TestClient, path: str, data: dict[str, str] | None = None, headers: dict[str, str] | None = None,
         page: str = "/login") -> Response:
    token = csrf(client, page)
    return client.post(path, data={"csrf_token": token, **(data or {})}, headers=headers or {})


def register(client: TestClient, username: str = "alice", password: str = PASSWORD, email: str = "a@example.com",
             headers: dict[str, str] | None = None) -> Response:
    token = csrf(client, "/register")
    return client.post("/register", headers=headers or {}, data={
        "csrf_token": token, "username": username, "email": email, "password": password,
        "password_confirm": password,
    })


def login(client: TestClient, username: str = "alice", password: str = PASSWORD, headers: dict[str, str] | None = None,
          **extra: str) -> Response:
    token = csrf(client, "/login")
    return client.post("/login", headers=headers or {}, data={
        "csrf_token": token, "username": username, "password": password, **extra,
    })


def signed_in_client(client: TestClient, username: str = "alice") -> TestClient:
    r = register(client, username, email=f"{username}@example.com")
    assert r.status_code == 303, r.text
    r = login(client, username)
    assert r.status_code == 303, r.text
    return client


def sql(settings: Settings, query: str, **params: Any) -> list[Any]:
    """Read the test database directly, through a synchronous driver."""
    engine = create_engine(sync_url(settings.database_url))
    try:
        with engine.connect() as conn:
            return list(conn.execute(text(query), params).all())
    finally:
        engine.dispose()


def count(settings: Settings, table: str) -> int:
    return int(sql(settings, f"SELECT count(*) FROM {table}")[0][0])  # noqa: S608 - table names are fixed in tests


PHONE = "+14155550123"
CODE_RE = re.compile(r"<code>([0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4})</code>")


def rows(settings: Settings, sql: str, **params: Any) -> list[dict[str, Any]]:
    engine = create_engine(sync_url(settings.database_url))
    try:
        with engine.begin() as conn:
            return [dict(r._mapping) for r in conn.execute(text(sql), params)]
    finally:
        engine.dispose()


def execute(settings: Settings, sql: str, **params: Any) -> None:
    engine = create_engine(sync_url(settings.database_url))
    try:
        with engine.begin() as conn:
            conn.execute(text(sql), params)
    finally:
        engine.dispose()


def user_row(settings: Settings, username: str = "alice") -> dict[str, Any]:
    return rows(settings, "SELECT * FROM users WHERE username = :u", u=username)[0]


def challenges_of(settings: Settings, username: str = "alice") -> list[dict[str, Any]]:
    """Newest first."""
    return rows(settings, "SELECT c.* FROM mfa_challenges c JOIN users u ON u.id = c.user_id "
                          "WHERE u.username = :u ORDER BY c.created_at DESC", u=username)


def latest_challenge(settings: Settings, username: str = "alice") -> dict[str, Any]:
    return challenges_of(settings, username)[0]


def events(settings: Settings, name: str | None = None) -> list[dict[str, Any]]:
    found = rows(settings, "SELECT * FROM security_events ORDER BY id")
    return [e for e in found if name is None or e["event"] == name]


def cookie_payload(client: TestClient, settings: Settings) -> dict[str, Any]:
    value = client.cookies.get(settings.session_cookie)
    if not value:
        return {}
    head = value.split(".")[0]
    decoded: dict[str, Any] = json.loads(base64.b64decode(head + "=" * (-len(head) % 4)))
    return decoded


def form_post(client: TestClient, path: str, page_html: str, data: dict[str, str] | None = None,
              headers: dict[str, str] | None = None) -> Response:
    return client.post(path, data={"csrf_token": csrf_from(page_html), **(data or {})}, headers=headers or {})


def token_post(client: TestClient, path: str, data: dict[str, str] | None = None,
               headers: dict[str, str] | None = None, page: str = "/profile") -> Response:
    """POST with a CSRF token read from `page` (the current cookie's token)."""
    return client.post(path, data={"csrf_token": csrf(client, page), **(data or {})}, headers=headers or {})


def follow(client: TestClient, response: Response) -> Response:
    """Without JavaScript a step answers POST → 303 → GET /2fa (PRG); follow that one hop like a browser."""
    if response.status_code == 303 and response.headers["location"].split("?")[0] == "/2fa":
        return client.get(response.headers["location"])
    return response


def start_enroll(client: TestClient, phone: str = "(415) 555-0123", region: str = "US") -> Response:
    """Signed-in client: step-up with the password, submit the number; returns the response to the number."""
    r = client.get("/2fa/enable")
    assert r.status_code == 200, r.text
    r = follow(client, form_post(client, "/2fa/enable", r.text, {"password": PASSWORD}))
    assert r.status_code == 200, r.text
    return follow(client, form_post(client, "/2fa/phone-number", r.text, {"region": region, "phone": phone}))


def enroll(client: TestClient, code_for: Callable[[], str], phone: str = "(415) 555-0123",
           region: str = "US") -> list[str]:
    """Full enrollment; `code_for()` returns the latest code. Returns the 10 recovery codes."""
    r = start_enroll(client, phone, region)
    assert r.status_code == 200, r.text
    r = form_post(client, "/2fa/verify", r.text, {"code": code_for()})
    assert r.status_code == 200, r.text
    codes = CODE_RE.findall(r.text)
    assert len(codes) == 10, r.text
    return codes


def signup(client: TestClient, username: str = "alice") -> None:
    r = register(client, username, email=f"{username}@example.com")
    assert r.status_code == 303, r.text
    r = login(client, username)
    assert r.status_code == 303, r.text


def make_2fa_user(client: TestClient, settings: Settings, username: str = "alice", phone: str = PHONE) -> None:
    """A registered user with 2FA on (set in the DB, for login-step tests); the client ends signed out."""
    r = register(client, username, email=f"{username}@example.com")
    assert r.status_code == 303, r.text
    execute(settings, "UPDATE users SET mfa_enabled = :t, phone_e164 = :p WHERE username = :u",
            t=True, p=phone, u=username)
    client.cookies.clear()


def logout(client: TestClient) -> None:
    r = token_post(client, "/logout")
    assert r.status_code == 303, r.text


def location(response: Response) -> str:
    loc: str = response.headers.get("location") or response.headers.get("hx-redirect") or ""
    return loc


def path_of(response: Response) -> str:
    return location(response).split("?")[0]


# --- Twilio backend against the fake Verify server ------------------------------------------------------------

def twilio_overrides(fake: FakeVerify, **extra: Any) -> dict[str, Any]:
    return dict(twilio_account_sid=fake.account_sid, twilio_auth_token=fake.auth_token,
                twilio_verify_service_sid=fake.service_sid, twilio_verify_base_url=fake.base_url,
                twilio_timeout_s=1.0, **extra)


@pytest.fixture
def tw_settings(settings: Settings, fake_verify: FakeVerify) -> Settings:
    return settings.with_overrides(**twilio_overrides(fake_verify))


@pytest.fixture
def tw_app(tw_settings: Settings) -> Starlette:
    return create_app(tw_settings, verify=None)


@pytest.fixture
def tw_client(tw_app: Starlette) -> Iterator[TestClient]:
    with TestClient(tw_app, base_url="https://testserver", follow_redirects=False) as c:
        yield c


def fake_code(fake: FakeVerify, settings: Settings, username: str = "alice") -> str:
    sid = latest_challenge(settings, username)["verification_sid"]
    assert sid, "no verification started"
    return fake.code_for(sid)


def code_post(client: TestClient, code: str, headers: dict[str, str] | None = None, path: str = "/login/verify"
              ) -> Response:
    return client.post(path, data={"csrf_token": csrf(client, "/login"), "code": code}, headers=headers or {})


def password_step(client: TestClient, username: str = "alice", headers: dict[str, str] | None = None) -> Response:
    r = login(client, username, headers=headers)
    return r


def wrong(verify: CountingVerify) -> str:
    return "000000" if verify.code != "000000" else "111111"


def recovery_rows(settings: Settings, username: str = "alice") -> list[dict[str, object]]:
    return rows(settings, "SELECT r.* FROM recovery_codes r JOIN users u ON u.id = r.user_id WHERE u.username = :u",
                u=username)


def login_with_recovery(client: TestClient, code: str, username: str = "alice") -> Response:
    r = login(client, username)
    assert path_of(r) == "/login/verify", r.text
    page = client.get("/login/recovery")
    assert page.status_code == 200
    return form_post(client, "/login/recovery", page.text, {"recovery_code": code})


def stepup(client: TestClient, action: str, password: str = PASSWORD, headers: dict[str, str] | None = None
           ) -> Response:
    page = client.get(f"/2fa/{action}")
    assert page.status_code == 200, page.text
    return follow(client, form_post(client, f"/2fa/{action}", page.text, {"password": password}, headers))
