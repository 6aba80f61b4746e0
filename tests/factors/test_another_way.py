""""Try another way" at the sign-in code step, and the method it starts with: the most recently used, or the
strongest when none was used (passkey > app > SMS)."""

from __future__ import annotations

from starlette.testclient import TestClient

from tests.factors.kit import add_app
from tests.support import (
    PARTIAL,
    PASSWORD,
    CountingVerify,
    enroll,
    execute,
    follow,
    form_post,
    latest_challenge,
    location,
    login,
    logout,
    path_of,
    signup,
)
from webapp.settings import Settings


def phone_and_app(client: TestClient, verify: CountingVerify) -> object:
    signup(client)
    enroll(client, lambda: verify.code)
    app, _ = add_app(client)
    logout(client)
    return app


def test_the_strongest_method_comes_first_when_none_was_used(client: TestClient, settings: Settings,
                                                             verify: CountingVerify) -> None:
    phone_and_app(client, verify)
    execute(settings, "UPDATE authenticators SET last_used_at = NULL")
    sent = len(verify.starts)
    assert path_of(login(client)) == "/login/verify"
    assert latest_challenge(settings)["method"] == "totp" and len(verify.starts) == sent  # nothing texted


def test_the_most_recently_used_method_comes_first(client: TestClient, settings: Settings,
                                                   verify: CountingVerify) -> None:
    phone_and_app(client, verify)
    execute(settings, "UPDATE authenticators SET last_used_at = CURRENT_TIMESTAMP WHERE kind = 'sms'")
    sent = len(verify.starts)
    login(client)
    assert latest_challenge(settings)["method"] == "sms" and len(verify.starts) == sent + 1


def test_try_another_way_lists_the_others_without_javascript(client: TestClient, verify: CountingVerify) -> None:
    phone_and_app(client, verify)
    login(client)
    step = client.get("/login/verify").text
    assert 'href="/login/another-way"' in step and "Try another way" in step
    page = client.get("/login/another-way")
    assert page.status_code == 200 and "<html" in page.text
    for label in ("Use your authenticator app", "Text me a code", "Call me with a code", "Use a recovery code"):
        assert label in page.text
    assert "Use a passkey" not in page.text  # this user has none
    r = form_post(client, "/login/another-way", page.text, {"way": "sms"})
    assert location(r) == "/login/verify?notice=code-sent"
    assert "We sent a code to the number ending 23" in client.get(location(r)).text
    r = form_post(client, "/login/verify", client.get("/login/verify").text, {"code": verify.code})
    assert path_of(r) == "/profile"


def test_try_another_way_swaps_in_place_with_htmx(client: TestClient, settings: Settings,
                                                  verify: CountingVerify) -> None:
    app = phone_and_app(client, verify)
    execute(settings, "UPDATE authenticators SET last_used_at = CURRENT_TIMESTAMP WHERE kind = 'sms'")
    login(client)
    page = client.get("/login/another-way", headers=PARTIAL)
    assert "<html" not in page.text and 'id="auth-step"' in page.text
    assert page.headers["hx-push-url"] == "/login/another-way"
    r = form_post(client, "/login/another-way", page.text, {"way": "totp"}, headers=PARTIAL)
    assert r.status_code == 200 and "Enter the code from your app" in r.text and "<html" not in r.text
    r = form_post(client, "/login/verify", r.text, {"code": app.code(1)})  # type: ignore[attr-defined]
    assert path_of(r) == "/profile"


def test_a_call_from_try_another_way(client: TestClient, verify: CountingVerify) -> None:
    phone_and_app(client, verify)
    login(client)
    r = form_post(client, "/login/another-way", client.get("/login/another-way").text, {"way": "call"},
                  headers=PARTIAL)
    assert r.status_code == 200 and "We are calling the number ending 23" in r.text
    assert verify.starts[-1][1] == "call"


def test_a_way_the_user_does_not_have_is_refused(client: TestClient, verify: CountingVerify) -> None:
    phone_and_app(client, verify)
    login(client)
    r = form_post(client, "/login/another-way", client.get("/login/another-way").text, {"way": "webauthn"})
    assert r.status_code == 422 and "Choose one of the ways listed" in r.text


def test_without_a_pending_sign_in_it_goes_back_to_the_start(client: TestClient) -> None:
    assert path_of(client.get("/login/another-way")) == "/login"


def test_turning_two_step_off_can_switch_to_a_text_message(client: TestClient, settings: Settings,
                                                           verify: CountingVerify) -> None:
    signup(client)
    enroll(client, lambda: verify.code)
    add_app(client)
    execute(settings, "UPDATE authenticators SET last_used_at = NULL")
    r = follow(client, form_post(client, "/2fa/disable", client.get("/2fa/disable").text, {"password": PASSWORD}))
    assert "Enter the code from your app" in r.text and 'href="/2fa/another-way"' in r.text
    page = client.get("/2fa/another-way")
    assert "Choose another way to confirm it" in page.text and "Text me a code" in page.text
    r = follow(client, form_post(client, "/2fa/another-way", page.text, {"way": "sms"}))
    assert "sent a text message to the number ending 23" in r.text
    r = form_post(client, "/2fa/verify", r.text, {"code": verify.code})
    assert "notice=twofa-off" in location(r)
