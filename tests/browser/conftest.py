"""Real-browser fixtures: the app under uvicorn, Debian's Chromium through Playwright, pages with JS on and off.

One server and one browser serve the whole browser suite; each test gets fresh browser contexts.
Without /usr/bin/chromium every test here is skipped, unless REQUIRE_BROWSER=1 (CI), which turns that into a failure.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser.flows import ARTIFACTS, NO_JS_CONTEXTS, ROOT, Shots

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
VIEWPORT = {"width": 1024, "height": 768}
SKIP_REASON = "Chromium not installed: browser suite skipped"
REQUIRED = os.environ.get("REQUIRE_BROWSER") == "1"
PG_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
PG_BROWSER_DB = "webapp_browser"
HERE = Path(__file__).resolve().parent

try:
    from playwright.sync_api import Browser, BrowserContext, Page, Playwright, sync_playwright
except ImportError:  # pragma: no cover - the test extra installs it
    sync_playwright = None  # type: ignore[assignment]


def _missing() -> str | None:
    if sync_playwright is None:
        return "Playwright is not installed: browser suite skipped"
    if not CHROMIUM.exists():
        return SKIP_REASON
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip this directory's tests when Chromium is absent; with REQUIRE_BROWSER=1 the `playwright` fixture fails."""
    reason = _missing()
    if reason is None or REQUIRED:
        return
    for item in items:
        if Path(str(item.path)).resolve().is_relative_to(HERE):
            item.add_marker(pytest.mark.skip(reason=reason))


# --- the server -------------------------------------------------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _postgres_url() -> str:
    """A PostgreSQL database of its own, so the browser server never races the in-process tests' truncations."""
    import psycopg
    from psycopg import sql

    with psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=5) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (PG_BROWSER_DB,)).fetchone():
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(PG_BROWSER_DB)))
    with psycopg.connect(PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + PG_BROWSER_DB, autocommit=True) as conn:
        conn.execute("DROP SCHEMA public CASCADE")
        conn.execute("CREATE SCHEMA public")
    return f"postgresql+psycopg://postgres@127.0.0.1:5432/{PG_BROWSER_DB}"


def _server_env(tmp: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TWILIO_")}
    # Empty values also override a developer's .env, so the development Verify backend is always used.
    env.update({k: "" for k in ("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "TWILIO_API_KEY_SID",
                                "TWILIO_API_KEY_SECRET", "TWILIO_VERIFY_SERVICE_SID", "TWILIO_VERIFY_BASE_URL")})
    env.update({
        "APP_ENV": "development",
        "INSTANCE_DIR": str(tmp),
        "DATABASE_URL": _postgres_url() if os.environ.get("TEST_DATABASE_URL") else f"sqlite+aiosqlite:///{tmp}/app.db",
        "BCRYPT_ROUNDS": "4",
        # Every browser comes from 127.0.0.1: the per-IP limits would otherwise throttle the suite itself.
        "IP_REQUESTS_PER_MINUTE": "10000",
        "REGISTRATIONS_PER_IP_PER_HOUR": "10000",
        # Each two-step test enrols a phone from 127.0.0.1: the default 5 enrolment sends per IP per hour would not do.
        "ENROLL_SENDS_PER_IP_PER_HOUR": "10000",
        "RESET_REQUESTS_PER_IP_PER_HOUR": "10000",
        # No SMTP server: mail waits in the development outbox, where the mail tests read it.
        "SMTP_HOST": "",
        "PYTHONUNBUFFERED": "1",
    })
    env.pop("SECRET_KEY", None)
    env.pop("PASSWORD_PEPPER", None)
    return env


def _wait_healthy(base_url: str, proc: subprocess.Popen[bytes], log: Path, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"uvicorn exited with {proc.returncode}; see {log}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(base_url + "/healthz", timeout=2) as r:  # noqa: S310 - our own server
                if r.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            time.sleep(0.1)
    raise RuntimeError(f"the server did not answer /healthz within {timeout}s; see {log}")


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The app under a real uvicorn on a free port, migrated first; yields its base URL."""
    tmp = tmp_path_factory.mktemp("browser-server")
    env = _server_env(tmp)
    port = _free_port()
    # Passkeys work at this origin only (WebAuthn refuses IP addresses); other tests keep using 127.0.0.1.
    env["APP_BASE_URL"] = f"http://localhost:{port}"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    log = ARTIFACTS / "browser-server.log"
    migrated = subprocess.run([sys.executable, "-m", "webapp.migrate"], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=120, check=False)
    if migrated.returncode:
        raise RuntimeError(f"migration failed:\n{migrated.stderr[-3000:]}")
    uvicorn = ROOT / ".venv" / "bin" / "uvicorn"
    command = [str(uvicorn)] if uvicorn.exists() else [sys.executable, "-m", "uvicorn"]
    with log.open("wb") as out:
        proc = subprocess.Popen([*command, "webapp.asgi:app", "--host", "127.0.0.1", "--port", str(port)],
                                cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    base_url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(base_url, proc, log)
        yield base_url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


# --- the browser ------------------------------------------------------------------------------------------------
# Package scope, not session: between calls Playwright's sync API leaves its event loop marked as running in
# this thread, which would break the anyio tests that run after this package. Closing it here clears that.

@pytest.fixture(scope="package")
def playwright() -> Iterator[Playwright]:
    if reason := _missing():
        pytest.fail(f"REQUIRE_BROWSER=1 but {reason.split(':')[0]}: install it with `apt-get install -y chromium`",
                    pytrace=False)
    with sync_playwright() as pw:
        yield pw


@pytest.fixture(scope="package")
def browser(playwright: Playwright) -> Iterator[Browser]:
    browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
    yield browser
    browser.close()


NewContext = Callable[..., BrowserContext]


@pytest.fixture
def new_context(browser: Browser, server: str) -> Iterator[NewContext]:
    """Factory for extra contexts (a second device); all are closed after the test."""
    contexts: list[BrowserContext] = []

    def make(javascript: bool = True, **options: Any) -> BrowserContext:
        options.setdefault("base_url", server)
        context = browser.new_context(viewport=VIEWPORT, java_script_enabled=javascript, locale="en-GB", **options)
        context.set_default_timeout(10_000)
        if not javascript:
            NO_JS_CONTEXTS.add(context)
        contexts.append(context)
        return context

    yield make
    for context in contexts:
        context.close()


@pytest.fixture(params=[True, False], ids=["js", "nojs"])
def javascript(request: pytest.FixtureRequest) -> bool:
    return bool(request.param)


@pytest.fixture
def page(new_context: NewContext, javascript: bool) -> Page:
    """A page in a fresh context; every test using it runs once with JavaScript on and once with it off."""
    return new_context(javascript).new_page()


@pytest.fixture
def js_page(new_context: NewContext) -> Page:
    return new_context(True).new_page()


@pytest.fixture
def nojs_page(new_context: NewContext) -> Page:
    return new_context(False).new_page()


@pytest.fixture
def shots(request: pytest.FixtureRequest) -> Shots:
    """Numbered screenshots for this test under test-artifacts/screenshots/<test id>/."""
    name = re.sub(r"[^\w.-]+", "_", request.node.nodeid.split("::", 1)[-1])
    folder = ARTIFACTS / "screenshots" / name
    shutil.rmtree(folder, ignore_errors=True)
    return Shots(folder)
