"""The development Verify backend, recording every call the app makes (to assert "no check call", "one send")."""

from __future__ import annotations

from webapp.verify.dev import DevVerifyBackend
from webapp.verify.gateway import Channel, CheckResult, Verification


class CountingVerify(DevVerifyBackend):
    """The development backend, recording every call the app makes (to assert "no check call", "one send")."""

    def __init__(self) -> None:
        super().__init__()
        self.starts: list[tuple[str, str]] = []
        self.checks: list[tuple[str, str]] = []
        self.cancels: list[str] = []

    async def start(self, to: str, channel: Channel = "sms", *, locale: str | None = None,
                    rate_limit_key: str | None = None) -> Verification:
        self.starts.append((to, channel))
        return await super().start(to, channel, locale=locale, rate_limit_key=rate_limit_key)

    async def check(self, verification_sid: str, code: str) -> CheckResult:
        self.checks.append((verification_sid, code))
        return await super().check(verification_sid, code)

    async def cancel(self, verification_sid: str) -> None:
        self.cancels.append(verification_sid)
        await super().cancel(verification_sid)

    @property
    def code(self) -> str:
        return self.outbox[0].code
