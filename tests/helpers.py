"""Test helpers: the four kinds of client (htmx style guide §2.1), CSRF tokens read from forms, and flows."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import create_engine, text
from starlette.testclient import TestClient

from webapp.db import sync_url
from webapp.settings import Settings

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
         page: str = "/login") -> object:
    token = csrf(client, page)
    return client.post(path, data={"csrf_token": token, **(data or {})}, headers=headers or {})


def register(client: TestClient, username: str = "alice", password: str = PASSWORD, email: str = "a@example.com",
             headers: dict[str, str] | None = None) -> object:
    token = csrf(client, "/register")
    return client.post("/register", headers=headers or {}, data={
        "csrf_token": token, "username": username, "email": email, "password": password,
        "password_confirm": password,
    })


def login(client: TestClient, username: str = "alice", password: str = PASSWORD, headers: dict[str, str] | None = None,
          **extra: str) -> object:
    token = csrf(client, "/login")
    return client.post("/login", headers=headers or {}, data={
        "csrf_token": token, "username": username, "password": password, **extra,
    })


def signed_in_client(client: TestClient, username: str = "alice") -> TestClient:
    r = register(client, username, email=f"{username}@example.com")
    assert r.status_code == 303, r.text  # type: ignore[attr-defined]
    r = login(client, username)
    assert r.status_code == 303, r.text  # type: ignore[attr-defined]
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
