"""Register, sign in and sign out in a real browser, with JavaScript on (htmx swaps) and off (plain forms)."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.browser.flows import (
    Navigations,
    Shots,
    assert_accessible,
    assert_field_error,
    assert_full_document,
    assert_not_invalid,
    fill_login,
    fill_register,
    login,
    logout,
    marker_survived,
    register,
    register_and_login,
    set_marker,
    unique_username,
)

pytestmark = pytest.mark.browser


def _error_arrived(page: Page, javascript: bool, navigations: Navigations, before: int) -> None:
    """With JS the error is swapped in place (same document, no navigation); without, it is a new 422 page."""
    if javascript:
        assert marker_survived(page), "the error page replaced the document: expected an in-place htmx swap"
        assert navigations.count == before, "a new document loaded: expected an in-place htmx swap"
    else:
        assert navigations.count > before, "no navigation: the no-JS form did not post"
    assert_full_document(page)


def _wait_until(page: Page, condition: str, timeout_ms: int = 5000) -> None:
    for _ in range(timeout_ms // 50):
        if page.evaluate(condition):
            return
        page.wait_for_timeout(50)
    raise AssertionError(f"timed out waiting for {condition}")


def test_register_sign_in_sign_out(page: Page, shots: Shots) -> None:
    username = unique_username("happy")
    page.goto("/register")
    assert_full_document(page)
    shots(page, "register")
    register(page, username)
    assert_full_document(page)
    shots(page, "registered")

    login(page, username)
    assert_full_document(page)
    expect(page.locator(".facts")).to_contain_text(username)
    expect(page).to_have_title(re.compile(r"^Your profile"))
    shots(page, "profile")

    # Signing out is a POST form with a real button, never a link a cross-site GET could follow.
    sign_out = page.get_by_role("button", name="Sign out", exact=True)
    expect(sign_out).to_have_attribute("type", "submit")
    form = page.locator("form:has(button:text-is('Sign out'))")
    expect(form).to_have_attribute("method", "post")
    expect(form).to_have_attribute("action", "/logout")
    assert page.locator("a[href*='logout']").count() == 0
    logout(page)
    assert_full_document(page)
    shots(page, "signed-out")
    page.goto("/profile")
    expect(page).to_have_url(re.compile(r"/login\?next=/profile"))


def test_register_errors_sit_next_to_their_fields(page: Page, javascript: bool, shots: Shots) -> None:
    navigations = Navigations(page)
    page.goto("/register")
    if javascript:
        set_marker(page)

    # Too short: the password field, not the form, carries the error.
    username = unique_username("errors")
    before = navigations.count
    fill_register(page, username, "short")
    expect(page.locator("#password-error")).to_contain_text("at least 15 characters")
    _error_arrived(page, javascript, navigations, before)
    assert_field_error(page, "password", "at least 15 characters")
    for other in ("username", "email", "password_confirm"):
        assert_not_invalid(page, other)
    expect(page.locator("#password")).to_be_focused()
    expect(page.locator("#username")).to_have_value(username)  # typed values kept ...
    expect(page.locator("#password")).to_have_value("")  # ... except secrets
    expect(page.locator(".error-summary a[href='#password']")).to_contain_text("at least 15 characters")
    if javascript:
        expect(page).to_have_title(re.compile(r"^Error: Create an account"))
    assert_accessible(page, f"register-short-password-{javascript}")
    shots(page, "short-password")

    # Confirmation differs: the error moves to the confirmation field.
    before = navigations.count
    fill_register(page, username, confirm="violet-harbour-lantern-48")
    expect(page.locator("#password_confirm-error")).to_contain_text("don't match")
    _error_arrived(page, javascript, navigations, before)
    assert_field_error(page, "password_confirm", "don't match")
    assert_not_invalid(page, "password")
    expect(page.locator("#password_confirm")).to_be_focused()
    assert_accessible(page, f"register-mismatch-{javascript}")
    shots(page, "mismatch")

    # A taken username: register it for real, then try again.
    register(page, username)
    page.goto("/register")
    if javascript:
        set_marker(page)
    before = navigations.count
    fill_register(page, username.upper())
    expect(page.locator("#username-error")).to_contain_text("taken")
    _error_arrived(page, javascript, navigations, before)
    assert_field_error(page, "username", "taken")
    expect(page.locator("#username")).to_be_focused()
    assert_accessible(page, f"register-taken-{javascript}")
    shots(page, "taken")


def test_login_error_is_announced_and_focused(page: Page, javascript: bool, shots: Shots) -> None:
    username = unique_username("wrongpw")
    register(page, username)
    navigations = Navigations(page)
    if javascript:
        set_marker(page)
    before = navigations.count
    fill_login(page, username, "not-the-right-password-at-all")
    error = page.locator("#login-error")
    expect(error).to_have_text("Incorrect username or password.")
    expect(error).to_have_attribute("role", "alert")
    _error_arrived(page, javascript, navigations, before)
    for field in ("username", "password"):
        assert_field_error(page, field, "Incorrect username or password.")
    expect(page.locator("#username")).to_be_focused()
    expect(page.locator("#username")).to_have_value(username)
    expect(page.locator("#password")).to_have_value("")
    expect(page).to_have_url(re.compile(r"/login"))
    assert_accessible(page, f"login-error-{javascript}")
    shots(page, "login-error")

    # Then the right password still works from the re-rendered form.
    login(page, username)
    assert_full_document(page)


def test_back_and_reload_after_sign_out_show_whole_pages(page: Page, javascript: bool, shots: Shots) -> None:
    register_and_login(page, "back")
    # Follow a boosted link once, so with htmx /profile also sits in history as an htmx-pushed entry.
    page.get_by_role("navigation", name="Account").get_by_role("link", name="Profile").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Your profile")
    logout(page)

    page.go_back()
    expect(page.get_by_role("heading", level=1)).to_have_text("Sign in")
    expect(page).to_have_url(re.compile(r"/login"))
    assert_full_document(page)
    expect(page.get_by_text("Your profile")).to_have_count(0)
    shots(page, "back")

    page.reload()
    expect(page.get_by_role("heading", level=1)).to_have_text("Sign in")
    assert_full_document(page)
    shots(page, "back-reload")


def _signed_out_behind_an_htmx_history_entry(page: Page, server: str) -> None:
    """Leave /profile in history as an htmx-pushed entry, then sign out without loading a new document."""
    register_and_login(page, "restore")
    entries = page.evaluate("history.length")
    page.get_by_role("navigation", name="Account").get_by_role("link", name="Profile").click()
    _wait_until(page, f"history.length > {entries}")  # wait_for_function would need 'unsafe-eval' under our CSP
    set_marker(page)
    # Sign out behind the page's back (as another tab would), so the next Back stays inside this document.
    token = page.locator("input[name=csrf_token]").first.get_attribute("value")
    answer = page.request.post("/logout", form={"csrf_token": token or ""}, headers={"Origin": server},
                               max_redirects=0)
    assert answer.status == 303, answer.status


def test_history_restore_of_profile_after_sign_out_lands_on_login(js_page: Page, server: str, shots: Shots) -> None:
    """htmx's own history restore (a same-document Back) asks for /profile again: it gets HX-Redirect to sign-in,
    so the address bar and the page agree (a silently followed 303 would leave /profile showing)."""
    page = js_page
    _signed_out_behind_an_htmx_history_entry(page, server)
    with page.expect_request(lambda r: r.headers.get("hx-history-restore-request") == "true") as restore:
        page.go_back()
    assert restore.value.url.endswith("/profile")
    expect(page).to_have_url(re.compile(r"/login\?next=/profile$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Sign in")
    assert_full_document(page)
    assert page.locator("html").count() == 1 and page.locator("body body, main main").count() == 0
    assert_accessible(page, "history-restore")
    shots(page, "restored")

    page.reload()
    expect(page).to_have_url(re.compile(r"/login\?next=/profile"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Sign in")
    assert_full_document(page)
