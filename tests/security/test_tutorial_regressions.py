"""Regressions for the original Flask tutorial's foundation mistakes (K5, K10, K15, K16, K17)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from itsdangerous import URLSafeSerializer
from sqlalchemy import create_engine, text
from starlette.applications import Starlette
from starlette.testclient import TestClient

from tests.support import CLIENT_KINDS, csrf, login, register, signed_in_client
from webapp.db import sync_url
from webapp.settings import ConfigError, Settings, load_settings


def sql(settings: Settings, query: str) -> list[Any]:
    engine = create_engine(sync_url(settings.database_url))
    try:
        with engine.connect() as conn:
            return list(conn.execute(text(query)).all())
    finally:
        engine.dispose()


def cookie_payload(settings: Settings, client: TestClient) -> dict[str, Any]:
    data = URLSafeSerializer(settings.secret_key, salt="webapp.cookie").loads(client.cookies["session"])
    assert isinstance(data, dict)
    return data


# --- K5: @login_required on /login ---------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", list(CLIENT_KINDS))
def test_k5_anonymous_get_login_is_200_with_the_form(client: TestClient, kind: str) -> None:
    r = client.get("/login", headers=CLIENT_KINDS[kind])
    assert r.status_code == 200
    assert 'action="/login"' in r.text
    assert 'name="password"' in r.text


def test_k5_anonymous_get_register_is_200(client: TestClient) -> None:
    assert client.get("/register").status_code == 200


# --- K10: personal data in the cookie ------------------------------------------------------------------------------


def test_k10_cookie_keys_are_only_opaque_ids(client: TestClient, settings: Settings) -> None:
    client.get("/login")
    assert set(cookie_payload(settings, client)) == {"csrf"}
    signed_in_client(client)
    payload = cookie_payload(settings, client)
    assert set(payload) <= {"sid", "challenge_id", "csrf"}
    assert "username" not in payload and "phone" not in payload
    assert "alice" not in str(payload)


# --- K15: no rotation at login ------------------------------------------------------------------------------------


def test_k15_login_rotates_the_cookie_and_logout_kills_the_old_one(app: Starlette, client: TestClient,
                                                                    settings: Settings) -> None:
    register(client)
    client.get("/login")
    anonymous = client.cookies["session"]
    login(client)
    signed_in = client.cookies["session"]
    assert signed_in != anonymous
    assert cookie_payload(settings, client)["csrf"] != URLSafeSerializer(
        settings.secret_key, salt="webapp.cookie").loads(anonymous)["csrf"]
    client.post("/logout", data={"csrf_token": csrf(client, "/profile")})
    with TestClient(app, base_url="https://testserver", follow_redirects=False,
                    cookies={"session": signed_in}) as replay:
        assert replay.get("/").headers["location"] == "/login"
        assert replay.get("/profile").status_code == 303


# --- K16: default SECRET_KEY ---------------------------------------------------------------------------------------


def production_env(tmp_path: Path, secret: str) -> dict[str, str]:
    return {
        "APP_ENV": "production", "SECRET_KEY": secret, "PASSWORD_PEPPER": "q" * 48,
        "INSTANCE_DIR": str(tmp_path), "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'x.db'}",
        "TWILIO_ACCOUNT_SID": "AC" + "1" * 32, "TWILIO_AUTH_TOKEN": "t" * 32,
        "TWILIO_VERIFY_SERVICE_SID": "VA" + "1" * 32,
        "APP_BASE_URL": "https://accounts.example.com", "SMTP_HOST": "smtp.example.com",
        "MAIL_FROM": "no-reply@accounts.example.com",
    }


@pytest.mark.parametrize("secret", ["you-will-never-guess", "", "short-but-not-default"])
def test_k16_production_refuses_default_or_short_secret_key(tmp_path: Path, secret: str) -> None:
    with pytest.raises(ConfigError, match="SECRET_KEY"):
        load_settings(environ=production_env(tmp_path, secret), dotenv=tmp_path / "nonexistent.env")


def test_k16_production_accepts_a_long_random_secret_key(tmp_path: Path) -> None:
    s = load_settings(environ=production_env(tmp_path, "r" * 48), dotenv=tmp_path / "nonexistent.env")
    assert s.secret_key == "r" * 48


def test_k16_twilio_token_is_read_from_twilio_auth_token(tmp_path: Path) -> None:
    env = production_env(tmp_path, "r" * 48)
    env["TWILIO_ACCOUNT_TOKEN"] = env.pop("TWILIO_AUTH_TOKEN")
    with pytest.raises(ConfigError, match="TWILIO_AUTH_TOKEN"):
        load_settings(environ=env, dotenv=tmp_path / "nonexistent.env")


# --- K17: logout as a GET link ------------------------------------------------------------------------------------


def test_k17_get_logout_is_405_and_the_session_survives(client: TestClient, settings: Settings) -> None:
    signed_in_client(client)
    r = client.get("/logout")
    assert r.status_code == 405
    assert client.get("/profile").status_code == 200
    assert sql(settings, "SELECT count(*) FROM auth_sessions WHERE revoked_at IS NULL") == [(1,)]


def test_k17_logout_is_a_post_form_not_a_link(client: TestClient) -> None:
    signed_in_client(client)
    html = client.get("/profile").text
    assert 'href="/logout"' not in html
    assert '<form method="post" action="/logout"' in html
