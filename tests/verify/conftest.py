"""Fixtures for the gateway tests; `fake_verify` and `twilio_settings` come from `tests.fakeverify.plugin`."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import pytest

from tests.fakeverify.plugin import FakeVerify
from webapp.settings import Settings
from webapp.verify import VerifyGateway, open_gateway
from webapp.verify.dev import DevVerifyBackend


@dataclass
class Harness:
    """A gateway plus the test's view of the provider: the code it "sent" and a way to move its clock."""

    gateway: VerifyGateway
    code_for: Callable[[str], str]
    advance: Callable[[float], None]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def dev_harness() -> AsyncIterator[Harness]:
    now = [1_700_000_000.0]

    def advance(seconds: float) -> None:
        now[0] += seconds

    async with open_gateway(Settings(), clock=lambda: now[0]) as gateway:
        assert isinstance(gateway, DevVerifyBackend)
        backend = gateway

        def code_for(sid: str) -> str:
            return next(message.code for message in backend.outbox if message.sid == sid)

        yield Harness(gateway, code_for, advance)


@pytest.fixture
async def twilio_harness(fake_verify: FakeVerify, twilio_settings: Settings) -> AsyncIterator[Harness]:
    async with open_gateway(twilio_settings) as gateway:
        assert gateway.name == "twilio"
        yield Harness(gateway, fake_verify.code_for, fake_verify.advance)


@pytest.fixture(params=["development", "twilio"])
def harness(request: pytest.FixtureRequest) -> Harness:
    """The same behavioural suite runs against both backends so they cannot drift apart."""
    fixture = "dev_harness" if request.param == "development" else "twilio_harness"
    result: Harness = request.getfixturevalue(fixture)
    return result
