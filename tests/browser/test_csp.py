"""No Content-Security-Policy violation in the console (style-src 'self', no inline styles), JavaScript on."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.browser.flows import CspWatch, Shots
from tests.browser.twofactor_flows import latest, login_to_code_step, register_with_2fa, submit_code, wrong_code

pytestmark = pytest.mark.browser

# What a password manager, an autofill extension or Playwright's own screenshot does to a field: an inline style
# set through CSSOM (which the CSP allows), leaving a style attribute behind, empty or not.
DECORATE = "(el) => { el.style.caretColor = 'transparent'; el.style.removeProperty('caret-color'); }"


def test_sign_in_with_a_wrong_code_then_the_right_one_violates_no_csp(js_page: Page, shots: Shots) -> None:
    page = js_page
    csp = CspWatch(page)
    user = register_with_2fa(page, "csp")
    csp.assert_none("while registering and turning on two-step verification")

    login_to_code_step(page, user.username)
    shots(page, "code-step")
    page.locator("#code").evaluate(DECORATE)
    csp.assert_none("at the code step")

    code = latest(page, user.number).code
    submit_code(page, wrong_code(code))
    expect(page.locator("#code-error")).to_be_visible()
    expect(page.locator("#code")).to_be_focused()
    # htmx 4's settle step used to copy the old #code's style attribute onto the new one here (setAttribute).
    csp.assert_none("on the wrong-code swap")
    shots(page, "wrong-code")

    submit_code(page, code)
    expect(page).to_have_url(re.compile(r"/profile$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Your profile")
    csp.assert_none("after the right code")
