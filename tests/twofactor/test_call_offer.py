"""'Call me instead' on the code step (R-O9, R-O11): there from the start, held back by the resend cooldown (a
countdown in static/app.js, a refusal on the server), gone only when no call can follow."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from starlette.testclient import TestClient

from tests.support import PARTIAL, CountingVerify, execute, login, make_2fa_user, token_post
from webapp.settings import Settings
from webapp.verify import Channel, TooManySends, Verification

CALL_FORM = re.compile(r'<form method="post" action="/login/call"[^>]*>\s*<input[^>]*>\s*'
                       r'<button([^>]*)>Call me instead')
RESEND = re.compile(r'<button([^>]*)>Resend code</button>')


class RefusesSecondSend(CountingVerify):
    """Verify answering 60203 (max send attempts) to every send after the first."""

    async def start(self, to: str, channel: Channel = "sms", *, locale: str | None = None,
                    rate_limit_key: str | None = None) -> Verification:
        if self.starts:
            self.starts.append((to, channel))
            raise TooManySends(60203)
        return await super().start(to, channel, locale=locale, rate_limit_key=rate_limit_key)


def call_button(html: str) -> str | None:
    """The attributes of the "Call me instead" button, or None when the step has none."""
    match = CALL_FORM.search(html)
    return match.group(1) if match else None


@pytest.mark.parametrize("headers", [{}, PARTIAL], ids=["page", "fragment"])
def test_call_is_offered_from_the_start_with_the_resend_countdown(client: TestClient, settings: Settings,
                                                                 headers: dict[str, str]) -> None:
    make_2fa_user(client, settings)
    r = login(client, headers=headers)
    page = r.text if headers else client.get("/login/verify").text
    call = call_button(page)
    assert call is not None, page
    resend = RESEND.search(page)
    assert resend is not None
    # The same countdown as "Resend code": static/app.js sets aria-disabled on every button naming #resend-wait.
    for attrs in (call, resend.group(1)):
        assert 'aria-describedby="resend-wait"' in attrs
        assert f'data-cooldown="{settings.mfa_resend_cooldown_s}"' in attrs
    assert 'id="resend-wait"' in page


def test_a_call_during_the_cooldown_is_refused_and_the_button_stays(client: TestClient, settings: Settings,
                                                                   verify: CountingVerify) -> None:
    """Without JavaScript the button works at any time; the server says how long to wait and calls nobody."""
    make_2fa_user(client, settings)
    with time_machine.travel(datetime(2030, 1, 1, 12, tzinfo=UTC), tick=False) as traveller:
        login(client)
        traveller.shift(timedelta(seconds=10))
        r = token_post(client, "/login/call", page="/login/verify")
        assert r.status_code == 429 and r.headers["retry-after"] == "20"
        assert "Please wait 20 seconds before asking for another code." in r.text
        assert verify.starts == [(verify.starts[0][0], "sms")]
        assert call_button(r.text) is not None
        traveller.shift(timedelta(seconds=21))
        page = client.get("/login/verify").text
        call = call_button(page)
        assert call is not None and "data-cooldown" not in call  # the cooldown is over: nothing to count down
        r = token_post(client, "/login/call", page="/login/verify")
    assert r.status_code == 200, r.text
    assert [channel for _, channel in verify.starts] == ["sms", "call"]
    assert "We are calling" in r.text


def test_no_call_once_the_send_limit_is_reached(client: TestClient, settings: Settings) -> None:
    make_2fa_user(client, settings)
    login(client)
    execute(settings, "UPDATE mfa_challenges SET sends = :n", n=settings.mfa_max_sends)
    page = client.get("/login/verify").text
    assert call_button(page) is None and "Resend code" in page


@pytest.mark.parametrize("verify", [RefusesSecondSend()], ids=["60203"])
def test_no_call_after_a_refusal_a_call_shares(client: TestClient, settings: Settings,
                                               verify: CountingVerify) -> None:
    """R-O11: after Verify's 60203 on a resend, the step answers without "Call me instead"."""
    make_2fa_user(client, settings)
    with time_machine.travel(datetime(2030, 1, 1, 12, tzinfo=UTC), tick=False) as traveller:
        login(client)
        traveller.shift(timedelta(seconds=31))
        r = token_post(client, "/login/resend", page="/login/verify")
    assert r.status_code == 429 and "Too many codes requested" in r.text
    assert call_button(r.text) is None
    assert [channel for _, channel in verify.starts] == ["sms", "sms"]
