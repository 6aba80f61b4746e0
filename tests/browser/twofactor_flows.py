"""Two-step verification in the browser: enrol a phone, read codes from the development outbox, move time.

Like flows.py, every helper works with JavaScript on or off: it clicks the real buttons and waits with `expect`.
Codes come from GET /dev/outbox, read through the context's request API (same cookies, no navigation), so the
page under test never leaves the step it is on. "Time passing" is a change to the challenge row in the server's
database (the server compares the row with its own clock), never a sleep.
"""

from __future__ import annotations

import html
import itertools
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from playwright.sync_api import Page, expect
from sqlalchemy import create_engine, select, update
from sqlalchemy.engine import Engine

from tests.browser.flows import PASSWORD, logout, register_and_login

US = "US"
DEFAULT_NUMBER = "415 555 0123"
# 555-0100…0199 are fictional numbers that libphonenumber still accepts. The development Verify backend keys a
# pending verification by number (a second start re-sends the same code) and the app allows three accounts per
# number, so every test but the enrolment scenario takes a number of its own.
_endings = itertools.count(30)


@dataclass(frozen=True)
class Phone:
    national: str  # what a person types, with the country chosen in the <select>
    e164: str

    @property
    def last2(self) -> str:
        return self.e164[-2:]


def phone(national: str = DEFAULT_NUMBER) -> Phone:
    digits = re.sub(r"\D", "", national)
    return Phone(national, "+1" + digits)


def unique_phone() -> Phone:
    ending = next(_endings)
    assert ending < 100, "out of fictional 555-01xx numbers"
    return phone(f"415 555 01{ending:02d}")


# --- the development outbox ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Sent:
    time: str
    to: str  # masked: +1••••••••23
    channel: str
    code: str
    sid: str


_ROW = re.compile(
    r"<tr>\s*<td><time[^>]*>([^<]*)</time></td>\s*<td>([^<]*)</td>\s*<td>([^<]*)</td>\s*"
    r"<td><code>(\d+)</code></td>\s*<td><code>([^<]*)</code></td>\s*</tr>"
)


def outbox(page: Page, number: Phone | None = None) -> list[Sent]:
    """The outbox, newest first; only the messages to `number` when given (the outbox masks all but 2 digits)."""
    response = page.context.request.get("/dev/outbox")
    assert response.status == 200, f"/dev/outbox answered {response.status}"
    rows = [Sent(*(html.unescape(part).strip() for part in row)) for row in _ROW.findall(response.text())]
    if number is None:
        return rows
    return [row for row in rows if row.to.startswith("+1") and row.to.endswith(number.last2)]


def latest(page: Page, number: Phone) -> Sent:
    """The newest message to `number`: sends happen before the server answers, so it is there already."""
    rows = outbox(page, number)
    assert rows, f"no message to …{number.last2} in the development outbox"
    return rows[0]


def wrong_code(code: str) -> str:
    return f"{(int(code) + 1) % 1_000_000:06d}"


# --- steps --------------------------------------------------------------------------------------------------------

def twofa_section(page: Page) -> None:
    expect(page.locator("#twofa")).to_have_count(1)


def start_action(page: Page, button: str) -> None:
    """On the profile, press one of the two-factor buttons ("Enable two-factor authentication", …)."""
    page.locator("#twofa").get_by_role("button", name=button).click()
    expect(page.locator("#stepup-password")).to_be_visible()


def step_up(page: Page, password: str = PASSWORD) -> None:
    page.locator("#stepup-password").fill(password)
    page.locator("#twofa").get_by_role("button", name="Continue").click()


def submit_phone(page: Page, number: Phone, region: str = US) -> None:
    expect(page.locator("#region")).to_be_visible()
    page.locator("#region").select_option(region)
    page.locator("#phone").fill(number.national)
    page.get_by_role("button", name="Send code").click()


def submit_code(page: Page, code: str) -> None:
    expect(page.locator("#code")).to_be_visible()
    page.locator("#code").fill(code)
    page.get_by_role("button", name="Verify", exact=True).click()


def expect_code_step(page: Page, heading: str = "Enter your code") -> None:
    expect(page.locator("#code-heading")).to_have_text(heading)
    expect(page.locator("#code")).to_be_visible()


def read_recovery_codes(page: Page) -> list[str]:
    expect(page.get_by_role("heading", name="Save your recovery codes")).to_be_visible()
    codes = [c.strip() for c in page.locator("ul.codes code").all_inner_texts()]
    assert all(re.fullmatch(r"[0-9A-Z]{4}(-[0-9A-Z]{4}){3}", c) for c in codes), codes
    return codes


def enable_2fa(page: Page, number: Phone, password: str = PASSWORD) -> list[str]:
    """From anywhere while signed in: turn two-step verification on; ends on the recovery codes, returns them."""
    page.goto("/profile")
    start_action(page, "Enable two-factor authentication")
    step_up(page, password)
    submit_phone(page, number)
    expect_code_step(page, "Confirm your phone")
    submit_code(page, latest(page, number).code)
    return read_recovery_codes(page)


def back_to_profile(page: Page) -> None:
    page.get_by_role("link", name="I've saved them – back to my profile").click()
    expect(page).to_have_url(re.compile(r"/profile$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Your profile")


def login_to_code_step(page: Page, username: str, password: str = PASSWORD) -> None:
    """Sign in with the password; stops at the code step (in place with JS, /login/verify without)."""
    if not page.url.split("?")[0].endswith("/login"):
        page.goto("/login")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect_code_step(page)
    expect(page).to_have_url(re.compile(r"/login/verify$"))


def login_with_code(page: Page, username: str, number: Phone) -> None:
    login_to_code_step(page, username)
    submit_code(page, latest(page, number).code)
    expect(page).to_have_url(re.compile(r"/profile$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Your profile")


# --- the server's clock, as the database sees it ------------------------------------------------------------------

class ServerDb:
    """Direct writes to the browser server's database, to make the server believe time has passed."""

    def __init__(self, url: str) -> None:
        from webapp.db import sync_url

        self.engine: Engine = create_engine(sync_url(url), connect_args={"timeout": 15} if "sqlite" in url else {})

    def close(self) -> None:
        self.engine.dispose()

    def shift_challenge(self, username: str, column: str, seconds: float) -> int:
        """Set `column` (last_sent_at or expires_at) of the user's live challenges to now + seconds (negative:
        the past), in naive UTC like the app stores it. Returns the number of rows changed."""
        from webapp.db import utcnow
        from webapp.models import MfaChallenge, User

        assert column in ("last_sent_at", "expires_at", "created_at"), column
        when: datetime = utcnow() + timedelta(seconds=seconds)
        user_id = select(User.id).where(User.username == username).scalar_subquery()
        statement = (update(MfaChallenge)
                     .where(MfaChallenge.user_id == user_id, MfaChallenge.consumed_at.is_(None),
                            MfaChallenge.invalidated_at.is_(None))
                     .values({column: when}))
        with self.engine.begin() as conn:
            changed = conn.execute(statement).rowcount
        assert changed, f"{username} has no live challenge to change"
        return int(changed)

    def unused_recovery_codes(self, username: str) -> int:
        from webapp.models import RecoveryCode, User

        with self.engine.connect() as conn:
            rows = conn.execute(select(RecoveryCode.id).join(User, User.id == RecoveryCode.user_id)
                                .where(User.username == username, RecoveryCode.used_at.is_(None))).all()
        return len(rows)


def server_db_url(basetemp: Path) -> str:
    """The DATABASE_URL the `server` fixture gave uvicorn (see conftest._server_env): its own PostgreSQL database
    under TEST_DATABASE_URL, else app.db in the session's `browser-server` temporary folder."""
    from tests.browser.conftest import PG_BROWSER_DB

    if os.environ.get("TEST_DATABASE_URL"):
        return f"postgresql+psycopg://postgres@127.0.0.1:5432/{PG_BROWSER_DB}"
    # mktemp("browser-server") made browser-server0; pytest also links it as browser-servercurrent.
    found = sorted({path.resolve() for path in basetemp.glob("browser-server*/app.db")})
    assert len(found) == 1, f"expected one browser-server database under {basetemp}, found {found}"
    return f"sqlite+aiosqlite:///{found[0]}"


def open_server_db(basetemp: Path) -> Iterator[ServerDb]:
    db = ServerDb(server_db_url(basetemp))
    try:
        yield db
    finally:
        db.close()


@dataclass(frozen=True)
class TwoFactorUser:
    username: str
    number: Phone
    codes: list[str]


def register_with_2fa(page: Page, prefix: str, number: Phone | None = None) -> TwoFactorUser:
    """A new account with two-step verification on, signed out again: the next sign-in asks for a code."""
    username = register_and_login(page, prefix)
    number = number or unique_phone()
    codes = enable_2fa(page, number)
    logout(page)
    return TwoFactorUser(username, number, codes)
