"""Browsers that talk to any of the processes, and a way to fire requests at the same moment (no tests here)."""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import httpx2
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session

from tests.support import PASSWORD
from webapp.db import sync_url
from webapp.twofactor import recovery

_CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclass(frozen=True)
class Cluster:
    urls: list[str]
    secret_key: str

    def url(self, n: int) -> str:
        return self.urls[n % len(self.urls)]


class Browser:
    """One browser: its own cookie jar and client address (X-Forwarded-For); any request may go to any process."""

    def __init__(self, cluster: Cluster, ip: str) -> None:
        self.cluster = cluster
        self.ip = ip
        self.http = httpx2.Client(follow_redirects=False, headers={"X-Forwarded-For": ip}, timeout=30)

    def get(self, n: int, path: str) -> httpx2.Response:
        return self.http.get(self.cluster.url(n) + path)

    def token(self, n: int, page: str) -> str:
        match = _CSRF_RE.search(self.get(n, page).text)
        assert match, f"no csrf token on {page}"
        return match.group(1)

    def post(self, n: int, path: str, data: dict[str, str] | None = None, *, page: str = "/profile") -> httpx2.Response:
        return self.http.post(self.cluster.url(n) + path, data={"csrf_token": self.token(n, page), **(data or {})})

    def register(self, n: int, username: str) -> None:
        r = self.post(n, "/register", {"username": username, "email": f"{username}@example.com",
                                       "password": PASSWORD, "password_confirm": PASSWORD}, page="/register")
        assert r.status_code == 303, r.text
        self.http.cookies.clear()

    def login(self, n: int, username: str, password: str = PASSWORD) -> httpx2.Response:
        return self.post(n, "/login", {"username": username, "password": password}, page="/login")

    def signed_in_on(self, n: int) -> bool:
        return self.get(n, "/profile").status_code == 200

    def cookies(self) -> dict[str, str]:
        return dict(self.http.cookies)

    def close(self) -> None:
        self.http.close()


def send(cluster: Cluster, n: int, ip: str, cookies: dict[str, str], path: str,
            data: dict[str, str] | None = None) -> httpx2.Response:
    """One request from a browser whose cookies are `cookies` (a copy: its jar is not updated)."""
    with httpx2.Client(follow_redirects=False, headers={"X-Forwarded-For": ip}, cookies=cookies, timeout=30) as c:
        url = cluster.url(n) + path
        return c.post(url, data=data) if data is not None else c.get(url)


def at_once(calls: list[Callable[[], httpx2.Response]]) -> list[httpx2.Response]:
    """Start every call at the same moment, each on its own thread and connection."""
    barrier = threading.Barrier(len(calls))

    def run(call: Callable[[], httpx2.Response]) -> httpx2.Response:
        barrier.wait(timeout=30)
        return call()

    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        return list(pool.map(run, calls))


def sql(query: str, url: str, **params: Any) -> list[Any]:
    engine = create_engine(sync_url(url))
    try:
        with engine.begin() as conn:
            result = conn.execute(text(query), params)
            return list(result.all()) if result.returns_rows else []
    finally:
        engine.dispose()


def turn_on_two_step(url: str, secret_key: str, username: str, phone: str) -> list[str]:
    """Two-step verification on, as enrolment leaves it; returns the ten recovery codes (shown once)."""
    sql("UPDATE users SET mfa_enabled = true, phone_e164 = :p WHERE username = :u", url, p=phone, u=username)
    batch = asyncio.run(recovery.make_batch(secret_key, 10, 4))
    engine = create_engine(sync_url(url))
    try:
        with Session(engine) as s, s.begin():
            [user_id] = s.execute(text("SELECT id FROM users WHERE username = :u"), {"u": username}).scalars()
            recovery.replace_all(s, user_id, batch)
    finally:
        engine.dispose()
    return batch.codes
