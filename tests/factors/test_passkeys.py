"""Passkeys with generated WebAuthn data (tests/factors/softkey.py): adding one, the second step, passwordless
sign-in, removal; the origin, the RP ID, user verification and the signature counter are all checked."""

from __future__ import annotations

import json
from typing import Any

import pytest
from starlette.testclient import TestClient

from tests.factors.kit import CODE_RE, add_app, methods_of
from tests.factors.softkey import SoftPasskey
from tests.support import (
    PARTIAL,
    PASSWORD,
    csrf,
    events,
    follow,
    form_post,
    location,
    login,
    logout,
    path_of,
    rows,
    signup,
    user_row,
)
from webapp.settings import Settings


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The test client's origin is the app's origin, as for a browser opened at APP_BASE_URL."""
    return settings.with_overrides(app_base_url="https://testserver")


def options(client: TestClient, path: str, page: str) -> dict[str, Any]:
    r = client.post(path, data={"csrf_token": csrf(client, page)})
    assert r.status_code == 200 and r.headers["cache-control"] == "no-store", r.text
    data: dict[str, Any] = r.json()
    return data


def add_passkey(client: TestClient, key: SoftPasskey, label: str = "Laptop") -> Any:
    page = follow(client, form_post(client, "/2fa/passkey", client.get("/2fa/passkey").text, {"password": PASSWORD}))
    assert 'data-passkey="create"' in page.text and "needs a browser with JavaScript" in page.text
    created = options(client, "/2fa/passkey/options", "/2fa")["publicKey"]
    assert created["authenticatorSelection"]["residentKey"] == "required"
    assert created["authenticatorSelection"]["userVerification"] == "required"
    assert created["rp"]["id"] == "testserver"
    return form_post(client, "/2fa/passkey/register", page.text, {"credential": key.register(created), "label": label})


def test_adding_a_passkey_as_the_first_method(client: TestClient, settings: Settings) -> None:
    signup(client)
    key = SoftPasskey()
    r = add_passkey(client, key)
    assert r.status_code == 200 and len(CODE_RE.findall(r.text)) == 10  # recovery codes with the first method
    [row] = methods_of(settings)
    assert row["kind"] == "webauthn" and row["label"] == "Laptop" and row["credential_id"] == key.id
    assert user_row(settings)["mfa_enabled"] in (True, 1)
    profile = client.get("/profile").text
    assert "Laptop" in profile and "Passkey" in profile and "not used yet" in profile


def _at_passkey_step(client: TestClient) -> dict[str, Any]:
    logout(client)
    assert path_of(login(client)) == "/login/verify"
    page = client.get("/login/verify").text
    assert "Use your passkey" in page and 'data-passkey="get"' in page
    assert "Passkeys need a browser with JavaScript turned on" in page  # shown until static/webauthn.js hides it
    return options(client, "/login/passkey/options", "/login/verify")["publicKey"]


def test_a_passkey_is_offered_as_the_second_step(client: TestClient, settings: Settings) -> None:
    signup(client)
    key = SoftPasskey()
    add_passkey(client, key)
    asked = _at_passkey_step(client)
    assert [c["id"] for c in asked["allowCredentials"]] == [key.id] and asked["userVerification"] == "required"
    r = form_post(client, "/login/verify", client.get("/login/verify").text, {"credential": key.assertion(asked)})
    assert path_of(r) == "/profile", r.text
    assert methods_of(settings)[0]["sign_count"] == 1 and methods_of(settings)[0]["last_used_at"] is not None
    details = events(settings, "authn_login_success")[-1]["details"]
    assert (json.loads(details) if isinstance(details, str) else details)["method"] == "webauthn"


@pytest.mark.parametrize("tamper", [{"origin": "https://evil.example"}, {"rp_id": "evil.example"},
                                    {"verified": False}], ids=["wrong-origin", "wrong-rp-id", "no-user-verification"])
def test_answers_for_another_origin_rp_id_or_without_verification_are_refused(
        client: TestClient, settings: Settings, tamper: dict[str, Any]) -> None:
    signup(client)
    key = SoftPasskey()
    add_passkey(client, key)
    asked = _at_passkey_step(client)
    r = form_post(client, "/login/verify", client.get("/login/verify").text,
                  {"credential": key.assertion(asked, **tamper)})
    assert r.status_code == 422 and "That passkey didn" in r.text
    assert client.get("/profile").status_code == 303


def test_a_ceremony_challenge_answers_once(client: TestClient) -> None:
    signup(client)
    key = SoftPasskey()
    add_passkey(client, key)
    asked = _at_passkey_step(client)
    first = key.assertion(asked)
    page = client.get("/login/verify").text
    bad = form_post(client, "/login/verify", page, {"credential": key.assertion(asked, origin="https://x.example")})
    assert bad.status_code == 422
    r = form_post(client, "/login/verify", client.get("/login/verify").text, {"credential": first})
    assert r.status_code == 422  # the failed answer took the challenge: ask for new options


def test_a_counter_that_goes_backwards_is_refused_and_flagged(client: TestClient, settings: Settings) -> None:
    signup(client)
    key = SoftPasskey()
    add_passkey(client, key)
    asked = _at_passkey_step(client)
    form_post(client, "/login/verify", client.get("/login/verify").text, {"credential": key.assertion(asked)})
    key.counter = 5
    asked = _at_passkey_step(client)
    assert path_of(form_post(client, "/login/verify", client.get("/login/verify").text,
                             {"credential": key.assertion(asked)})) == "/profile"
    asked = _at_passkey_step(client)
    r = form_post(client, "/login/verify", client.get("/login/verify").text,
                  {"credential": key.assertion(asked, counter=3)})  # a clone, behind the real one
    assert r.status_code == 422
    assert methods_of(settings)[0]["flagged_at"] is not None
    assert events(settings, "webauthn_counter_regression")
    assert rows(settings, "SELECT kind FROM security_notices WHERE kind = 'passkey_flagged'")


def test_passwordless_sign_in_with_a_discoverable_passkey(client: TestClient, other_client: TestClient,
                                                          settings: Settings) -> None:
    signup(client)
    key = SoftPasskey()
    add_passkey(client, key)
    login_page = other_client.get("/login").text
    assert "Sign in with a passkey" in login_page
    asked = options(other_client, "/login/passkey-only/options", "/login")
    assert asked["publicKey"]["allowCredentials"] == [] and asked["publicKey"]["userVerification"] == "required"
    answer = key.assertion(asked["publicKey"])
    r = form_post(other_client, "/login/passkey-only", other_client.get("/login").text,
                  {"ceremony": asked["fields"]["ceremony"], "credential": answer})
    assert path_of(r) == "/profile", r.text
    assert other_client.get("/profile").status_code == 200
    replay = form_post(client, "/login/passkey-only", client.get("/profile").text,
                       {"ceremony": asked["fields"]["ceremony"], "credential": answer})
    assert replay.status_code == 422  # the ceremony was used


def test_passwordless_refuses_an_unknown_passkey(client: TestClient) -> None:
    asked = options(client, "/login/passkey-only/options", "/login")
    r = form_post(client, "/login/passkey-only", client.get("/login").text,
                  {"ceremony": asked["fields"]["ceremony"], "credential": SoftPasskey().assertion(asked["publicKey"])})
    assert r.status_code == 422 and "didn&#39;t sign you in" in r.text


def test_removing_a_passkey(client: TestClient, settings: Settings) -> None:
    signup(client)
    add_app(client)
    key = SoftPasskey()
    assert "notice=method-added" in location(add_passkey(client, key))
    passkey = next(m for m in methods_of(settings) if m["kind"] == "webauthn")
    page = client.get(f"/2fa/methods/{passkey['id']}/remove", headers=PARTIAL).text
    r = form_post(client, f"/2fa/methods/{passkey['id']}/remove", page, {"password": PASSWORD})
    assert "notice=method-removed" in location(r)
    assert [m["kind"] for m in methods_of(settings)] == ["totp"]


def test_a_page_at_another_origin_explains_instead_of_offering_passkeys(client: TestClient, app: Any,
                                                                        settings: Settings) -> None:
    app.state.settings = settings.with_overrides(app_base_url="http://localhost:8000")
    signup(client)
    page = client.get("/profile").text
    assert "Add a passkey" not in page and "http://localhost:8000/profile" in page
    assert "Sign in with a passkey" not in client.get("/login").text
