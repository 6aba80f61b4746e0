"""pytest plugin: `fake_verify` (a clean fake Verify server per test) and `twilio_settings` pointing at it.

Enable with `pytest_plugins = ["tests.fakeverify.plugin"]`. A test fails at teardown if any request it caused
broke Twilio's published contract (unknown path or form key, missing required key, bad enum or SID pattern).
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from tests.fakeverify.server import FakeVerifyServer
from webapp.settings import Settings

# The fake is always on loopback; never let an HTTP_PROXY in the environment intercept control calls.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class FakeVerify:
    """Test-side handle; every call goes through the server's /_fake control endpoints."""

    def __init__(
        self, base_url: str, account_sid: str, auth_token: str, service_sid: str, api_key_sid: str, api_key_secret: str
    ) -> None:
        self.base_url = base_url
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.service_sid = service_sid
        self.api_key_sid = api_key_sid
        self.api_key_secret = api_key_secret

    @classmethod
    def of(cls, server: FakeVerifyServer) -> FakeVerify:
        return cls(**server.settings())

    def _call(self, method: str, path: str, payload: dict[str, Any] | None = None) -> Any:
        data = json.dumps(payload).encode() if payload is not None else None
        request = urllib.request.Request(self.base_url + path, data=data, method=method)  # noqa: S310 - http://127.0.0.1
        with _OPENER.open(request, timeout=10) as response:
            return json.loads(response.read())

    def requests(self, operation: str | None = None) -> list[dict[str, Any]]:
        """Recorded Verify calls (method, path, operation, form, auth_user, headers without Authorization)."""
        recorded: list[dict[str, Any]] = self._call("GET", "/_fake/requests")
        return [r for r in recorded if operation is None or r["operation"] == operation]

    def violations(self) -> list[str]:
        found: list[str] = self._call("GET", "/_fake/violations")
        return found

    def code_for(self, sid: str) -> str:
        code: str = self._call("GET", f"/_fake/code?sid={sid}")["code"]
        return code

    def fault(
        self,
        operation: str | None = None,
        *,
        to: str | None = None,
        status: int | None = None,
        code: int | None = None,
        raw: str | None = None,
        delay_s: float = 0.0,
        drop: bool = False,
        times: int = 1,
        retry_after: int | None = None,
    ) -> None:
        """Make the next `times` matching calls (operation: start, check, cancel, fetch) misbehave."""
        spec: dict[str, Any] = {"operation": operation, "to": to, "status": status, "code": code, "raw": raw}
        spec |= {"delay_s": delay_s, "drop": drop, "times": times, "retry_after": retry_after}
        self._call("POST", "/_fake/faults", spec)

    def advance(self, seconds: float) -> None:
        self._call("POST", "/_fake/clock", {"advance": seconds})

    def set_latency(self, ms: float) -> None:
        self._call("POST", "/_fake/latency", {"ms": ms})

    def reset(self) -> None:
        self._call("POST", "/_fake/reset", {})


@pytest.fixture(scope="session")
def _fake_verify_server() -> Iterator[FakeVerifyServer]:
    server = FakeVerifyServer().start()
    yield server
    server.stop()


@pytest.fixture
def fake_verify(_fake_verify_server: FakeVerifyServer) -> Iterator[FakeVerify]:
    fake = FakeVerify.of(_fake_verify_server)
    fake.reset()
    yield fake
    violations = fake.violations()
    fake.reset()
    if violations:
        pytest.fail("requests broke Twilio's Verify v2 contract:\n" + "\n".join(violations), pytrace=False)


@pytest.fixture
def twilio_settings(fake_verify: FakeVerify) -> Settings:
    return Settings().with_overrides(
        twilio_account_sid=fake_verify.account_sid,
        twilio_auth_token=fake_verify.auth_token,
        twilio_verify_service_sid=fake_verify.service_sid,
        twilio_verify_base_url=fake_verify.base_url,
        twilio_timeout_s=1.0,
    )
