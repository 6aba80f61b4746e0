"""Sessions across devices: "Sign out everywhere" ends the other browser's session too."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import NewContext
from tests.browser.flows import Shots, assert_full_document, login, register_and_login

pytestmark = pytest.mark.browser


def test_sign_out_everywhere_ends_the_other_device(new_context: NewContext, javascript: bool, shots: Shots) -> None:
    laptop = new_context(javascript).new_page()
    phone = new_context(javascript).new_page()
    username = register_and_login(laptop, "everywhere")
    login(phone, username)
    laptop.reload()
    expect(laptop.locator(".sessions li")).to_have_count(2)
    expect(laptop.locator(".sessions li", has_text="(this device)")).to_have_count(1)
    shots(laptop, "two-sessions")

    laptop.get_by_role("button", name="Sign out everywhere").click()
    expect(laptop).to_have_url(re.compile(r"/login\?notice=signed-out-everywhere$"))
    expect(laptop.locator("#flash")).to_contain_text("signed out on every device")
    assert_full_document(laptop)
    shots(laptop, "laptop-signed-out")

    phone.reload()
    expect(phone).to_have_url(re.compile(r"/login\?next=/profile"))
    expect(phone.get_by_role("heading", level=1)).to_have_text("Sign in")
    assert_full_document(phone)
    shots(phone, "phone-signed-out")
    laptop.goto("/profile")
    expect(laptop).to_have_url(re.compile(r"/login\?next=/profile"))
