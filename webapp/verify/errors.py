"""Domain errors of the Verify gateway and the one table that maps Twilio error codes onto them."""

from __future__ import annotations

import logging
from typing import Literal

from webapp import metrics

Operation = Literal["start", "check", "cancel"]


class VerifyError(Exception):
    """Base of every gateway error; `code` is Twilio's error code, `retry_after` seconds when known."""

    def __init__(self, code: int | None = None, retry_after: int | None = None) -> None:
        super().__init__(code)
        self.code = code
        self.retry_after = retry_after

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code!r}, retry_after={self.retry_after!r})"


class InvalidNumber(VerifyError):
    """60200 about `To`, 60006: ask the user to check the number."""


class LandlineNoSms(VerifyError):
    """60205: the number cannot take SMS; offer a voice call."""


class TooManySends(VerifyError):
    """60203: five sends without a completed check."""


class TooManyChecks(VerifyError):
    """60202: five checks used; the challenge is over."""


class VerificationGone(VerifyError):
    """20404 on check or cancel: approved, canceled, expired or maxed out."""


class SendBlocked(VerifyError):
    """60410 Fraud Guard, 60238 blocked by Twilio: a generic "can't send right now"."""


class CountryBlocked(SendBlocked):
    """60605: the destination country is not allowed by Verify Geo Permissions."""


class RateLimited(VerifyError):
    """20429 after its single retry, 60212."""


class ServiceUnavailable(VerifyError):
    """Network error, timeout, 5xx, a non-JSON body or an unknown code."""


class Misconfigured(ServiceUnavailable):
    """20003 authentication failed, 20404 on start (wrong service SID)."""


_BY_CODE: dict[int, type[VerifyError]] = {
    60006: InvalidNumber,
    60202: TooManyChecks,
    60203: TooManySends,
    60205: LandlineNoSms,
    60212: RateLimited,
    60238: SendBlocked,
    60410: SendBlocked,
    60605: CountryBlocked,
    20429: RateLimited,
    20003: Misconfigured,
}
# Codes the user's own actions produce; everything else means something is wrong on our side or Twilio's.
_EXPECTED = frozenset({60006, 60202, 60203, 60205, 60212, 60410, 60605, 20404, 20429})


def error_for(operation: Operation, status: int, code: int | None, retry_after: int | None = None) -> VerifyError:
    """Translate one failed Verify call (HTTP status, Twilio code) into its domain error."""
    kind: type[VerifyError]
    if code == 20404:
        # Verifications vanish once finished, but a start can only 404 on a wrong service SID.
        kind = Misconfigured if operation == "start" else VerificationGone
    elif code == 60200:
        # Only `To` comes from the user; on check/cancel the app validated everything, so it is our bug.
        kind = InvalidNumber if operation == "start" else ServiceUnavailable
    elif status >= 500 or code is None:
        kind = ServiceUnavailable
    else:
        kind = _BY_CODE.get(code, ServiceUnavailable)
    return kind(code, retry_after)


def log_provider_error(
    logger: logging.Logger, provider: str, operation: Operation, error: VerifyError, status: int | None = None
) -> None:
    """One structured record (and one count) per provider failure; never the number or the code, only Twilio's."""
    metrics.verify_error(operation, error.code)
    expected = error.code in _EXPECTED and not isinstance(error, ServiceUnavailable)
    logger.log(
        logging.WARNING if expected else logging.ERROR,
        "verify provider error",
        extra={
            "event": "provider_error",
            "provider": provider,
            "operation": operation,
            "code": error.code,
            "http_status": status,
            "error": type(error).__name__,
        },
    )
