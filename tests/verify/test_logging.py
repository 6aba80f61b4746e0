"""No phone number or code in any log record (R-PR2, R-O14, R-X6); provider errors are structured (R-A3)."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest

from tests.fakeverify.plugin import FakeVerify
from tests.verify.conftest import Harness
from webapp.settings import Settings
from webapp.verify import LandlineNoSms, ServiceUnavailable, open_gateway

pytestmark = pytest.mark.anyio
NUMBER = "+14155550123"
ROOT = Path(__file__).resolve().parents[2]


def record_text(record: logging.LogRecord) -> str:
    """Message, arguments and every extra field: a secret anywhere in the record counts."""
    return record.getMessage() + " " + " ".join(str(value) for value in vars(record).values())


def leaks(records: list[logging.LogRecord], *secrets: str) -> list[str]:
    return [record_text(r) for r in records if any(s in record_text(r) for s in secrets)]


async def test_start_and_check_log_no_number_or_code(harness: Harness, caplog: pytest.LogCaptureFixture) -> None:
    """R-PR2, R-O14: with DEBUG everywhere, only the development backend's marked line shows the code."""
    caplog.set_level(logging.DEBUG)
    started = await harness.gateway.start(NUMBER)
    code = harness.code_for(started.sid)
    await harness.gateway.check(started.sid, code)
    others = [r for r in caplog.records if not r.getMessage().startswith("DEV VERIFY code")]
    assert leaks(others, NUMBER, NUMBER[2:], code) == []
    assert leaks(caplog.records, NUMBER, NUMBER[2:]) == []


async def test_twilio_loggers_stay_quiet_even_when_forced_to_debug(
    twilio_settings: Settings, fake_verify: FakeVerify, caplog: pytest.LogCaptureFixture
) -> None:
    """R-X6: the gateway sets twilio's HTTP loggers to WARNING; even at DEBUG they never see bodies."""
    caplog.set_level(logging.DEBUG)
    async with open_gateway(twilio_settings) as gateway:
        assert logging.getLogger("twilio.http_client").level == logging.WARNING
        assert logging.getLogger("twilio.async_http_client").level == logging.WARNING
        await gateway.start(NUMBER)
        assert not [r for r in caplog.records if r.name.startswith("twilio")]
        caplog.set_level(logging.DEBUG, logger="twilio.async_http_client")
        started = await gateway.start(NUMBER)
        await gateway.check(started.sid, fake_verify.code_for(started.sid))
    assert [r for r in caplog.records if r.name == "twilio.async_http_client"]
    assert leaks(caplog.records, NUMBER, NUMBER[2:], fake_verify.code_for(started.sid)) == []


async def test_dev_code_line_is_marked_and_masked(dev_harness: Harness, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    started = await dev_harness.gateway.start(NUMBER, "call")
    code = dev_harness.code_for(started.sid)
    [line] = [r for r in caplog.records if r.name == "webapp.verify.dev" and code in r.getMessage()]
    assert line.levelno == logging.WARNING
    assert line.getMessage() == f"DEV VERIFY code {code} for +1••••••••23 (call)"


async def test_provider_error_is_structured(
    twilio_settings: Settings, fake_verify: FakeVerify, caplog: pytest.LogCaptureFixture
) -> None:
    """R-A3: event=provider_error, provider=twilio and the Twilio code as fields; no number."""
    caplog.set_level(logging.DEBUG)
    async with open_gateway(twilio_settings) as gateway:
        with pytest.raises(LandlineNoSms):
            await gateway.start("+15005550006")
    [record] = [r for r in caplog.records if getattr(r, "event", None) == "provider_error"]
    assert (record.provider, record.code, record.operation) == ("twilio", 60205, "start")
    assert record.levelno == logging.WARNING
    assert leaks(caplog.records, "5005550006") == []


async def test_transport_error_is_logged_at_error(twilio_settings: Settings, caplog: pytest.LogCaptureFixture) -> None:
    """R-A3: a network failure is an ERROR record with the structured fields."""
    caplog.set_level(logging.DEBUG)
    dead = twilio_settings.with_overrides(twilio_verify_base_url="http://127.0.0.1:9")
    async with open_gateway(dead) as gateway:
        with pytest.raises(ServiceUnavailable):
            await gateway.start(NUMBER)
    [record] = [r for r in caplog.records if getattr(r, "event", None) == "provider_error"]
    assert record.levelno == logging.ERROR and record.provider == "twilio"
    assert leaks(caplog.records, NUMBER, NUMBER[2:]) == []


def test_exception_imports() -> None:
    """R-X3, K4: the 9.x home of the exceptions; twilio.rest no longer exports TwilioException."""
    from twilio.base.exceptions import TwilioException, TwilioRestException

    assert issubclass(TwilioRestException, TwilioException)
    with pytest.raises(ImportError):
        exec("from twilio.rest import TwilioException")  # noqa: S102 - the import is the thing under test
    pattern = re.compile(r"from\s+twilio\.rest\s+import\s+[^\n]*TwilioException")
    offenders = [
        str(path)
        for folder in ("webapp", "tests", "scripts")
        for path in (ROOT / folder).rglob("*.py")
        if path != Path(__file__).resolve() and pattern.search(path.read_text(encoding="utf-8"))
    ]
    assert offenders == []
