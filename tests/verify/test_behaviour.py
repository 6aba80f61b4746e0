"""One lifecycle suite, run against the development backend and the Twilio backend through the fake (§2, R-O3)."""

from __future__ import annotations

import pytest

from tests.verify.conftest import Harness
from webapp.verify import (
    InvalidNumber,
    LandlineNoSms,
    RateLimited,
    SendBlocked,
    TooManyChecks,
    TooManySends,
    VerificationGone,
    VerifyError,
)

pytestmark = pytest.mark.anyio
NUMBER = "+14155550123"


def wrong(code: str) -> str:
    return f"{(int(code) + 1) % 10**6:06d}"


async def test_start_gives_a_pending_sms_verification(harness: Harness) -> None:
    """R-O8: the app keeps the VE sid the start returns."""
    started = await harness.gateway.start(NUMBER)
    assert started.status == "pending"
    assert started.channel == "sms"
    assert started.sid.startswith("VE") and len(started.sid) == 34


async def test_resend_keeps_the_same_sid_and_code(harness: Harness) -> None:
    first = await harness.gateway.start(NUMBER)
    code = harness.code_for(first.sid)
    again = await harness.gateway.start(NUMBER)
    assert again.sid == first.sid
    assert harness.code_for(again.sid) == code


async def test_call_me_instead_reuses_the_challenge(harness: Harness) -> None:
    """R-O11: a call is a second start on the same verification, same code, not a new challenge."""
    first = await harness.gateway.start(NUMBER)
    code = harness.code_for(first.sid)
    call = await harness.gateway.start(NUMBER, "call")
    assert (call.sid, call.channel) == (first.sid, "call")
    assert (await harness.gateway.check(call.sid, code)).approved


async def test_wrong_code_is_pending_then_right_code_approves(harness: Harness) -> None:
    """R-O3: only status approved is success; a wrong code is a pending result, not an error."""
    started = await harness.gateway.start(NUMBER)
    code = harness.code_for(started.sid)
    result = await harness.gateway.check(started.sid, wrong(code))
    assert result.status == "pending" and not result.approved
    result = await harness.gateway.check(started.sid, code)
    assert result.status == "approved" and result.approved


async def test_five_wrong_codes_end_the_challenge(harness: Harness) -> None:
    """R-O3, R-O5: after 5 checks the next one is refused even with the right code; the number stays blocked."""
    started = await harness.gateway.start(NUMBER)
    code = harness.code_for(started.sid)
    for _ in range(5):
        assert not (await harness.gateway.check(started.sid, wrong(code))).approved
    with pytest.raises(TooManyChecks):
        await harness.gateway.check(started.sid, code)
    with pytest.raises(VerificationGone):
        await harness.gateway.check(started.sid, code)
    with pytest.raises(TooManyChecks):
        await harness.gateway.start(NUMBER)
    harness.advance(600)
    fresh = await harness.gateway.start(NUMBER)
    assert fresh.sid != started.sid


async def test_sixth_send_is_refused(harness: Harness) -> None:
    for _ in range(5):
        started = await harness.gateway.start(NUMBER)
    with pytest.raises(TooManySends) as raised:
        await harness.gateway.start(NUMBER, "call")
    assert raised.value.code == 60203
    assert (await harness.gateway.check(started.sid, harness.code_for(started.sid))).approved


async def test_cancel_ends_the_verification_and_is_idempotent(harness: Harness) -> None:
    """R-O8: cancel a replaced challenge; a second cancel (20404) counts as done."""
    started = await harness.gateway.start(NUMBER)
    code = harness.code_for(started.sid)
    await harness.gateway.cancel(started.sid)
    await harness.gateway.cancel(started.sid)
    with pytest.raises(VerificationGone):
        await harness.gateway.check(started.sid, code)
    assert (await harness.gateway.start(NUMBER)).sid != started.sid


async def test_code_expires_after_ten_minutes(harness: Harness) -> None:
    """R-O7: Verify's 10-minute window; past it a right code is gone, never a success."""
    started = await harness.gateway.start(NUMBER)
    code = harness.code_for(started.sid)
    harness.advance(599)
    assert (await harness.gateway.check(started.sid, wrong(code))).status == "pending"
    harness.advance(1)
    with pytest.raises(VerificationGone):
        await harness.gateway.check(started.sid, code)


async def test_approved_code_cannot_be_used_twice(harness: Harness) -> None:
    """R-O3, R-O4: an approved verification is gone (20404), so a replay is never a second success."""
    started = await harness.gateway.start(NUMBER)
    code = harness.code_for(started.sid)
    assert (await harness.gateway.check(started.sid, code)).approved
    with pytest.raises(VerificationGone) as raised:
        await harness.gateway.check(started.sid, code)
    assert raised.value.code == 20404


@pytest.mark.parametrize(
    ("number", "error", "code"),
    [
        ("+15005550006", LandlineNoSms, 60205),
        ("+15005550010", SendBlocked, 60410),
        ("+15005550012", RateLimited, 60212),
        ("+15005550429", RateLimited, 20429),
        ("4155550123", InvalidNumber, 60200),
    ],
)
async def test_special_numbers(harness: Harness, number: str, error: type[VerifyError], code: int) -> None:
    """R-X4, R-O11: both backends honour the same special numbers, so error screens can be tried by hand."""
    with pytest.raises(error) as raised:
        await harness.gateway.start(number, "sms")
    assert type(raised.value) is error and raised.value.code == code


async def test_landline_can_take_a_call(harness: Harness) -> None:
    """R-O11: after 60205 the user may ask for a call, which works."""
    with pytest.raises(LandlineNoSms):
        await harness.gateway.start("+15005550006")
    started = await harness.gateway.start("+15005550006", "call")
    assert started.channel == "call"
    assert (await harness.gateway.check(started.sid, harness.code_for(started.sid))).approved
