"""Every Twilio failure becomes exactly one domain error (R-X2, R-X3, R-X4, R-X5, R-X1)."""

from __future__ import annotations

import socket
import time
from collections.abc import AsyncIterator

import pytest

from tests.fakeverify.plugin import FakeVerify
from webapp.settings import Settings
from webapp.verify import (
    CountryBlocked,
    InvalidNumber,
    LandlineNoSms,
    Misconfigured,
    RateLimited,
    SendBlocked,
    ServiceUnavailable,
    TooManyChecks,
    TooManySends,
    VerificationGone,
    VerifyError,
    VerifyGateway,
    open_gateway,
)

pytestmark = pytest.mark.anyio
NUMBER = "+14155550123"


@pytest.fixture
async def gateway(twilio_settings: Settings) -> AsyncIterator[VerifyGateway]:
    async with open_gateway(twilio_settings) as gateway:
        yield gateway


@pytest.mark.parametrize(
    ("status", "code", "error"),
    [
        (400, 60200, InvalidNumber),
        (400, 60006, InvalidNumber),
        (403, 60205, LandlineNoSms),
        (429, 60203, TooManySends),
        (429, 60202, TooManyChecks),
        (429, 60212, RateLimited),
        (403, 60410, SendBlocked),
        (403, 60605, CountryBlocked),
        (403, 60238, SendBlocked),
        (404, 20404, Misconfigured),
        (401, 20003, Misconfigured),
        (500, 20500, ServiceUnavailable),
        (503, 20503, ServiceUnavailable),
        (400, 21211, ServiceUnavailable),
    ],
)
async def test_start_error_codes(
    gateway: VerifyGateway, fake_verify: FakeVerify, status: int, code: int, error: type[VerifyError]
) -> None:
    """R-X4: one row of the error table each; R-O11: no call is ever attempted after a failed send."""
    fake_verify.fault("start", status=status, code=code)
    with pytest.raises(error) as raised:
        await gateway.start(NUMBER)
    assert type(raised.value) is error and raised.value.code == code
    assert raised.value.__cause__ is None
    assert [r["form"]["Channel"] for r in fake_verify.requests()] == ["sms"]


@pytest.mark.parametrize(
    ("status", "code", "error"),
    [
        (429, 60202, TooManyChecks),
        (404, 20404, VerificationGone),
        (429, 20429, RateLimited),
        (400, 60200, ServiceUnavailable),
        (401, 20003, Misconfigured),
        (500, 20500, ServiceUnavailable),
    ],
)
async def test_check_error_codes(
    gateway: VerifyGateway, fake_verify: FakeVerify, status: int, code: int, error: type[VerifyError]
) -> None:
    """R-O3, R-X2: a failed check is an error, never an approval; 60202 also arrives as 404/20404."""
    started = await gateway.start(NUMBER)
    fake_verify.fault("check", status=status, code=code)
    with pytest.raises(error) as raised:
        await gateway.check(started.sid, fake_verify.code_for(started.sid))
    assert type(raised.value) is error and raised.value.code == code
    assert len(fake_verify.requests("check")) == 1


@pytest.mark.parametrize(("status", "code", "error"), [(500, 20500, ServiceUnavailable), (401, 20003, Misconfigured)])
async def test_cancel_error_codes(
    gateway: VerifyGateway, fake_verify: FakeVerify, status: int, code: int, error: type[VerifyError]
) -> None:
    started = await gateway.start(NUMBER)
    fake_verify.fault("cancel", status=status, code=code)
    with pytest.raises(error):
        await gateway.cancel(started.sid)


async def test_retry_after_is_passed_on(gateway: VerifyGateway, fake_verify: FakeVerify) -> None:
    fake_verify.fault("start", status=429, code=60212, retry_after=7)
    with pytest.raises(RateLimited) as raised:
        await gateway.start(NUMBER)
    assert raised.value.retry_after == 7


async def test_20429_is_retried_once_then_succeeds(gateway: VerifyGateway, fake_verify: FakeVerify) -> None:
    """R-X5: 20429 means "not processed", so one jittered retry is safe."""
    fake_verify.fault("start", status=429, code=20429)
    started = await gateway.start(NUMBER)
    assert started.status == "pending"
    assert len(fake_verify.requests("start")) == 2


async def test_20429_twice_is_rate_limited_after_one_retry(gateway: VerifyGateway, fake_verify: FakeVerify) -> None:
    """R-X5, R-X2: at most two starts reach Twilio, then "busy, try again"."""
    fake_verify.fault("start", status=429, code=20429, times=5)
    began = time.monotonic()
    with pytest.raises(RateLimited) as raised:
        await gateway.start(NUMBER)
    assert raised.value.code == 20429
    assert len(fake_verify.requests("start")) == 2
    assert time.monotonic() - began < 1.5


@pytest.mark.parametrize("code", [60203, 60212, 60410])
async def test_other_send_refusals_are_not_retried(gateway: VerifyGateway, fake_verify: FakeVerify, code: int) -> None:
    fake_verify.fault("start", status=429, code=code)
    with pytest.raises(VerifyError):
        await gateway.start(NUMBER)
    assert len(fake_verify.requests("start")) == 1


async def test_non_json_502_is_unavailable_and_not_retried(gateway: VerifyGateway, fake_verify: FakeVerify) -> None:
    """R-X5: an HTML 502 from a proxy fails closed with a single attempt."""
    fake_verify.fault("start", status=502, raw="<html><body>Bad Gateway</body></html>")
    with pytest.raises(ServiceUnavailable):
        await gateway.start(NUMBER)
    assert len(fake_verify.requests("start")) == 1


async def test_dropped_connection_is_unavailable(gateway: VerifyGateway, fake_verify: FakeVerify) -> None:
    started = await gateway.start(NUMBER)
    fake_verify.fault("check", drop=True)
    with pytest.raises(ServiceUnavailable):
        await gateway.check(started.sid, fake_verify.code_for(started.sid))


async def test_slow_start_times_out_in_time(gateway: VerifyGateway, fake_verify: FakeVerify) -> None:
    """R-X1: twilio_timeout_s=1 holds on the async client (twilio-python #925); R-X5: no retry."""
    began = time.monotonic()
    with pytest.raises(ServiceUnavailable):
        await gateway.start("+15005550099")
    assert time.monotonic() - began < 1.5
    assert len(fake_verify.requests("start")) == 1


async def test_slow_check_times_out_in_time(gateway: VerifyGateway, fake_verify: FakeVerify) -> None:
    """R-X2: a check that times out is unavailable, not a wrong code and not an approval."""
    started = await gateway.start(NUMBER)
    fake_verify.fault("check", delay_s=3)
    began = time.monotonic()
    with pytest.raises(ServiceUnavailable):
        await gateway.check(started.sid, fake_verify.code_for(started.sid))
    assert time.monotonic() - began < 1.5


async def test_connection_refused_is_unavailable(twilio_settings: Settings) -> None:
    """R-X3: aiohttp's ClientConnectorError is not a TwilioException and must not escape."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    async with open_gateway(twilio_settings.with_overrides(twilio_verify_base_url=f"http://127.0.0.1:{port}")) as gw:
        with pytest.raises(ServiceUnavailable):
            await gw.start(NUMBER)
        with pytest.raises(ServiceUnavailable):
            await gw.check("VE" + "0" * 32, "123456")
        with pytest.raises(ServiceUnavailable):
            await gw.cancel("VE" + "0" * 32)


async def test_wrong_credentials_are_misconfigured(twilio_settings: Settings, fake_verify: FakeVerify) -> None:
    async with open_gateway(twilio_settings.with_overrides(twilio_auth_token="0" * 32)) as gateway:
        with pytest.raises(Misconfigured) as raised:
            await gateway.start(NUMBER)
    assert raised.value.code == 20003


async def test_wrong_service_sid_is_misconfigured(twilio_settings: Settings, fake_verify: FakeVerify) -> None:
    async with open_gateway(twilio_settings.with_overrides(twilio_verify_service_sid="VA" + "0" * 32)) as gateway:
        with pytest.raises(Misconfigured) as raised:
            await gateway.start(NUMBER)
    assert raised.value.code == 20404
