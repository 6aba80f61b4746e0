""""Don't ask again on this browser": the device cookie, skipping the second step on that browser only, the
profile's list with "Forget" and "Forget all", and every event that forgets them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from starlette.testclient import TestClient

from tests.factors.kit import add_app
from tests.support import (
    PASSWORD,
    CountingVerify,
    enroll,
    follow,
    form_post,
    location,
    login,
    logout,
    path_of,
    rows,
    signup,
    token_post,
)
from webapp.settings import Settings

NEW_PASSWORD = "copper-meadow-violin-83"


def remembered_sign_in(client: TestClient, verify: CountingVerify) -> Any:
    """Password, then the SMS code with "Don't ask again" ticked."""
    assert path_of(login(client)) == "/login/verify"
    page = client.get("/login/verify").text
    assert "Don't ask again on this browser for 30 days" in page
    return form_post(client, "/login/verify", page, {"code": verify.code, "remember_browser": "1"})


def live_browsers(settings: Settings) -> list[dict[str, Any]]:
    return rows(settings, "SELECT * FROM remembered_browsers WHERE revoked_at IS NULL")


def two_step_user(client: TestClient, verify: CountingVerify) -> None:
    signup(client)
    enroll(client, lambda: verify.code)
    logout(client)


def test_the_device_cookie_is_its_own_httponly_lax_cookie(client: TestClient, settings: Settings,
                                                          verify: CountingVerify) -> None:
    two_step_user(client, verify)
    r = remembered_sign_in(client, verify)
    assert path_of(r) == "/profile"
    cookie = next(h for h in r.headers.get_list("set-cookie") if h.startswith("device="))
    token = cookie.split(";")[0].split("=", 1)[1]
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Max-Age=2592000" in cookie
    [row] = live_browsers(settings)
    assert row["token_hash"] != token and token not in str(rows(settings, "SELECT * FROM security_events"))


def test_a_remembered_browser_skips_the_second_step_and_others_do_not(
        client: TestClient, other_client: TestClient, settings: Settings, verify: CountingVerify) -> None:
    two_step_user(client, verify)
    remembered_sign_in(client, verify)
    logout(client)
    sent = len(verify.starts)
    assert path_of(login(client)) == "/profile"  # password only
    assert len(verify.starts) == sent  # no code was sent
    assert path_of(login(other_client)) == "/login/verify"


def test_the_token_only_skips_for_its_own_user(client: TestClient, settings: Settings,
                                               verify: CountingVerify) -> None:
    two_step_user(client, verify)
    remembered_sign_in(client, verify)
    logout(client)
    from tests.support import make_2fa_user

    device = client.cookies.get("device")
    make_2fa_user(client, settings, "bob", phone="+14155550199")
    client.cookies.set("device", device or "")
    assert path_of(login(client, "bob")) == "/login/verify"


def test_sign_out_keeps_the_device_cookie_of_a_remembered_browser(client: TestClient,
                                                                  verify: CountingVerify) -> None:
    two_step_user(client, verify)
    remembered_sign_in(client, verify)
    r = token_post(client, "/logout")
    assert r.headers["clear-site-data"] == '"cache", "storage"'


def test_profile_lists_remembered_browsers_and_forgets_one(client: TestClient, other_client: TestClient,
                                                           settings: Settings, verify: CountingVerify) -> None:
    two_step_user(client, verify)
    remembered_sign_in(client, verify)
    remembered_sign_in(other_client, verify)
    page = client.get("/profile").text
    assert "Remembered browsers" in page and "(this browser)" in page and page.count("Forget<span") == 2
    mine, theirs = (b["id"] for b in live_browsers(settings))
    r = form_post(client, f"/browsers/{theirs}/forget", page)
    assert "notice=browser-forgotten" in location(r)
    assert [b["id"] for b in live_browsers(settings)] == [mine]
    logout(other_client)
    assert path_of(login(other_client)) == "/login/verify"


def test_forget_all_includes_this_browser_and_drops_its_cookie(client: TestClient, settings: Settings,
                                                               verify: CountingVerify) -> None:
    two_step_user(client, verify)
    remembered_sign_in(client, verify)
    r = form_post(client, "/browsers/forget-all", client.get("/profile").text)
    assert "notice=browsers-forgotten" in location(r)
    assert any(h.startswith("device=") and "Max-Age=0" in h for h in r.headers.get_list("set-cookie"))
    assert live_browsers(settings) == []


def _sign_out_everywhere(client: TestClient, verify: CountingVerify) -> None:
    assert token_post(client, "/sessions/end-all").status_code == 303


def _change_password(client: TestClient, verify: CountingVerify) -> None:
    r = form_post(client, "/account/password", client.get("/account/password").text,
                  {"current_password": PASSWORD, "new_password": NEW_PASSWORD, "new_password_confirm": NEW_PASSWORD})
    assert r.status_code == 303, r.text


def _remove_a_method(client: TestClient, verify: CountingVerify) -> None:
    add_app(client)
    page = client.get("/profile").text
    phone_id = page.split("/2fa/methods/")[1].split("/")[0]
    r = form_post(client, f"/2fa/methods/{phone_id}/remove", page, {"password": PASSWORD})
    assert "notice=method-removed" in location(r)


def _turn_two_step_off(client: TestClient, verify: CountingVerify) -> None:
    r = follow(client, form_post(client, "/2fa/disable", client.get("/2fa/disable").text, {"password": PASSWORD}))
    assert "notice=twofa-off" in location(form_post(client, "/2fa/verify", r.text, {"code": verify.code}))


@pytest.mark.parametrize("event", [_sign_out_everywhere, _change_password, _remove_a_method, _turn_two_step_off],
                         ids=["sign-out-everywhere", "password-change", "method-removed", "two-step-off"])
def test_remembered_browsers_are_forgotten_by(client: TestClient, other_client: TestClient, settings: Settings,
                                              verify: CountingVerify,
                                              event: Callable[[TestClient, CountingVerify], None]) -> None:
    two_step_user(client, verify)
    remembered_sign_in(other_client, verify)  # the browser that should be forgotten
    assert path_of(login(client)) == "/login/verify"
    form_post(client, "/login/verify", client.get("/login/verify").text, {"code": verify.code})
    event(client, verify)
    assert live_browsers(settings) == []
    forgotten = rows(settings, "SELECT revoked_at FROM remembered_browsers")
    assert forgotten and all(b["revoked_at"] is not None for b in forgotten)


def test_the_checkbox_is_not_offered_outside_sign_in(client: TestClient, verify: CountingVerify) -> None:
    signup(client)
    r = follow(client, form_post(client, "/2fa/enable", client.get("/2fa/enable").text, {"password": PASSWORD}))
    r = follow(client, form_post(client, "/2fa/phone-number", r.text, {"region": "US", "phone": "(415) 555-0123"}))
    assert "Don't ask again" not in r.text
