"""axe-core on every page, and signing in with the keyboard alone behind a visible focus ring."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.browser.flows import (
    PASSWORD,
    Shots,
    assert_accessible,
    assert_full_document,
    focus_indicator,
    focused_id,
    register,
    register_and_login,
    unique_username,
)

pytestmark = pytest.mark.browser


def test_every_page_passes_axe(page: Page, javascript: bool, shots: Shots) -> None:
    mode = "js" if javascript else "nojs"
    for path, name in (("/login", "login"), ("/register", "register"), ("/no-such-page", "not-found")):
        response = page.goto(path)
        assert response is not None
        assert response.status == (404 if name == "not-found" else 200)
        assert_full_document(page)
        assert_accessible(page, f"{name}-{mode}")
        shots(page, name)
    expect(page.get_by_role("heading", level=1)).to_have_text("Page not found")

    register_and_login(page, "axe")
    assert_accessible(page, f"profile-{mode}")
    shots(page, "profile")


def _assert_ring(page: Page, step: str) -> None:
    ring = focus_indicator(page)
    assert ring["visible"], f"{step}: no visible focus indicator on the focused element: {ring}"


def test_keyboard_only_sign_in(js_page: Page, shots: Shots) -> None:
    page = js_page
    username = unique_username("keys")
    register(page, username)
    page.goto("/login")
    expect(page.locator("#username")).to_be_focused()  # autofocus
    _assert_ring(page, "autofocus")

    # Walk back to the first control on the page (the skip link), then Tab forward to the field again:
    # every stop on the way, header links included, must show a focus ring.
    for step in range(1, 10):
        page.keyboard.press("Shift+Tab")
        _assert_ring(page, f"Shift+Tab {step}")
        if page.evaluate("document.activeElement.classList.contains('skip-link')"):
            break
    expect(page.get_by_role("link", name="Skip to content")).to_be_focused()
    expect(page.get_by_role("link", name="Skip to content")).to_be_in_viewport()  # shown while focused
    visited = []
    for _ in range(10):
        page.keyboard.press("Tab")
        visited.append(focused_id(page) or page.evaluate("document.activeElement.textContent.trim()"))
        _assert_ring(page, f"Tab {len(visited)}")
        if focused_id(page) == "username":
            break
    assert focused_id(page) == "username", f"Tab never reached the username field; visited {visited}"
    shots(page, "tab-to-username")
    page.keyboard.type(username)

    page.keyboard.press("Tab")
    expect(page.locator("#password")).to_be_focused()
    _assert_ring(page, "password")
    page.keyboard.type(PASSWORD)
    shots(page, "typed")

    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/profile$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Your profile")
    assert_full_document(page)
    shots(page, "profile")
