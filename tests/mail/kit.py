"""Steps the mail tests share: ask for mail, read it from the SMTP sink, follow its links."""

from __future__ import annotations

from typing import Any

from starlette.testclient import TestClient

from tests.mail.smtp import Received, SmtpSink
from tests.support import csrf, csrf_from

RESET_SUBJECT = "Reset your password"
VERIFY_SUBJECT = "Confirm your email address"
CHANGE_SUBJECT = "Confirm your new email address"
NEW_PASSWORD = "copper-meadow-violin-83"


def ask_reset(client: TestClient, email: str, headers: dict[str, str] | None = None) -> Any:
    return client.post("/password/forgot", data={"csrf_token": csrf(client, "/password/forgot"), "email": email},
                       headers=headers or {})


def reset_mail(client: TestClient, smtp: SmtpSink, email: str = "alice@example.com", count: int = 1) -> Received:
    r = ask_reset(client, email)
    assert r.status_code == 303, r.text
    return smtp.wait_for_mail(email, RESET_SUBJECT, count)


def choose(client: TestClient, path: str, password: str = NEW_PASSWORD, confirm: str | None = None,
           headers: dict[str, str] | None = None) -> Any:
    """Open a reset link and choose a new password."""
    page = client.get(path)
    assert page.status_code == 200, page.text
    return client.post(path, headers=headers or {}, data={
        "csrf_token": csrf_from(page.text), "new_password": password,
        "new_password_confirm": password if confirm is None else confirm})


def press(client: TestClient, path: str) -> Any:
    """Open a mailed link's page (which changes nothing) and press its one button (which does)."""
    page = client.get(path)
    assert page.status_code == 200, page.text
    return client.post(path, data={"csrf_token": csrf_from(page.text)})
