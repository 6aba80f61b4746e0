"""In-process stand-in for Verify in development: same lifecycle and special numbers, codes go to the log."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from webapp.verify.errors import Operation, VerifyError, error_for, log_provider_error
from webapp.verify.gateway import Channel, CheckResult, Verification
from webapp.verify.state import (
    SLOW,
    SLOW_DELAY_S,
    VERIFICATION_SID,
    VerificationStore,
    VerifyFault,
    code_is_well_formed,
)

log = logging.getLogger("webapp.verify.dev")
OUTBOX_SIZE = 50


def mask_number(number: str) -> str:
    """`+14155550123` → `+1••••••••23`: enough to tell numbers apart in a log, not enough to dial."""
    if len(number) <= 4:
        return "•" * len(number)
    return number[:2] + "•" * (len(number) - 4) + number[-2:]


@dataclass(frozen=True)
class OutboxMessage:
    time: datetime
    to: str
    channel: str
    code: str
    sid: str


class DevVerifyBackend:
    """Never used in production: `open_gateway` only builds it without Twilio credentials outside production."""

    name = "development"

    def __init__(self, clock: Callable[[], float] | None = None) -> None:
        self._clock = clock or time.time
        self._store = VerificationStore(self._clock)
        self._outbox: deque[OutboxMessage] = deque(maxlen=OUTBOX_SIZE)

    @property
    def outbox(self) -> list[OutboxMessage]:
        """Most recent first."""
        return list(reversed(self._outbox))

    async def start(
        self, to: str, channel: Channel = "sms", *, locale: str | None = None, rate_limit_key: str | None = None
    ) -> Verification:
        if to == SLOW:
            await asyncio.sleep(SLOW_DELAY_S)
        try:
            record = self._store.start(to, channel)
        except VerifyFault as fault:
            raise self._error("start", fault) from None
        masked = mask_number(to)
        log.warning("DEV VERIFY code %s for %s (%s)", record.code, masked, channel)
        now = datetime.fromtimestamp(self._clock(), UTC)
        self._outbox.append(OutboxMessage(now, masked, channel, record.code, record.sid))
        return Verification(sid=record.sid, channel=record.channel, status=record.status)

    async def check(self, verification_sid: str, code: str) -> CheckResult:
        if not code_is_well_formed(code):
            return CheckResult("pending")
        try:
            record = self._store.check(code, sid=verification_sid)
        except VerifyFault as fault:
            raise self._error("check", fault) from None
        return CheckResult(record.status)

    async def cancel(self, verification_sid: str) -> None:
        if not VERIFICATION_SID.match(verification_sid):
            return
        try:
            self._store.update(verification_sid, "canceled")
        except VerifyFault as fault:
            if fault.code != 20404:
                raise self._error("cancel", fault) from None

    def _error(self, operation: Operation, fault: VerifyFault) -> VerifyError:
        error = error_for(operation, fault.status, fault.code)
        log_provider_error(log, self.name, operation, error, fault.status)
        return error
