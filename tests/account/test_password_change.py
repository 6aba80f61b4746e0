"""Changing the password (R-P9)."""

from __future__ import annotations

from httpx2 import Response
from starlette.testclient import TestClient

from tests.support import PARTIAL, PASSWORD, csrf, csrf_from, login, signed_in_client

NEW = "amber-quarry-nocturne-93"


def _change(
    client: TestClient, current: str, new: str, confirm: str | None = None, headers: dict[str, str] | None = None
) -> Response:
    token = csrf(client, "/account/password")
    return client.post("/account/password", headers=headers or {}, data={
        "csrf_token": token, "current_password": current, "new_password": new,
        "new_password_confirm": new if confirm is None else confirm})


def test_r_p9_wrong_current_password_keeps_the_hash(client: TestClient) -> None:
    signed_in_client(client)
    r = _change(client, "not-my-password-at-all", NEW)
    assert r.status_code == 422
    assert "current password isn" in r.text
    assert 'aria-invalid="true"' in r.text
    client.post("/logout", data={"csrf_token": csrf(client, "/profile")})
    assert login(client, password=PASSWORD).headers["location"] == "/profile"


def test_r_p9_new_password_follows_the_policy(client: TestClient) -> None:
    signed_in_client(client)
    assert "at least 15" in _change(client, PASSWORD, "too-short").text.lower()
    assert "too common" in _change(client, PASSWORD, "passwordpassword").text
    assert "match" in _change(client, PASSWORD, NEW, confirm=NEW + "x").text


def test_r_p9_change_ends_other_sessions_and_keeps_this_one(client: TestClient, other_client: TestClient) -> None:
    signed_in_client(client)
    assert login(other_client).status_code == 303
    r = _change(client, PASSWORD, NEW)
    assert r.status_code == 303 and r.headers["location"] == "/profile?notice=password-changed"
    assert client.get("/profile").status_code == 200
    assert other_client.get("/profile").headers["location"].startswith("/login")
    client.post("/logout", data={"csrf_token": csrf(client, "/profile")})
    assert login(client, password=PASSWORD).status_code == 422
    assert login(client, password=NEW).headers["location"] == "/profile"


def test_password_change_partial_error_is_a_fragment(client: TestClient) -> None:
    signed_in_client(client)
    r = _change(client, "wrong-wrong-wrong-wrong", NEW, headers=PARTIAL)
    assert r.status_code == 422
    assert "<html" not in r.text and 'id="password-change"' in r.text
    assert csrf_from(r.text)


def test_password_change_needs_a_session(client: TestClient) -> None:
    r = client.get("/account/password")
    assert r.status_code == 303 and r.headers["location"].startswith("/login")
