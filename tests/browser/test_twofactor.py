"""Two-step verification in a real browser: enrolment, the sign-in code step, resend, recovery codes, expiry,
phone change, new recovery codes and turning it off — with JavaScript on (htmx swaps) and off (plain forms)."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, expect

from tests.browser.flows import (
    PASSWORD,
    Navigations,
    Shots,
    assert_accessible,
    assert_field_error,
    assert_full_document,
    focus_indicator,
    focused_id,
    logout,
    marker_survived,
    register_and_login,
    set_marker,
)
from tests.browser.twofactor_flows import (
    ServerDb,
    back_to_profile,
    expect_code_step,
    latest,
    login_to_code_step,
    open_server_db,
    outbox,
    phone,
    read_recovery_codes,
    register_with_2fa,
    start_action,
    step_up,
    submit_code,
    submit_phone,
    unique_phone,
    wrong_code,
)

pytestmark = pytest.mark.browser

MASKED_0123 = "+1 ••••••••23"


@pytest.fixture(scope="module")
def server_db(server: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerDb]:
    yield from open_server_db(tmp_path_factory.getbasetemp())


def _mode(javascript: bool) -> str:
    return "js" if javascript else "nojs"


def _arrived(page: Page, javascript: bool, navigations: Navigations, before: int) -> None:
    """With JS a step is swapped in place (same document, no load); without, it is a new full page."""
    if javascript:
        assert marker_survived(page), "the document was replaced: expected an in-place htmx swap"
        assert navigations.count == before, "a new document loaded: expected an in-place htmx swap"
    else:
        assert navigations.count > before, "no navigation: the no-JS form did not post"
    assert_full_document(page)


def _ring(page: Page, step: str) -> None:
    ring = focus_indicator(page)
    assert ring["visible"], f"{step}: no visible focus indicator: {ring}"


# --- 1. enrolment ---------------------------------------------------------------------------------------------------

def test_enable_two_factor(page: Page, javascript: bool, shots: Shots) -> None:
    mode = _mode(javascript)
    register_and_login(page, "enable")
    number = phone("415 555 0123")
    navigations = Navigations(page)
    if javascript:
        set_marker(page)
    before = navigations.count

    page.locator("#twofa").get_by_role("button", name="Enable two-factor authentication").click()
    expect(page.locator("#stepup-password")).to_be_visible()
    _arrived(page, javascript, navigations, before)
    if javascript:
        expect(page).to_have_url(re.compile(r"/profile$"))
        expect(page.locator("#twofa #stepup-password")).to_be_focused()
    else:
        expect(page).to_have_url(re.compile(r"/2fa/enable\??$"))
    expect(page.locator("#twofa-heading")).to_have_text("Turn on two-step verification")
    assert_accessible(page, f"2fa-enable-password-{mode}")
    shots(page, "password")

    before = navigations.count
    step_up(page)
    expect(page.locator("#region")).to_be_visible()
    _arrived(page, javascript, navigations, before)
    notice = page.locator("#sms-risk-notice")
    expect(notice).to_be_visible()
    expect(notice).to_contain_text("SIM swapping")
    expect(page.locator("#region option")).not_to_have_count(0)
    expect(page.locator("#region option[value=US]")).to_have_text(re.compile(r"\(\+1\)"))
    if javascript:
        expect(page.locator("#phone")).to_be_focused()
    assert_accessible(page, f"2fa-enable-phone-{mode}")
    shots(page, "phone")

    before = navigations.count
    submit_phone(page, number)
    expect_code_step(page, "Confirm your phone")
    _arrived(page, javascript, navigations, before)
    expect(page.locator("#code-hint")).to_contain_text("+14155550123")  # the full number, to catch a typo
    if javascript:
        expect(page.locator("#code")).to_be_focused()
        expect(page.locator("#flash")).to_contain_text("We sent a code to the number ending 23")
    assert_accessible(page, f"2fa-enable-code-{mode}")
    shots(page, "code")

    sent = latest(page, number)
    assert sent.channel == "sms"
    submit_code(page, sent.code)
    codes = read_recovery_codes(page)
    assert len(codes) == 10 and len(set(codes)) == 10, codes
    assert_full_document(page)
    download = page.get_by_role("link", name="Download as text file")
    expect(download).to_have_attribute("download", "recovery-codes.txt")
    href = download.get_attribute("href") or ""
    assert href.startswith("data:text/plain") and codes[0] in href, href[:80]
    copy = page.get_by_role("button", name="Copy codes", include_hidden=True)
    expect(copy).to_have_count(1)
    if javascript:
        expect(copy).to_be_visible()
    else:
        expect(copy).to_be_hidden()  # nothing to offer that cannot work
    expect(page.locator("#codes-text")).to_have_value(re.compile(re.escape(codes[-1])))
    expect(page).to_have_title(re.compile(r"^Two-step verification"))
    if javascript:  # the whole body was swapped (new CSRF token): focus goes to the heading, not lost on <body>
        expect(page.get_by_role("heading", name="Save your recovery codes")).to_be_focused()
    assert_accessible(page, f"2fa-recovery-codes-{mode}")
    shots(page, "recovery-codes")
    if javascript:
        copy.click()
        expect(page.locator("#flash")).to_have_text("Recovery codes copied.")

    back_to_profile(page)
    assert_full_document(page)
    twofa = page.locator("#twofa")
    expect(twofa).to_contain_text("Two-step verification is on")
    expect(twofa).to_contain_text(MASKED_0123)
    expect(twofa).to_contain_text("You have 10 unused recovery codes.")
    expect(page.locator("main")).not_to_contain_text("4155550123")
    expect(twofa.get_by_role("button", name="Disable two-factor authentication")).to_be_visible()
    assert_accessible(page, f"2fa-profile-on-{mode}")
    shots(page, "profile-2fa-on")


def test_full_pages_show_their_status_message(page: Page, javascript: bool) -> None:
    register_and_login(page, "flash")
    number = unique_phone()
    start_action(page, "Enable two-factor authentication")
    step_up(page)
    submit_phone(page, number)
    expect_code_step(page, "Confirm your phone")
    flash = page.locator("#flash")
    missing = []
    if f"We sent a code to the number ending {number.last2}" not in flash.inner_text():
        missing.append("code step: 'We sent a code …'")
    submit_code(page, latest(page, number).code)
    read_recovery_codes(page)
    if "Two-step verification is on." not in flash.inner_text():
        missing.append("recovery codes: 'Two-step verification is on.'")
    assert not missing, f"#flash is empty where it should say: {missing}"


# --- 2. the sign-in code step ---------------------------------------------------------------------------------------

def test_sign_in_with_a_code(page: Page, javascript: bool, shots: Shots) -> None:
    mode = _mode(javascript)
    user = register_with_2fa(page, "second")
    page.goto("/login")
    navigations = Navigations(page)
    if javascript:
        set_marker(page)
    before = navigations.count
    title_before = page.title()

    login_to_code_step(page, user.username)
    _arrived(page, javascript, navigations, before)
    expect(page).to_have_url(re.compile(r"/login/verify$"))  # HX-Push-Url with JS, the 303 without
    expect(page.locator("#code-hint")).to_contain_text(f"ending {user.number.last2}")
    expect(page.locator("main")).not_to_contain_text(user.number.e164[2:])
    if javascript:
        expect(page.locator("#code")).to_be_focused()
        expect(page.locator("#flash")).to_contain_text(f"We sent a code to the number ending {user.number.last2}")
        expect(page).to_have_title(re.compile(r"^Enter your code"))
        assert page.title() != title_before
    else:
        expect(page).to_have_title(re.compile(r"^Enter your code"))
    assert_accessible(page, f"login-code-step-{mode}")
    shots(page, "code-step")

    code = latest(page, user.number).code
    before = navigations.count
    submit_code(page, wrong_code(code))
    message = "That code isn't right. 4 attempts left."
    expect(page.locator("#code-error")).to_have_text(message)
    _arrived(page, javascript, navigations, before)
    assert_field_error(page, "code", message)
    described = (page.locator("#code").get_attribute("aria-describedby") or "").split()
    assert "code-error" in described and "code-hint" in described, described
    expect(page.locator("#code-error")).to_have_attribute("role", "alert")
    if javascript:
        expect(page.locator("#code")).to_be_focused()
        expect(page).to_have_title(re.compile(r"^Error: "))
    assert_accessible(page, f"login-wrong-code-{mode}")
    shots(page, "wrong-code")

    submit_code(page, code)
    expect(page).to_have_url(re.compile(r"/profile$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Your profile")
    assert_full_document(page)
    shots(page, "profile")


# --- 3. resend with a cooldown, then a call -------------------------------------------------------------------------

def test_resend_and_call_wait_for_the_cooldown(page: Page, javascript: bool, shots: Shots,
                                               server_db: ServerDb) -> None:
    mode = _mode(javascript)
    user = register_with_2fa(page, "resend")
    login_to_code_step(page, user.username)
    first = latest(page, user.number)
    sent_before = len(outbox(page, user.number))

    wait = page.locator("#resend-wait")
    expect(wait).to_contain_text(re.compile(r"You can ask for a new code in \d+ seconds"))
    seconds = int(page.locator("#resend-wait .countdown").inner_text())
    assert 0 < seconds <= 30, seconds
    # "Call me instead" is there from the start, held back by the same countdown as "Resend code".
    call = page.get_by_role("button", name="Call me instead")
    expect(call).to_be_visible()
    expect(call).to_have_attribute("aria-describedby", "resend-wait")
    shots(page, "cooldown")

    resend = page.get_by_role("button", name="Resend code")
    if javascript:
        expect(resend).to_have_attribute("aria-disabled", "true")  # the countdown ticks, the button still works
        expect(call).to_have_attribute("aria-disabled", "true")
        expect(page.locator("#resend-wait .countdown")).not_to_have_text(str(seconds))  # it counts down
    with page.expect_response(lambda r: r.url.endswith("/login/call")) as answer:
        call.click(force=True)  # aria-disabled stops Playwright's actionability check, not a person's click
    assert answer.value.status == 429, answer.value.status
    expect(page.locator("#code-error")).to_contain_text(re.compile(r"Please wait \d+ seconds before asking"))
    expect(page.get_by_role("button", name="Call me instead")).to_be_visible()
    assert len(outbox(page, user.number)) == sent_before, "a call was made during the cooldown"
    with page.expect_response(lambda r: r.url.endswith("/login/resend")) as answer:
        resend.click(force=True)  # aria-disabled stops Playwright's actionability check, not a person's click
    assert answer.value.status == 429, answer.value.status
    expect(page.locator("#code-error")).to_contain_text(re.compile(r"Please wait \d+ seconds before asking"))
    assert_full_document(page)
    assert len(outbox(page, user.number)) == sent_before, "a code was sent during the cooldown"
    assert_accessible(page, f"resend-too-soon-{mode}")
    shots(page, "too-soon")

    # 31 s later, as far as the server knows.
    server_db.shift_challenge(user.username, "last_sent_at", -31)
    page.goto("/login/verify")  # without JS the address is /login/resend now: a reload would post again
    expect_code_step(page)
    expect(page.locator("#resend-wait")).to_have_count(0)
    expect(page.get_by_role("button", name="Call me instead")).to_be_visible()
    expect(page.get_by_role("button", name="Call me instead")).not_to_have_attribute("aria-disabled", "true")
    shots(page, "cooldown-over")

    with page.expect_response(lambda r: r.url.endswith("/login/resend")) as answer:
        page.get_by_role("button", name="Resend code").click()
    assert answer.value.status == 200, answer.value.status
    if javascript:  # without JS the message is lost: see test_full_pages_show_their_status_message
        expect(page.locator("#flash")).to_contain_text(f"We sent a new code to the number ending {user.number.last2}")
    assert_full_document(page)
    again = outbox(page, user.number)
    assert len(again) == sent_before + 1, again
    assert again[0].code == first.code and again[0].sid == first.sid, "Verify re-sends the same code"
    expect(page.locator("#resend-wait")).to_contain_text("You can ask for a new code in")  # a new cooldown started
    expect(page.get_by_role("button", name="Call me instead")).to_be_visible()
    if javascript:
        expect(page.get_by_role("button", name="Call me instead")).to_have_attribute("aria-disabled", "true")
    assert_accessible(page, f"resent-{mode}")
    shots(page, "resent")

    server_db.shift_challenge(user.username, "last_sent_at", -31)
    page.goto("/login/verify")
    page.get_by_role("button", name="Call me instead").click()
    expect(page.locator("#code-hint")).to_contain_text("We are calling")
    called = outbox(page, user.number)
    assert len(called) == sent_before + 2 and called[0].channel == "call", called
    assert_full_document(page)
    shots(page, "calling")

    submit_code(page, called[0].code)
    expect(page).to_have_url(re.compile(r"/profile$"))


# --- 4. a recovery code instead -------------------------------------------------------------------------------------

def test_sign_in_with_a_recovery_code(page: Page, javascript: bool, shots: Shots) -> None:
    mode = _mode(javascript)
    user = register_with_2fa(page, "recover")
    login_to_code_step(page, user.username)
    navigations = Navigations(page)
    if javascript:
        set_marker(page)
    before = navigations.count

    page.get_by_role("link", name="Use a recovery code").click()
    expect(page.locator("#recovery_code")).to_be_visible()
    _arrived(page, javascript, navigations, before)
    expect(page.locator("#auth-step #recovery-heading")).to_have_text("Use a recovery code")
    if javascript:
        expect(page.locator("#recovery_code")).to_be_focused()
        expect(page).to_have_title(re.compile(r"^Use a recovery code"))
    else:
        expect(page).to_have_url(re.compile(r"/login/recovery$"))
    assert_accessible(page, f"login-recovery-step-{mode}")
    shots(page, "recovery-step")

    page.locator("#recovery_code").fill(user.codes[3].lower())
    page.get_by_role("button", name="Sign in with recovery code").click()
    expect(page).to_have_url(re.compile(r"/2fa/recovery-used$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("You signed in with a recovery code")
    expect(page.locator("main")).to_contain_text("You have 9 recovery codes left.")
    assert_full_document(page)
    assert_accessible(page, f"recovery-used-{mode}")
    shots(page, "recovery-used")


# --- 5. an expired code ---------------------------------------------------------------------------------------------

def test_expired_code_starts_over(page: Page, javascript: bool, shots: Shots, server_db: ServerDb) -> None:
    user = register_with_2fa(page, "expired")
    login_to_code_step(page, user.username)
    code = latest(page, user.number).code
    server_db.shift_challenge(user.username, "expires_at", -1)
    submit_code(page, code)
    expect(page).to_have_url(re.compile(r"/login\?notice=login-expired$"))
    expect(page.locator("#flash")).to_contain_text("That sign-in attempt timed out")
    expect(page.get_by_role("heading", level=1)).to_have_text("Sign in")
    assert_full_document(page)
    shots(page, "timed-out")


# --- 6. change phone, new recovery codes, turn it off ---------------------------------------------------------------

def test_change_phone_new_codes_and_disable(page: Page, javascript: bool, shots: Shots,
                                            server_db: ServerDb) -> None:
    mode = _mode(javascript)
    old, new = unique_phone(), unique_phone()
    user = register_with_2fa(page, "manage", old)
    login_to_code_step(page, user.username)
    submit_code(page, latest(page, old).code)
    expect(page).to_have_url(re.compile(r"/profile$"))

    # Change the phone: password, a code to the old number, the new number, a code to the new number.
    start_action(page, "Change phone number")
    expect(page.locator("#twofa-heading")).to_have_text("Change your phone number")
    step_up(page)
    expect_code_step(page, "Confirm it's you")
    expect(page.locator("#code-hint")).to_contain_text(f"ending {old.last2}")
    expect(page.locator("#code-hint")).not_to_contain_text(old.e164)
    expect(page.locator("summary", has_text="Use a recovery code")).to_be_visible()
    assert_full_document(page)
    assert_accessible(page, f"change-phone-old-code-{mode}")
    shots(page, "old-number-code")
    submit_code(page, latest(page, old).code)
    expect(page.locator("#twofa-heading")).to_have_text("Your new phone number")
    if javascript:
        expect(page.locator("#phone")).to_be_focused()
    assert_full_document(page)
    assert_accessible(page, f"change-phone-new-number-{mode}")
    shots(page, "new-number")
    submit_phone(page, new)
    expect_code_step(page, "Confirm your new phone")
    expect(page.locator("#code-hint")).to_contain_text(new.e164)
    assert_full_document(page)
    assert_accessible(page, f"change-phone-new-code-{mode}")
    shots(page, "new-number-code")
    submit_code(page, latest(page, new).code)
    expect(page).to_have_url(re.compile(r"/profile\?notice=phone-changed$"))
    expect(page.locator("#flash")).to_contain_text("Your phone number has been changed.")
    expect(page.locator("#twofa")).to_contain_text(f"+1 ••••••••{new.last2}")
    assert_full_document(page)
    shots(page, "phone-changed")

    # New recovery codes: password, then the codes; the old set is gone.
    start_action(page, "Get new recovery codes")
    step_up(page)
    fresh = read_recovery_codes(page)
    assert len(fresh) == 10 and not set(fresh) & set(user.codes)
    assert_full_document(page)
    assert server_db.unused_recovery_codes(user.username) == 10
    shots(page, "new-codes")
    back_to_profile(page)

    # At the next sign-in an old code is refused and a new one accepted.
    logout(page)
    login_to_code_step(page, user.username)
    page.get_by_role("link", name="Use a recovery code").click()
    page.locator("#recovery_code").fill(user.codes[0])
    page.get_by_role("button", name="Sign in with recovery code").click()
    assert_field_error(page, "recovery_code", "That recovery code isn't right. 4 attempts left.")
    assert_full_document(page)
    assert_accessible(page, f"old-recovery-code-refused-{mode}")
    shots(page, "old-code-refused")
    page.locator("#recovery_code").fill(fresh[0])
    page.get_by_role("button", name="Sign in with recovery code").click()
    expect(page).to_have_url(re.compile(r"/2fa/recovery-used$"))
    expect(page.locator("main")).to_contain_text("You have 9 recovery codes left.")

    # Turn it off: password, a code to the (new) phone.
    page.get_by_role("link", name="Continue to your profile").click()
    start_action(page, "Disable two-factor authentication")
    expect(page.locator("#twofa-heading")).to_have_text("Turn off two-step verification")
    step_up(page)
    expect_code_step(page, "Confirm it's you")
    assert_full_document(page)
    shots(page, "disable-code")
    submit_code(page, latest(page, new).code)
    expect(page).to_have_url(re.compile(r"/profile\?notice=twofa-off$"))
    expect(page.locator("#flash")).to_contain_text("Two-step verification is off.")
    expect(page.locator("#twofa")).to_contain_text("Two-step verification is off")
    expect(page.get_by_role("button", name="Enable two-factor authentication")).to_be_visible()
    assert_full_document(page)
    assert_accessible(page, f"2fa-off-{mode}")
    shots(page, "off")
    assert server_db.unused_recovery_codes(user.username) == 0


# --- 7. Back, Forward and reload (JS on) ----------------------------------------------------------------------------

def test_history_through_the_sign_in_code_step(js_page: Page, shots: Shots) -> None:
    page = js_page
    user = register_with_2fa(page, "histlogin")
    page.goto("/login")
    login_to_code_step(page, user.username)

    page.reload()
    expect_code_step(page)
    assert_full_document(page)
    shots(page, "code-reloaded")

    page.go_back()
    expect(page).to_have_url(re.compile(r"/login$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Sign in")
    assert_full_document(page)
    shots(page, "back-to-password")

    page.go_forward()
    expect(page).to_have_url(re.compile(r"/login/verify$"))
    expect_code_step(page)
    assert_full_document(page)
    shots(page, "forward-to-code")

    page.get_by_role("link", name="Use a recovery code").click()
    expect(page.locator("#recovery_code")).to_be_visible()
    page.reload()
    expect(page.locator("#code, #recovery_code")).to_have_count(1)
    assert_full_document(page)
    shots(page, "recovery-reloaded")

    page.goto("/login/verify")
    code = latest(page, user.number).code
    submit_code(page, wrong_code(code))
    expect(page.locator("#code-error")).to_be_visible()
    page.reload()
    expect_code_step(page)
    assert_full_document(page)
    shots(page, "error-reloaded")

    submit_code(page, code)
    expect(page).to_have_url(re.compile(r"/profile$"))
    page.go_back()
    expect(page.get_by_role("heading", level=1)).to_have_text(re.compile(r"Your profile|Sign in"))
    expect(page.locator("#code")).to_have_count(0)  # the code step is over
    assert_full_document(page)
    shots(page, "back-after-sign-in")
    page.reload()
    assert_full_document(page)


def test_history_through_enrolment(js_page: Page, shots: Shots) -> None:
    page = js_page
    register_and_login(page, "histenrol")
    number = unique_phone()

    start_action(page, "Enable two-factor authentication")
    page.reload()
    expect(page.get_by_role("heading", level=1)).to_have_text("Your profile")
    assert_full_document(page)
    shots(page, "password-reloaded")

    start_action(page, "Enable two-factor authentication")
    step_up(page)
    expect(page.locator("#phone")).to_be_visible()
    page.reload()
    assert_full_document(page)
    shots(page, "phone-reloaded")
    page.goto("/2fa")  # the step in progress, as a page of its own
    expect(page.locator("#phone")).to_be_visible()
    assert_full_document(page)

    submit_phone(page, number)
    expect_code_step(page, "Confirm your phone")
    page.reload()
    expect_code_step(page, "Confirm your phone")
    assert_full_document(page)
    shots(page, "code-reloaded")
    page.go_back()
    assert_full_document(page)
    shots(page, "code-back")
    page.go_forward()
    expect_code_step(page, "Confirm your phone")
    assert_full_document(page)

    submit_code(page, latest(page, number).code)
    read_recovery_codes(page)
    page.reload()
    expect(page.get_by_role("heading", level=1)).to_have_text("Your profile")
    expect(page.locator("#twofa")).to_contain_text("Two-step verification is on")
    assert_full_document(page)
    shots(page, "codes-reloaded")
    page.go_back()
    assert_full_document(page)
    expect(page.locator("#code")).to_have_count(0)
    shots(page, "codes-back")


# --- 8. the keyboard alone ------------------------------------------------------------------------------------------

def test_keyboard_only_code_step(js_page: Page, shots: Shots) -> None:
    page = js_page
    user = register_with_2fa(page, "keys2")
    page.goto("/login")
    expect(page.locator("#username")).to_be_focused()
    page.keyboard.type(user.username)
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    expect_code_step(page)
    expect(page.locator("#code")).to_be_focused()
    _ring(page, "code field")
    page.keyboard.type(latest(page, user.number).code)

    stops = []
    for _ in range(6):
        page.keyboard.press("Tab")
        stops.append(focus_indicator(page)["text"] or focused_id(page))
        _ring(page, f"Tab to {stops[-1]!r}")
    # "Call me instead" is there from the start (aria-disabled during the cooldown, still a tab stop). The
    # "Don't ask again on this browser" checkbox comes first, inside the code form; "Try another way" after recovery.
    assert stops[:6] == ["remember-browser", "Verify", "Resend code", "Call me instead", "Use a recovery code",
                         "Try another way"], stops
    shots(page, "tabbed")
    for _ in range(4):
        page.keyboard.press("Shift+Tab")
        _ring(page, "Shift+Tab")
    expect(page.get_by_role("button", name="Verify", exact=True)).to_be_focused()
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/profile$"))
    assert_full_document(page)
    shots(page, "signed-in")
