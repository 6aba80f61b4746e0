"""The whole two-factor story in one pass, without JavaScript: enable, sign in with a code, recovery, disable."""

from __future__ import annotations

import re

from httpx2 import Response
from starlette.testclient import TestClient

from tests.support import PARTIAL, PASSWORD, csrf, csrf_from, login, signed_in_client
from webapp.verify.dev import DevVerifyBackend

CODE_RE = re.compile(r"<code>([0-9A-Z]{4}(?:-[0-9A-Z]{4}){3})</code>")


def _post(client: TestClient, path: str, page_html: str, **data: str) -> Response:
    return client.post(path, data={"csrf_token": csrf_from(page_html), **data})


def test_enable_login_recovery_and_disable_end_to_end(client: TestClient, verify: DevVerifyBackend) -> None:
    signed_in_client(client)
    r = client.get("/2fa/enable")
    assert r.status_code == 200 and 'id="sms-risk-notice"' in r.text
    r = _post(client, "/2fa/enable", r.text, password=PASSWORD)
    assert r.status_code == 303 and r.headers["location"] == "/2fa"  # no-JS steps follow POST → 303 → GET
    r = client.get("/2fa")
    assert r.status_code == 200 and 'name="phone"' in r.text
    r = _post(client, "/2fa/phone-number", r.text, region="US", phone="(415) 555-0123")
    assert r.status_code == 303 and r.headers["location"] == "/2fa?notice=code-sent"
    r = client.get(r.headers["location"])
    assert "+14155550123" in r.text and "We sent a code to the number ending 23" in r.text
    r = _post(client, "/2fa/verify", r.text, code=verify.outbox[0].code)
    codes = CODE_RE.findall(r.text)
    assert len(codes) == 10
    profile = client.get("/profile").text
    assert "is <strong>on</strong>" in profile and "+14155550123" not in profile

    client.post("/logout", data={"csrf_token": csrf_from(profile)})
    r = login(client)
    assert r.status_code == 303 and r.headers["location"] == "/login/verify"
    page = client.get("/login/verify").text
    assert "ending 23" in page
    r = _post(client, "/login/verify", page, code="000000")
    assert r.status_code == 422 and "4 attempts left" in r.text
    r = _post(client, "/login/verify", r.text, code=verify.outbox[0].code)
    assert r.status_code == 303 and r.headers["location"] == "/profile"

    client.post("/logout", data={"csrf_token": csrf(client, "/profile")})
    r = client.post("/login", headers=PARTIAL,
                    data={"csrf_token": csrf(client), "username": "alice", "password": PASSWORD})
    assert r.status_code == 200 and "<html" not in r.text and r.headers["HX-Push-Url"] == "/login/verify"
    r = _post(client, "/login/recovery", client.get("/login/recovery").text, recovery_code=codes[0].lower())
    assert r.headers["location"] == "/2fa/recovery-used"
    assert "<strong>9</strong>" in client.get("/2fa/recovery-used").text

    r = _post(client, "/2fa/disable", client.get("/2fa/disable").text, password=PASSWORD)
    assert r.status_code == 303
    r = client.get("/2fa")
    r = _post(client, "/2fa/recovery", r.text, recovery_code=codes[1])
    assert r.status_code == 303
    assert "is <strong>off</strong>" in client.get("/profile").text
