"""The Verify v2 lifecycle, shared by the development backend and the fake Verify server so they cannot drift.

Rules (Twilio's Verification and VerificationCheck pages): a code is valid for 10 minutes; a start for a number
with a pending verification re-sends the same code on the same sid; the 6th send is refused (60203); after
5 checks the next one is refused (60202); approved, canceled, expired and maxed-out verifications are gone (20404).
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field

TTL_S = 600
MAX_SENDS = 5
MAX_CHECKS = 5
CHANNELS = frozenset({"sms", "call", "email", "whatsapp", "sna", "auto"})
E164 = re.compile(r"^\+[1-9][0-9]{1,14}$")
VERIFICATION_SID = re.compile(r"^VE[0-9a-fA-F]{32}$")

# Project conventions in the style of Twilio's magic numbers (Twilio's test credentials don't work with Verify).
LANDLINE = "+15005550006"
SLOW = "+15005550099"
SLOW_DELAY_S = 2.0
_SEND_FAULTS = {
    "+15005550010": (403, 60410, "Verification blocked by Fraud Guard"),
    "+15005550012": (429, 60212, "Too many concurrent requests for phone number"),
    "+15005550429": (429, 20429, "Too Many Requests"),
}


class VerifyFault(Exception):
    """What Verify would answer instead of a resource: HTTP status, Twilio code, message."""

    def __init__(self, status: int, code: int, message: str) -> None:
        super().__init__(code)
        self.status = status
        self.code = code
        self.message = message


def invalid(name: str) -> VerifyFault:
    return VerifyFault(400, 60200, f"Invalid parameter: {name}")


def code_is_well_formed(code: str) -> bool:
    return 4 <= len(code) <= 10


@dataclass
class SendAttempt:
    time: float
    channel: str
    attempt_sid: str


@dataclass
class Record:
    sid: str
    to: str
    code: str
    channel: str
    created: float
    updated: float
    status: str = "pending"
    checks: int = 0
    sends: list[SendAttempt] = field(default_factory=list)


class VerificationStore:
    """In-memory verifications; callers serialise access (the fake server holds a lock, dev is one event loop)."""

    def __init__(self, clock: Callable[[], float], ttl_s: float = TTL_S) -> None:
        self._clock = clock
        self._ttl_s = ttl_s
        self._by_sid: dict[str, Record] = {}
        self._by_to: dict[str, str] = {}

    def start(self, to: str, channel: str) -> Record:
        if not E164.match(to):
            raise invalid("To")
        if channel not in CHANNELS:
            raise invalid("Channel")
        if to == LANDLINE and channel == "sms":
            raise VerifyFault(403, 60205, "SMS is not supported by landline phone number")
        if to in _SEND_FAULTS:
            raise VerifyFault(*_SEND_FAULTS[to])
        now = self._clock()
        self._forget_lapsed(now)
        record = self._by_sid.get(self._by_to.get(to, ""))
        if record is not None and record.status == "max_attempts_reached":
            raise VerifyFault(429, 60202, "Max check attempts reached")
        if record is None or record.status != "pending":
            record = Record(
                sid="VE" + secrets.token_hex(16),
                to=to,
                code=f"{secrets.randbelow(10**6):06d}",
                channel=channel,
                created=now,
                updated=now,
            )
            self._by_sid[record.sid] = record
            self._by_to[to] = record.sid
        elif len(record.sends) >= MAX_SENDS:
            raise VerifyFault(429, 60203, "Max send attempts reached")
        record.channel = channel
        record.updated = now
        record.sends.append(SendAttempt(now, channel, "VL" + secrets.token_hex(16)))
        return record

    def check(self, code: str, *, sid: str | None = None, to: str | None = None) -> Record:
        if not code_is_well_formed(code):
            raise invalid("Code")
        record = self._live(sid if sid is not None else self._by_to.get(to or "", ""), "/VerificationCheck")
        record.updated = self._clock()
        if record.checks >= MAX_CHECKS:
            record.status = "max_attempts_reached"
            raise VerifyFault(429, 60202, "Max check attempts reached")
        record.checks += 1
        if secrets.compare_digest(code, record.code):
            record.status = "approved"
        return record

    def update(self, sid: str, status: str) -> Record:
        if status not in {"canceled", "approved"}:
            raise invalid("Status")
        record = self._live(sid, f"/Verifications/{sid}")
        record.status = status
        record.updated = self._clock()
        return record

    def fetch(self, sid: str) -> Record:
        return self._live(sid, f"/Verifications/{sid}")

    def code_for(self, sid: str) -> str | None:
        record = self._by_sid.get(sid)
        return record.code if record else None

    def _live(self, sid: str, resource: str) -> Record:
        record = self._by_sid.get(sid)
        if record is not None and record.status == "pending" and self._clock() - record.created >= self._ttl_s:
            record.status = "expired"
        if record is None or record.status != "pending":
            raise VerifyFault(404, 20404, f"The requested resource {resource} was not found")
        return record

    def _forget_lapsed(self, now: float) -> None:
        # A maxed-out number stays blocked until its window lapses; after that every record can go.
        for sid, record in list(self._by_sid.items()):
            if now - record.created >= self._ttl_s:
                del self._by_sid[sid]
                if self._by_to.get(record.to) == sid:
                    del self._by_to[record.to]
