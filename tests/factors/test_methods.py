"""The profile's methods: listed with their actions, renamed and removed behind the password; the last one goes only
through the turn-off flow; recovery codes come with the first method."""

from __future__ import annotations

from starlette.testclient import TestClient

from tests.factors.kit import CODE_RE, add_app, methods_of
from tests.support import (
    PARTIAL,
    PASSWORD,
    CountingVerify,
    csrf,
    enroll,
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


def test_profile_offers_every_way_to_add_a_method(client: TestClient) -> None:
    signup(client)
    page = client.get("/profile").text
    assert "Set up an authenticator app" in page
    assert "Enable two-factor authentication with a phone" in page
    assert "Add a passkey" not in page  # this test client is not at APP_BASE_URL's origin


def test_profile_lists_each_method_with_rename_and_remove(client: TestClient, settings: Settings,
                                                          verify: CountingVerify) -> None:
    signup(client)
    enroll(client, lambda: verify.code)
    add_app(client, label="Work phone")
    page = client.get("/profile").text
    assert "Phone" in page and "number ending 23" in page and "Work phone" in page and "Authenticator app" in page
    ids = [m["id"] for m in methods_of(settings)]
    for method_id in ids:
        assert f"/2fa/methods/{method_id}/rename" in page and f"/2fa/methods/{method_id}/remove" in page
    assert "Add a phone" not in page  # one phone per account


def test_recovery_codes_come_with_the_first_method_only(client: TestClient, verify: CountingVerify) -> None:
    signup(client)
    _, first = add_app(client)
    assert len(CODE_RE.findall(first.text)) == 10
    r = follow(client, form_post(client, "/2fa/enable", client.get("/2fa/enable").text, {"password": PASSWORD}))
    assert "Your phone number" in r.text
    r = follow(client, form_post(client, "/2fa/phone-number", r.text, {"region": "US", "phone": "(415) 555-0123"}))
    r = form_post(client, "/2fa/verify", r.text, {"code": verify.code})
    assert path_of(r) == "/profile" and "notice=method-added" in location(r)


def test_rename_needs_the_password(client: TestClient, settings: Settings, verify: CountingVerify) -> None:
    signup(client)
    enroll(client, lambda: verify.code)
    [phone] = methods_of(settings)
    page = client.get(f"/2fa/methods/{phone['id']}/rename")
    r = form_post(client, f"/2fa/methods/{phone['id']}/rename", page.text, {"label": "Old Nokia", "password": "no"})
    assert r.status_code == 422 and methods_of(settings)[0]["label"] == "Phone"
    r = form_post(client, f"/2fa/methods/{phone['id']}/rename", page.text,
                  {"label": "  Old   Nokia ", "password": PASSWORD})
    assert "notice=method-renamed" in location(r)
    assert methods_of(settings)[0]["label"] == "Old Nokia"


def test_removing_one_of_two_methods_needs_the_password_and_keeps_two_step_on(
        client: TestClient, other_client: TestClient, settings: Settings, verify: CountingVerify) -> None:
    signup(client)
    enroll(client, lambda: verify.code)
    add_app(client)
    phone = methods_of(settings)[0]
    page = client.get(f"/2fa/methods/{phone['id']}/remove", headers=PARTIAL)
    assert page.status_code == 200 and 'id="twofa"' in page.text and "<html" not in page.text
    r = form_post(client, f"/2fa/methods/{phone['id']}/remove", page.text, {"password": "wrong"})
    assert r.status_code == 422 and len(methods_of(settings)) == 2
    r = form_post(client, f"/2fa/methods/{phone['id']}/remove", page.text, {"password": PASSWORD})
    assert "notice=method-removed" in location(r)
    assert [m["kind"] for m in methods_of(settings)] == ["totp"]
    user = user_row(settings)
    assert user["mfa_enabled"] in (True, 1) and user["phone_e164"] is None
    assert events(settings, "mfa_method_removed")[-1]["user_id"] == user["id"]
    assert client.get("/profile").status_code == 200  # this browser keeps a (new) session


def test_removing_the_last_method_goes_through_turning_two_step_off(client: TestClient, settings: Settings,
                                                                    verify: CountingVerify) -> None:
    signup(client)
    enroll(client, lambda: verify.code)
    [phone] = methods_of(settings)
    page = client.get(f"/2fa/methods/{phone['id']}/remove")
    assert "Turn off two-step verification" in page.text and 'name="password"' not in page.text
    r = form_post(client, f"/2fa/methods/{phone['id']}/remove", page.text, {"password": PASSWORD})
    assert path_of(r) == "/2fa/disable"
    assert len(methods_of(settings)) == 1
    r = follow(client, form_post(client, "/2fa/disable", client.get("/2fa/disable").text, {"password": PASSWORD}))
    r = form_post(client, "/2fa/verify", r.text, {"code": verify.code})
    assert "notice=twofa-off" in location(r)
    assert methods_of(settings) == [] and user_row(settings)["mfa_enabled"] in (False, 0)
    assert rows(settings, "SELECT id FROM recovery_codes") == []


def test_someone_elses_method_is_not_found(client: TestClient, other_client: TestClient, settings: Settings,
                                           verify: CountingVerify) -> None:
    signup(client)
    enroll(client, lambda: verify.code)
    [phone] = methods_of(settings)
    signup(other_client, "bob")
    page = other_client.get(f"/2fa/methods/{phone['id']}/rename")
    assert path_of(page) == "/profile"
    r = other_client.post(f"/2fa/methods/{phone['id']}/remove",
                          data={"csrf_token": csrf(other_client, "/profile"), "password": PASSWORD})
    assert path_of(r) == "/profile" and len(methods_of(settings)) == 1


def test_disabling_with_an_app_only_asks_for_the_app_code(client: TestClient, settings: Settings,
                                                          verify: CountingVerify) -> None:
    signup(client)
    app, _ = add_app(client)
    r = follow(client, form_post(client, "/2fa/disable", client.get("/2fa/disable").text, {"password": PASSWORD}))
    assert "Enter the code from your app" in r.text and not verify.starts
    r = form_post(client, "/2fa/verify", r.text, {"code": app.code(1)})
    assert "notice=twofa-off" in location(r)
    assert methods_of(settings) == []


def test_banners_and_the_security_log_name_the_method(client: TestClient, verify: CountingVerify) -> None:
    signup(client)
    app, _ = add_app(client)
    logout(client)
    login(client)
    r = form_post(client, "/login/verify", client.get("/login/verify").text, {"code": app.code(1)})
    assert path_of(r) == "/profile"
    page = client.get("/profile").text
    assert "Two-step verification was turned on for your account. (Authenticator app)" in page
    assert "Signed in (authenticator app)" in page
