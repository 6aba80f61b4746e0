"""'Forgot your password?' in a real browser, JavaScript on (the form swaps in place) and off (POST → 303 → GET):
the mail from the development outbox, its link, the new password, then the ordinary sign-in. axe stays clean."""

from __future__ import annotations

import html
import os
import re
import time

import pytest
from playwright.sync_api import Page, expect

from tests.browser.flows import (
    PASSWORD,
    ROOT,
    Navigations,
    Shots,
    assert_accessible,
    assert_field_error,
    assert_full_document,
    login,
    marker_survived,
    register,
    set_marker,
    unique_username,
)

pytestmark = pytest.mark.browser
NEW_PASSWORD = "copper-meadow-violin-83"
# `UPDATE_SCREENSHOTS=1 pytest tests/browser/test_mail.py` refreshes the README's picture of the reset page.
DOCS_SHOT = ROOT / "docs" / "screenshots" / "reset-password.png"


def mailed_link(page: Page, to: str, prefix: str, timeout: float = 10.0) -> str:
    """The path of the newest `prefix` link mailed to `to`, read from the development outbox (bounded wait)."""
    pattern = re.compile(r"To <strong>" + re.escape(to) + r"</strong>.*?<a href=\"https?://[^/\"]+(" +
                         re.escape(prefix) + r"[^\"]+)\"", re.S)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = pattern.search(page.context.request.get("/dev/outbox").text())
        if found:
            return html.unescape(found.group(1))
        time.sleep(0.1)
    raise AssertionError(f"no {prefix} link for {to} in the development outbox")


def test_forgot_your_password_then_reset(page: Page, javascript: bool, shots: Shots) -> None:
    mode = "js" if javascript else "nojs"
    username = unique_username("forgot")
    register(page, username)
    page.goto("/login")
    page.get_by_role("link", name="Forgot your password?").click()
    expect(page).to_have_url(re.compile(r"/password/forgot$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Forgot your password?")
    assert_full_document(page)
    assert_accessible(page, f"forgot-{mode}")
    shots(page, "forgot")

    navigations = Navigations(page)
    set_marker(page)
    before = navigations.count
    page.get_by_label("Email address").fill("not-an-address")
    page.get_by_role("button", name="Send the link").click()
    assert_field_error(page, "email", "Enter an email address like name@example.com.")
    assert marker_survived(page) == javascript  # swapped in place with JavaScript, a 422 page without

    page.get_by_label("Email address").fill(f"{username}@example.com")
    page.get_by_role("button", name="Send the link").click()
    expect(page.get_by_role("heading", name="Check your email")).to_be_visible()
    if javascript:
        assert marker_survived(page), "expected the form to swap in place"
        expect(page).to_have_url(re.compile(r"/password/forgot$"))
    else:
        assert navigations.count > before
        expect(page).to_have_url(re.compile(r"/password/forgot/sent$"))
    assert_full_document(page)
    assert_accessible(page, f"forgot-sent-{mode}")
    shots(page, "sent")

    page.goto(mailed_link(page, f"{username}@example.com", "/password/reset/"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Choose a new password")
    assert_accessible(page, f"reset-{mode}")
    if javascript and os.environ.get("UPDATE_SCREENSHOTS") == "1":
        page.screenshot(path=str(DOCS_SHOT))
    shots(page, "reset")
    page.get_by_label("New password", exact=True).fill(NEW_PASSWORD)
    page.get_by_label("Confirm new password").fill(NEW_PASSWORD + "x")
    page.get_by_role("button", name="Change password").click()
    assert_field_error(page, "new_password_confirm", "The two passwords don't match.")
    assert_accessible(page, f"reset-error-{mode}")
    page.get_by_label("New password", exact=True).fill(NEW_PASSWORD)
    page.get_by_label("Confirm new password").fill(NEW_PASSWORD)
    page.get_by_role("button", name="Change password").click()
    expect(page).to_have_url(re.compile(r"/login\?notice=password-reset$"))
    expect(page.locator("#flash")).to_contain_text("Your password has been reset")
    login(page, username, NEW_PASSWORD)

    page.goto(mailed_link(page, f"{username}@example.com", "/password/reset/"))
    expect(page.get_by_role("heading", level=1)).to_have_text("This link no longer works")
    assert_accessible(page, f"link-used-{mode}")


def test_verify_the_address_and_this_wasnt_me(page: Page, javascript: bool, shots: Shots) -> None:
    """The profile's "not verified", the mailed link's confirm page, then "This wasn't me" from a notice."""
    mode = "js" if javascript else "nojs"
    username = unique_username("verify")
    register(page, username)
    login(page, username)
    expect(page.locator("#email-status")).to_contain_text("not verified")
    page.get_by_role("button", name="Send the link again").click()
    expect(page.locator("#flash")).to_contain_text("We sent a new")  # in place with JS, after the 303 without
    assert_accessible(page, f"profile-unverified-{mode}")

    page.goto(mailed_link(page, f"{username}@example.com", "/email/verify/"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Confirm your email address")
    assert_accessible(page, f"verify-link-{mode}")
    page.get_by_role("button", name="Confirm my address").click()
    expect(page).to_have_url(re.compile(r"/profile\?notice=email-verified$"))
    expect(page.locator("#email-status")).to_contain_text("verified")
    expect(page.locator("#email-status")).not_to_contain_text("not verified")

    page.get_by_role("link", name="Change email address").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Change your email address")
    assert_accessible(page, f"email-change-{mode}")
    page.get_by_label("New email address").fill(f"{username}-new@example.com")
    page.get_by_label("Your password").fill("wrong password")
    page.get_by_role("button", name="Change email address").click()
    assert_field_error(page, "password", "Your password isn't right.")
    page.get_by_label("Your password").fill(PASSWORD)
    page.get_by_role("button", name="Change email address").click()
    expect(page).to_have_url(re.compile(r"/profile\?notice=email-change-sent$"))

    page.goto(mailed_link(page, f"{username}@example.com", "/not-me/"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Secure your account")
    assert_accessible(page, f"not-me-{mode}")
    shots(page, "not-me")
    page.get_by_role("button", name="Sign out everywhere and secure my account").click()
    expect(page).to_have_url(re.compile(r"/account/secured$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Every device is signed out")
    assert_full_document(page)
    assert_accessible(page, f"not-me-done-{mode}")
    page.goto("/profile")
    expect(page).to_have_url(re.compile(r"/login"))
