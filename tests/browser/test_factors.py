"""More ways to prove it's you, in Chromium: an authenticator app (JavaScript on and off), "Try another way",
"Don't ask again on this browser", and passkeys through Chromium's virtual authenticator (CDP WebAuthn domain:
ctap2, internal transport, resident keys, user verification). axe-core checks each page and each swap."""

from __future__ import annotations

import re
import time

import pyotp
import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import NewContext
from tests.browser.flows import (
    Shots,
    assert_accessible,
    assert_full_document,
    fill_login,
    logout,
    register_and_login,
)
from tests.browser.twofactor_flows import (
    expect_code_step,
    latest,
    start_action,
    step_up,
    submit_code,
    submit_phone,
    unique_phone,
)

pytestmark = pytest.mark.browser


def localhost(server: str) -> str:
    """The origin APP_BASE_URL names (the conftest sets it): WebAuthn refuses 127.0.0.1."""
    return server.replace("127.0.0.1", "localhost")


def _mode(javascript: bool) -> str:
    return "js" if javascript else "nojs"


# --- an authenticator app ------------------------------------------------------------------------------------------

def set_up_app(page: Page, shots: Shots, mode: str, label: str = "My phone") -> pyotp.TOTP:
    page.goto("/profile")
    start_action(page, "Set up an authenticator app")
    step_up(page)
    qr = page.get_by_role("img", name=re.compile("QR code to add"))
    expect(qr).to_be_visible()
    expect(page.get_by_text("Can't scan? Enter this key")).to_be_visible()
    key = page.locator("code.setup-key").inner_text().replace(" ", "")
    assert re.fullmatch(r"[A-Z2-7]{32}", key), key
    assert_full_document(page)
    assert_accessible(page, f"app setup ({mode})")
    shots(page, "app-setup")
    totp = pyotp.TOTP(key)
    page.get_by_label("Name for this app (optional)").fill(label)
    page.get_by_label("Enter the 6-digit code").fill(totp.at(time.time() - 30))  # the previous step: drift allowed
    page.get_by_role("button", name="Confirm and save").click()
    return totp


def test_authenticator_app_setup_and_sign_in(page: Page, javascript: bool, shots: Shots) -> None:
    mode = _mode(javascript)
    register_and_login(page, "app")
    totp = set_up_app(page, shots, mode)
    expect(page.get_by_role("heading", name="Save your recovery codes")).to_be_visible()  # the first method
    page.get_by_role("link", name="I've saved them – back to my profile").click()
    methods = page.locator("ul.methods")
    expect(methods).to_contain_text("My phone")
    expect(methods).to_contain_text("Authenticator app")
    assert totp.secret not in page.content()  # never on a page after setup
    shots(page, "profile-with-app")
    username = page.locator(".facts dd").first.inner_text()
    logout(page)
    fill_login(page, username)
    expect_code_step(page, "Enter the code from your app")
    expect(page.get_by_role("button", name="Resend code")).to_have_count(0)
    assert_accessible(page, f"app code step ({mode})")
    shots(page, "app-code-step")
    submit_code(page, totp.now())
    expect(page).to_have_url(re.compile(r"/profile$"))
    expect(page.locator("table.activity")).to_contain_text("Signed in (authenticator app)")


# --- try another way, and remember this browser -----------------------------------------------------------------

def user_with_app_and_phone(page: Page, shots: Shots, mode: str) -> tuple[str, pyotp.TOTP, object]:
    username = register_and_login(page, "ways")
    totp = set_up_app(page, shots, mode)
    page.get_by_role("link", name="I've saved them – back to my profile").click()
    number = unique_phone()
    start_action(page, "Add a phone")
    step_up(page)
    submit_phone(page, number)
    expect_code_step(page, "Confirm your phone")
    submit_code(page, latest(page, number).code)
    expect(page.locator("#flash")).to_contain_text("The new way to sign in is ready")
    logout(page)
    return username, totp, number


def test_try_another_way(page: Page, javascript: bool, shots: Shots) -> None:
    mode = _mode(javascript)
    username, _, number = user_with_app_and_phone(page, shots, mode)
    fill_login(page, username)
    expect_code_step(page, "Enter the code from your app")  # the strongest method, none used yet
    page.get_by_role("link", name="Try another way").click()
    expect(page.get_by_role("heading", name="Choose another way to sign in")).to_be_visible()
    expect(page).to_have_url(re.compile(r"/login/another-way$"))
    for way in ("Use your authenticator app", "Text me a code", "Call me with a code"):
        expect(page.get_by_role("button", name=way)).to_be_visible()
    expect(page.get_by_role("link", name="Use a recovery code")).to_be_visible()
    assert_full_document(page)
    assert_accessible(page, f"another way ({mode})")
    shots(page, "another-way")
    page.get_by_role("button", name="Text me a code").click()
    expect_code_step(page)
    expect(page.locator("#code-hint")).to_contain_text("sent a text message to the number ending")
    assert_accessible(page, f"switched to SMS ({mode})")
    submit_code(page, latest(page, number).code)  # type: ignore[arg-type]
    expect(page).to_have_url(re.compile(r"/profile$"))


def test_remember_and_forget_this_browser(page: Page, javascript: bool, shots: Shots) -> None:
    mode = _mode(javascript)
    username = register_and_login(page, "remember")
    totp = set_up_app(page, shots, mode)
    page.get_by_role("link", name="I've saved them – back to my profile").click()
    logout(page)
    fill_login(page, username)
    expect_code_step(page, "Enter the code from your app")
    page.get_by_label("Don't ask again on this browser for 30 days").check()
    shots(page, "remember-checkbox")
    submit_code(page, totp.now())
    expect(page).to_have_url(re.compile(r"/profile$"))
    logout(page)
    fill_login(page, username)
    expect(page).to_have_url(re.compile(r"/profile$"))  # no second step on this browser
    browsers = page.locator("ul.browsers")
    expect(browsers).to_contain_text("(this browser)")
    assert_accessible(page, f"remembered browsers ({mode})")
    shots(page, "remembered-browsers")
    browsers.get_by_role("button", name=re.compile("^Forget")).click()
    expect(page.locator("#flash")).to_contain_text("will be asked for the second step again")
    expect(page.locator("ul.browsers")).to_have_count(0)
    logout(page)
    fill_login(page, username)
    expect_code_step(page, "Enter the code from your app")


# --- passkeys ----------------------------------------------------------------------------------------------------

def virtual_authenticator(page: Page) -> object:
    """Chromium's virtual authenticator on this page: a platform authenticator that keeps resident keys and
    verifies the user, answering without a prompt."""
    cdp = page.context.new_cdp_session(page)
    cdp.send("WebAuthn.enable", {"enableUI": False})
    cdp.send("WebAuthn.addVirtualAuthenticator", {"options": {
        "protocol": "ctap2", "transport": "internal", "hasResidentKey": True, "hasUserVerification": True,
        "isUserVerified": True, "automaticPresenceSimulation": True}})
    return cdp


def test_passkeys_add_second_step_passwordless_and_remove(new_context: NewContext, server: str,
                                                          shots: Shots) -> None:
    page = new_context(True, base_url=localhost(server)).new_page()
    virtual_authenticator(page)
    username = register_and_login(page, "passkey")
    start_action(page, "Add a passkey")
    step_up(page)
    expect(page.get_by_role("heading", name="Add a passkey")).to_be_visible()
    expect(page.get_by_text("needs a browser with JavaScript")).to_be_hidden()
    assert_accessible(page, "add a passkey")
    shots(page, "add-passkey")
    page.get_by_label("Name for this passkey").fill("Test laptop")
    page.get_by_role("button", name="Create passkey").click()
    expect(page.get_by_role("heading", name="Save your recovery codes")).to_be_visible()
    page.get_by_role("link", name="I've saved them – back to my profile").click()
    expect(page.locator("ul.methods")).to_contain_text("Test laptop")
    assert_accessible(page, "profile with a passkey")
    shots(page, "profile-with-passkey")

    logout(page)  # the second step
    fill_login(page, username)
    expect(page.locator("#code-heading")).to_have_text("Use your passkey")
    assert_accessible(page, "passkey step")
    shots(page, "passkey-step")
    page.get_by_role("button", name="Use your passkey").click()
    expect(page).to_have_url(re.compile(r"/profile$"))

    logout(page)  # passwordless
    expect(page.get_by_role("button", name="Sign in with a passkey")).to_be_visible()
    shots(page, "sign-in-with-a-passkey")
    page.get_by_role("button", name="Sign in with a passkey").click()
    expect(page).to_have_url(re.compile(r"/profile$"))
    expect(page.locator("table.activity")).to_contain_text("Signed in (passkey)")

    # Removing the only method is turning two-step off: the password, then the passkey again.
    page.locator("ul.methods").get_by_role("link", name=re.compile("^Remove")).click()
    expect(page.get_by_text("This is your only way to sign in")).to_be_visible()
    assert_accessible(page, "remove the only passkey")
    page.get_by_role("link", name="Turn off two-step verification").click()
    step_up(page)
    expect(page.locator("#code-heading")).to_have_text("Use your passkey")
    assert_accessible(page, "passkey to turn two-step off (swapped in)")
    page.locator("#twofa").get_by_role("button", name="Use your passkey").click()
    expect(page.locator("#flash")).to_contain_text("Two-step verification is off")
    expect(page.locator("ul.methods")).to_have_count(0)
    assert_accessible(page, "profile after turning two-step off with a passkey")


def test_passkey_controls_say_javascript_is_needed(new_context: NewContext, server: str, shots: Shots) -> None:
    page = new_context(False, base_url=localhost(server)).new_page()
    page.goto("/login")
    expect(page.get_by_role("button", name="Sign in with a passkey")).to_be_hidden()
    expect(page.get_by_text("Signing in with a passkey needs a browser with JavaScript turned on")).to_be_visible()
    register_and_login(page, "nojs-passkey")
    start_action(page, "Add a passkey")
    step_up(page)
    expect(page.get_by_text("Adding a passkey needs a browser with JavaScript turned on")).to_be_visible()
    expect(page.get_by_role("button", name="Create passkey")).to_be_hidden()
    assert_accessible(page, "add a passkey without JavaScript")
    shots(page, "add-passkey-nojs")


def test_passkeys_are_not_offered_at_another_origin(js_page: Page) -> None:
    register_and_login(js_page, "elsewhere")  # at 127.0.0.1, not APP_BASE_URL's localhost
    expect(js_page.locator("#twofa").get_by_role("button", name="Add a passkey")).to_have_count(0)
    expect(js_page.get_by_text("Passkeys can be added at")).to_be_visible()
