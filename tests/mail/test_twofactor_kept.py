"""A reset never signs in past the second factor (R-E5): with two-step verification on, the new password leads
to the code step (or a recovery code), and nothing reaches the profile without it (Flask-Security-Too #258)."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from tests.mail.kit import NEW_PASSWORD, choose, reset_mail
from tests.mail.smtp import SmtpSink
from tests.support import CountingVerify, csrf, enroll, form_post, login, logout, path_of, signup, user_row
from webapp.mail import links
from webapp.settings import Settings


@pytest.fixture
def alice_2fa(client: TestClient, verify: CountingVerify) -> list[str]:
    signup(client)
    codes = enroll(client, lambda: verify.code)
    logout(client)
    return codes


def test_r_e5_after_a_reset_the_new_password_still_needs_the_code(client: TestClient, alice_2fa: list[str],
                                                                  smtp: SmtpSink, settings: Settings,
                                                                  verify: CountingVerify) -> None:
    before = user_row(settings)
    r = choose(client, reset_mail(client, smtp).link(links.RESET))
    assert r.status_code == 303 and r.headers["location"] == "/login?notice=password-reset"
    after = user_row(settings)
    assert after["mfa_enabled"] and after["phone_e164"] == before["phone_e164"]  # two-step stays on
    assert client.get("/profile").status_code == 303
    r = login(client, "alice", NEW_PASSWORD)
    assert path_of(r) == "/login/verify"  # the code step, not the profile
    for path in ("/profile", "/account/password", "/2fa/disable", "/account/email"):
        assert client.get(path).status_code == 303, path
    page = client.get("/login/verify")
    r = form_post(client, "/login/verify", page.text, {"code": verify.code})
    assert path_of(r) == "/profile"
    assert client.get("/profile").status_code == 200


def test_r_e5_after_a_reset_a_recovery_code_is_the_other_way_in(client: TestClient, alice_2fa: list[str],
                                                                smtp: SmtpSink) -> None:
    choose(client, reset_mail(client, smtp).link(links.RESET))
    assert path_of(login(client, "alice", NEW_PASSWORD)) == "/login/verify"
    r = client.post("/login/recovery", data={"csrf_token": csrf(client, "/login/recovery"),
                                             "recovery_code": alice_2fa[0]})
    assert path_of(r) == "/2fa/recovery-used"
    assert client.get("/profile").status_code == 200


def test_r_e5_a_reset_ends_a_pending_code_step(client: TestClient, other_client: TestClient, alice_2fa: list[str],
                                              smtp: SmtpSink, verify: CountingVerify) -> None:
    """An attacker who had the old password and sits at the code step loses it when the owner resets."""
    assert path_of(login(other_client, "alice")) == "/login/verify"
    choose(client, reset_mail(client, smtp).link(links.RESET))
    page = other_client.get("/login/verify")
    assert page.status_code == 303 and page.headers["location"].startswith("/login")
