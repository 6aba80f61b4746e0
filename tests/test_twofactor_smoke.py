from __future__ import annotations
import re
from starlette.testclient import TestClient
from tests.helpers import signed_in_client, csrf, csrf_from, PARTIAL, login, PASSWORD

def test_enable_login_recovery_and_disable_end_to_end(client: TestClient, verify) -> None:
    signed_in_client(client)
    r = client.get("/2fa/enable"); assert r.status_code == 200, r.text
    assert 'id="sms-risk-notice"' in r.text
    t = csrf_from(r.text)
    r = client.post("/2fa/enable", data={"csrf_token": t, "password": PASSWORD}); assert r.status_code == 200, r.text
    t = csrf_from(r.text)
    r = client.post("/2fa/phone-number", data={"csrf_token": t, "region": "US", "phone": "(415) 555-0123"}); assert r.status_code == 200, r.text
    assert "+14155550123" in r.text
    code = verify.outbox[0].code
    t = csrf_from(r.text)
    r = client.post("/2fa/verify", data={"csrf_token": t, "code": code}); assert r.status_code == 200, r.text
    codes = re.findall(r"<code>([0-9A-Z-]{19})</code>", r.text); assert len(codes) == 10, r.text
    r = client.get("/profile"); assert "is <strong>on</strong>" in r.text, r.text
    t = csrf_from(r.text)
    r = client.post("/logout", data={"csrf_token": t}); assert r.status_code == 303
    r = login(client); assert r.status_code == 303 and r.headers["location"] == "/login/verify", r.text
    r = client.get("/login/verify"); assert r.status_code == 200; assert "ending 23" in r.text
    t = csrf_from(r.text)
    r = client.post("/login/verify", data={"csrf_token": t, "code": "000000"}); assert r.status_code == 422; assert "4 attempts left" in r.text, r.text
    t = csrf_from(r.text)
    r = client.post("/login/verify", data={"csrf_token": t, "code": verify.outbox[0].code}); assert r.status_code == 303, r.text
    assert r.headers["location"] == "/profile"
    r = client.get("/profile"); assert r.status_code == 200
    # partial login
    t = csrf_from(r.text); client.post("/logout", data={"csrf_token": t})
    t = csrf(client); r = client.post("/login", headers=PARTIAL, data={"csrf_token": t, "username": "alice", "password": PASSWORD})
    assert r.status_code == 200 and "<html" not in r.text and r.headers["HX-Push-Url"] == "/login/verify", r.text
    # recovery
    r = client.get("/login/recovery"); t = csrf_from(r.text)
    r = client.post("/login/recovery", data={"csrf_token": t, "recovery_code": codes[0].lower()}); assert r.status_code == 303, r.text
    assert r.headers["location"] == "/2fa/recovery-used"
    r = client.get("/2fa/recovery-used"); assert "<strong>9</strong>" in r.text, r.text
    # disable
    r = client.get("/2fa/disable"); t = csrf_from(r.text)
    r = client.post("/2fa/disable", data={"csrf_token": t, "password": PASSWORD}); assert r.status_code == 200, r.text
    t = csrf_from(r.text)
    r = client.post("/2fa/recovery", data={"csrf_token": t, "recovery_code": codes[1]}); assert r.status_code == 303, r.text
    r = client.get("/profile"); assert "is <strong>off</strong>" in r.text, r.text
