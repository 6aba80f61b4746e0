"""Shared tools for the method tests (no tests here): a TOTP app, a software passkey, flows that add methods."""

from __future__ import annotations

import re
import time
from typing import Any

import pyotp
from starlette.testclient import TestClient

from tests.support import PASSWORD, follow, form_post, rows
from webapp.settings import Settings

KEY_RE = re.compile(r'<code class="setup-key"[^>]*>([A-Z2-7 ]+)</code>')
CODE_RE = re.compile(r"<code>([0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4})</code>")


class App:
    """An authenticator app holding one secret, with its own clock."""

    def __init__(self, secret: str) -> None:
        self.secret = secret
        self.totp = pyotp.TOTP(secret)

    def code(self, offset_steps: int = 0) -> str:
        return self.totp.at(time.time() + 30 * offset_steps)


def setup_key(html: str) -> str:
    match = KEY_RE.search(html)
    assert match, "no setup key on the page"
    return match.group(1).replace(" ", "")


def start_app_setup(client: TestClient, headers: dict[str, str] | None = None) -> Any:
    """Signed-in client: the password step-up for "Set up an authenticator app"; returns the setup page."""
    r = follow(client, form_post(client, "/2fa/app", client.get("/2fa/app").text, {"password": PASSWORD},
                                 headers=headers))
    assert r.status_code == 200, r.text
    return r


def add_app(client: TestClient, label: str = "") -> tuple[App, Any]:
    """Set up an authenticator app end to end; returns the app and the final response."""
    r = start_app_setup(client)
    app = App(setup_key(r.text))
    return app, form_post(client, "/2fa/verify", r.text, {"code": app.code(), "label": label})


def methods_of(settings: Settings, username: str = "alice") -> list[dict[str, Any]]:
    return rows(settings, "SELECT a.* FROM authenticators a JOIN users u ON u.id = a.user_id WHERE u.username = :u "
                          "ORDER BY a.id", u=username)


def next_step(app: App) -> int:
    return int(time.time() // 30)
