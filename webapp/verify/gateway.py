"""What the rest of the app sees of Twilio Verify: two value types and one protocol."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

Channel = Literal["sms", "call"]


@dataclass(frozen=True)
class Verification:
    sid: str
    channel: str
    status: str


@dataclass(frozen=True)
class CheckResult:
    status: str

    @property
    def approved(self) -> bool:
        return self.status == "approved"


class VerifyGateway(Protocol):
    """Start, check and cancel verifications; every failure is a `webapp.verify.errors.VerifyError`."""

    name: str

    async def start(
        self, to: str, channel: Channel = "sms", *, locale: str | None = None, rate_limit_key: str | None = None
    ) -> Verification: ...

    async def check(self, verification_sid: str, code: str) -> CheckResult:
        """A wrong code is `CheckResult("pending")`, not an error."""
        ...

    async def cancel(self, verification_sid: str) -> None:
        """A verification that is already gone counts as canceled."""
        ...
