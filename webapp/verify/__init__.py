"""Phone verification codes through Twilio Verify v2, or an in-process stand-in during development."""

from __future__ import annotations

from webapp.verify.errors import (
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
)
from webapp.verify.factory import open_gateway
from webapp.verify.gateway import Channel, CheckResult, Verification, VerifyGateway

__all__ = [
    "Channel",
    "CheckResult",
    "CountryBlocked",
    "InvalidNumber",
    "LandlineNoSms",
    "Misconfigured",
    "RateLimited",
    "SendBlocked",
    "ServiceUnavailable",
    "TooManyChecks",
    "TooManySends",
    "Verification",
    "VerificationGone",
    "VerifyError",
    "VerifyGateway",
    "open_gateway",
]
