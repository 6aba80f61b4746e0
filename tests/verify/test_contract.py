"""Contract tests: what the Twilio backend puts on the wire, checked against Twilio's published spec (§7)."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from scripts.extract_verify_contract import render
from tests.fakeverify.contract import CONTRACT_PATH
from tests.fakeverify.plugin import FakeVerify
from webapp.settings import Settings
from webapp.verify import VerificationGone, VerifyGateway, open_gateway

pytestmark = pytest.mark.anyio
NUMBER = "+14155550123"
SPEC = Path(__file__).resolve().parents[2].parent / "shared" / "twilio-oai" / "twilio_verify_v2.json"


@pytest.fixture
async def gateway(twilio_settings: Settings) -> AsyncIterator[VerifyGateway]:
    async with open_gateway(twilio_settings) as gateway:
        yield gateway


async def test_start_sends_only_to_and_channel(gateway: VerifyGateway, fake_verify: FakeVerify) -> None:
    """R-O14: no CustomCode, nothing optional unless asked for; form-encoded, Basic auth as the account."""
    await gateway.start(NUMBER)
    [start] = fake_verify.requests()
    assert (start["method"], start["path"]) == ("POST", f"/v2/Services/{fake_verify.service_sid}/Verifications")
    assert start["form"] == {"To": NUMBER, "Channel": "sms"}
    assert start["headers"]["content-type"] == "application/x-www-form-urlencoded"
    assert start["auth_user"] == fake_verify.account_sid


async def test_start_options_and_rate_limits(twilio_settings: Settings, fake_verify: FakeVerify) -> None:
    """R-PR3, R-O10: RateLimits carries the caller's hashed key under the configured name, never the number."""
    settings = twilio_settings.with_overrides(
        verify_friendly_name="Two-step Accounts", twilio_rate_limit_name="user_key"
    )
    key = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
    async with open_gateway(settings) as gateway:
        await gateway.start(NUMBER, "call", locale="fr_CA", rate_limit_key=key)
    [start] = fake_verify.requests()
    assert start["form"] == {
        "To": NUMBER,
        "Channel": "call",
        "Locale": "fr",
        "CustomFriendlyName": "Two-step Accounts",
        "RateLimits": json.dumps({"user_key": key}),
    }
    assert NUMBER.lstrip("+") not in start["form"]["RateLimits"]
    assert "CustomCode" not in start["form"]


@pytest.mark.parametrize(("name", "key", "locale"), [("user_key", None, "xx"), ("", "abc", None), ("user_key", "", "")])
async def test_rate_limits_and_locale_only_when_usable(
    twilio_settings: Settings, fake_verify: FakeVerify, name: str, key: str | None, locale: str | None
) -> None:
    """R-PR3: RateLimits needs both a configured name and a key; an unsupported locale would 404 a start."""
    async with open_gateway(twilio_settings.with_overrides(twilio_rate_limit_name=name)) as gateway:
        await gateway.start(NUMBER, locale=locale, rate_limit_key=key)
    [start] = fake_verify.requests()
    assert start["form"] == {"To": NUMBER, "Channel": "sms"}


async def test_check_sends_exactly_sid_and_code(gateway: VerifyGateway, fake_verify: FakeVerify) -> None:
    """R-O8, D-5: the check names the verification by sid; the body has no To."""
    started = await gateway.start(NUMBER)
    await gateway.check(started.sid, "123456")
    [check] = fake_verify.requests("check")
    assert (check["method"], check["path"]) == ("POST", f"/v2/Services/{fake_verify.service_sid}/VerificationCheck")
    assert check["form"] == {"VerificationSid": started.sid, "Code": "123456"}


async def test_cancel_sends_status_canceled(gateway: VerifyGateway, fake_verify: FakeVerify) -> None:
    """R-O8: cancel is an update of the verification to Status=canceled."""
    started = await gateway.start(NUMBER)
    await gateway.cancel(started.sid)
    [cancel] = fake_verify.requests("cancel")
    assert cancel["path"] == f"/v2/Services/{fake_verify.service_sid}/Verifications/{started.sid}"
    assert cancel["form"] == {"Status": "canceled"}


async def test_malformed_input_never_reaches_twilio(gateway: VerifyGateway, fake_verify: FakeVerify) -> None:
    """A code outside 4–10 characters is a wrong code; a malformed sid names no live verification."""
    started = await gateway.start(NUMBER)
    assert (await gateway.check(started.sid, "123")).status == "pending"
    assert (await gateway.check(started.sid, "12345678901")).status == "pending"
    with pytest.raises(VerificationGone):
        await gateway.check("VE../../Services", "123456")
    await gateway.cancel("not-a-sid")
    assert [r["operation"] for r in fake_verify.requests()] == ["start"]


async def test_api_key_credentials(twilio_settings: Settings, fake_verify: FakeVerify) -> None:
    settings = twilio_settings.with_overrides(
        twilio_auth_token="",
        twilio_api_key_sid=fake_verify.api_key_sid,
        twilio_api_key_secret=fake_verify.api_key_secret,
    )
    async with open_gateway(settings) as gateway:
        await gateway.start(NUMBER)
    assert [r["auth_user"] for r in fake_verify.requests()] == [fake_verify.api_key_sid]


async def test_region_and_edge_in_environment_do_not_rewrite_the_host(
    twilio_settings: Settings, fake_verify: FakeVerify, monkeypatch: pytest.MonkeyPatch
) -> None:
    """§4: twilio would splice TWILIO_REGION into http://127.0.0.1 unless given its own environment mapping."""
    monkeypatch.setenv("TWILIO_REGION", "ie1")
    monkeypatch.setenv("TWILIO_EDGE", "dublin")
    async with open_gateway(twilio_settings) as gateway:
        await gateway.start(NUMBER)
    assert len(fake_verify.requests("start")) == 1


def test_fake_flags_requests_that_break_the_contract(fake_verify: FakeVerify) -> None:
    """The teardown check is only worth something if the validator catches real mistakes."""
    body = b"To=%2B14155550123&Code=1234&VerificationSid=VE123&CustomCodez=1"
    request = urllib.request.Request(  # noqa: S310 - http://127.0.0.1
        f"{fake_verify.base_url}/v2/Services/{fake_verify.service_sid}/VerificationCheck", data=body, method="POST"
    )
    request.add_header("Content-Type", "application/x-www-form-urlencoded")
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with pytest.raises(urllib.error.HTTPError, match="401"):
        opener.open(request, timeout=5)  # unauthenticated on purpose: validation happens before auth
    problems = "\n".join(fake_verify.violations())
    assert "VerificationSid='VE123' does not match" in problems
    assert "form key CustomCodez is not in CreateVerificationCheck" in problems
    fake_verify.reset()
    assert fake_verify.violations() == []


def test_committed_contract_matches_the_vendored_spec() -> None:
    """The fake validates against an extract; re-extracting from Twilio's spec must give the committed file."""
    if not SPEC.is_file():
        pytest.skip(f"Twilio's spec is not beside the repository ({SPEC}); the committed extract is used as is")
    assert render(SPEC) == CONTRACT_PATH.read_text(encoding="utf-8")
