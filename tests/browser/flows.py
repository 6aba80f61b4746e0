"""What a person does in the browser (register, sign in, sign out) and what every page must satisfy.

The helpers work the same with JavaScript on or off: they click real buttons and wait with auto-retrying
`expect`, never on htmx internals. Later flows (two-step verification) add their steps here.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import weakref
from pathlib import Path
from typing import Any

from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import BrowserContext, ConsoleMessage, Page, Route, expect

from tests.support import PASSWORD

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
BLOCKING_IMPACTS = ("serious", "critical")

_counter = itertools.count(1)
_axe = Axe()
# Contexts made with java_script_enabled=False (the conftest registers them): axe cannot run inside those.
NO_JS_CONTEXTS: weakref.WeakSet[BrowserContext] = weakref.WeakSet()


def unique_username(prefix: str = "user") -> str:
    """Unique across tests and runs against a reused database (PostgreSQL keeps rows until the next session)."""
    return f"{prefix}-{os.getpid() % 100000}-{next(_counter)}"


class Shots:
    """Numbered PNGs of each step, for humans reading a failure (test-artifacts/ is not committed)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.n = 0

    def __call__(self, page: Page, step: str) -> Path:
        self.n += 1
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / f"{self.n:02d}-{step}.png"
        page.screenshot(path=str(path))
        return path


# --- flows -------------------------------------------------------------------------------------------------------

def fill_register(page: Page, username: str, password: str = PASSWORD, confirm: str | None = None,
                  email: str | None = None) -> None:
    """Open /register if needed, fill the form and press "Create account"; the caller checks the outcome."""
    if not page.url.split("?")[0].endswith("/register"):
        page.goto("/register")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Email address").fill(email if email is not None else f"{username}@example.com")
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_label("Confirm password").fill(password if confirm is None else confirm)
    page.get_by_role("button", name="Create account").click()


def register(page: Page, username: str, password: str = PASSWORD) -> None:
    fill_register(page, username, password)
    expect(page).to_have_url(re.compile(r"/login\?notice=registered$"))
    expect(page.locator("#flash")).to_contain_text("Your account is ready")


def fill_login(page: Page, username: str, password: str = PASSWORD) -> None:
    if not page.url.split("?")[0].endswith("/login"):
        page.goto("/login")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_role("button", name="Sign in", exact=True).click()


def login(page: Page, username: str, password: str = PASSWORD) -> None:
    fill_login(page, username, password)
    expect(page).to_have_url(re.compile(r"/profile$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Your profile")


def register_and_login(page: Page, prefix: str = "user") -> str:
    username = unique_username(prefix)
    register(page, username)
    login(page, username)
    return username


def logout(page: Page) -> None:
    page.get_by_role("button", name="Sign out", exact=True).click()
    expect(page).to_have_url(re.compile(r"/login\?notice=signed-out$"))
    expect(page.locator("#flash")).to_contain_text("You have been signed out")


# --- what every page must satisfy --------------------------------------------------------------------------------

def assert_full_document(page: Page) -> None:
    """A whole page, never a bare fragment: title, site header, one #flash; every aria id reference resolves."""
    facts = page.evaluate(r"""() => ({
        html: document.documentElement.outerHTML.slice(0, 200),
        title: document.querySelector('head > title')?.textContent ?? '',
        header: document.querySelectorAll('body > header.site-header').length,
        main: document.querySelectorAll('main#main').length,
        flash: [...document.querySelectorAll('#flash')].map(e => e.getAttribute('role')),
        dangling: [...document.querySelectorAll('[aria-describedby], [aria-labelledby]')].flatMap(e =>
            [e.getAttribute('aria-describedby'), e.getAttribute('aria-labelledby')].join(' ').split(/\s+/)
             .filter(ref => ref && !document.getElementById(ref)).map(ref => (e.id || e.tagName) + ' -> ' + ref)),
    })""")
    assert facts["title"].strip(), f"no <title> in {facts['html']!r}"
    assert facts["header"] == 1 and facts["main"] == 1, f"not a full page: {facts}"
    assert facts["flash"] == ["status"], f"#flash must exist exactly once with role=status: {facts['flash']}"
    assert not facts["dangling"], f"aria references to missing ids: {facts['dangling']}"


def assert_field_error(page: Page, field_id: str, text: str) -> None:
    """The input says aria-invalid="true" and one of its aria-describedby targets holds the error text."""
    field = page.locator(f"#{field_id}")
    expect(field).to_have_attribute("aria-invalid", "true")
    described = (field.get_attribute("aria-describedby") or "").split()
    assert described, f"#{field_id} has no aria-describedby"
    texts = {ref: page.locator(f"#{ref}").inner_text() for ref in described if page.locator(f"#{ref}").count() == 1}
    assert any(text in t for t in texts.values()), f"{text!r} not in #{field_id}'s descriptions {texts}"


def assert_not_invalid(page: Page, field_id: str) -> None:
    expect(page.locator(f"#{field_id}")).not_to_have_attribute("aria-invalid", "true")


def focused_id(page: Page) -> str:
    return str(page.evaluate("document.activeElement?.id || document.activeElement?.tagName || ''"))


def focus_indicator(page: Page) -> dict[str, Any]:
    """The focused element and whether it draws a visible focus ring (outline or box-shadow)."""
    return dict(page.evaluate("""() => {
        const el = document.activeElement;
        const s = getComputedStyle(el);
        const outline = s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) > 0;
        const shadow = s.boxShadow && s.boxShadow !== 'none';
        return {tag: el.tagName, id: el.id, text: (el.textContent || '').trim().slice(0, 40),
                outline: s.outlineStyle + ' ' + s.outlineWidth, boxShadow: s.boxShadow,
                visible: Boolean(outline || shadow), focusVisible: el.matches(':focus-visible')};
    }"""))


def _run_axe(page: Page) -> list[dict[str, Any]]:
    if not page.evaluate("typeof window.axe === 'object'"):
        # evaluate() runs outside the page's CSP, so the strict script-src needs no bypass.
        page.evaluate(_axe.axe_script)
    results = page.evaluate("axe.run(document, {resultTypes: ['violations']})")
    return list(results["violations"])


def _run_axe_on_copy(page: Page) -> list[dict[str, Any]]:
    """axe needs timers, which a no-JS page never runs: check a copy of its DOM, with its CSS but no scripts."""
    url, html = page.url, page.content()
    browser = page.context.browser
    assert browser is not None
    viewport = page.viewport_size or {"width": 1024, "height": 768}
    mirror = browser.new_context(viewport=viewport, locale="en-GB")

    def serve(route: Route) -> None:
        request = route.request
        if request.resource_type == "document" and request.url == url:
            route.fulfill(status=200, body=html, content_type="text/html; charset=utf-8")
        elif request.resource_type == "script":
            route.abort()  # keep the DOM exactly as the no-JS browser has it
        else:
            route.continue_()

    try:
        mirror.route("**/*", serve)
        copy = mirror.new_page()
        copy.goto(url)
        return _run_axe(copy)
    finally:
        mirror.close()


def axe_violations(page: Page, where: str) -> list[dict[str, Any]]:
    """Run axe-core on the document as it is now; write the full report under test-artifacts/axe/ if it finds any."""
    violations = _run_axe_on_copy(page) if page.context in NO_JS_CONTEXTS else _run_axe(page)
    if violations:
        folder = ARTIFACTS / "axe"
        folder.mkdir(parents=True, exist_ok=True)
        slug = re.sub(r"[^\w.-]+", "_", where)
        (folder / f"{slug}.json").write_text(json.dumps(violations, indent=1))
    return violations


def assert_accessible(page: Page, where: str) -> None:
    """No serious or critical axe-core violations in the document as it is now (after a load or a swap)."""
    blocking = [v for v in axe_violations(page, where) if v["impact"] in BLOCKING_IMPACTS]
    summary = [
        f"{v['id']} ({v['impact']}): {v['help']} -> " + ", ".join(str(n["target"]) for n in v["nodes"][:5])
        for v in blocking
    ]
    assert not blocking, f"axe at {where} ({page.url}):\n" + "\n".join(summary)


class Navigations:
    """Counts documents loaded in the page, so a test can tell an in-place htmx swap from a page load.

    Not `framenavigated`: it also fires for htmx's history.replaceState after a swap, which loads nothing.
    """

    def __init__(self, page: Page) -> None:
        self.count = 0
        page.on("domcontentloaded", self._seen)

    def _seen(self, _page: Page) -> None:
        self.count += 1


def set_marker(page: Page) -> None:
    """A value only the current document holds: it survives a swap and vanishes on a page load."""
    page.evaluate("window.__marker = 1")


def marker_survived(page: Page) -> bool:
    return bool(page.evaluate("window.__marker === 1"))


# Reports every Content-Security-Policy violation of the document to the console, where CspWatch collects it
# across page loads. Chromium logs most violations itself; the event also catches the ones it doesn't.
_CSP_LISTENER = """document.addEventListener('securitypolicyviolation', (e) => console.error(
    'CSP violation: ' + e.violatedDirective + ' blocked ' + e.blockedURI + ' at ' + e.sourceFile + ':'
    + e.lineNumber + ':' + e.columnNumber));"""


class CspWatch:
    """Every CSP violation the page reports from now on (install before the first page load)."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.messages: list[str] = []
        page.add_init_script(_CSP_LISTENER)
        page.on("console", self._seen)

    def _seen(self, message: ConsoleMessage) -> None:
        text = message.text
        if text.startswith("CSP violation: ") or "Content Security Policy" in text:
            self.messages.append(f"{self.page.url}: {text}")

    def assert_none(self, where: str) -> None:
        """After the next task: violations are reported asynchronously, just after the change that caused them."""
        self.page.evaluate("() => new Promise((done) => setTimeout(done, 50))")
        assert not self.messages, f"CSP violations {where}:\n" + "\n".join(self.messages)
