"""The Verify v2 side of the fake: auth, validation, faults, the shared lifecycle and Twilio-shaped bodies."""

from __future__ import annotations

import base64
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

from tests.fakeverify import contract
from webapp.verify.state import SLOW, SLOW_DELAY_S, Record, VerificationStore, VerifyFault, invalid

OPERATIONS = {
    "CreateVerification": "start",
    "CreateVerificationCheck": "check",
    "UpdateVerification": "cancel",
    "FetchVerification": "fetch",
}
RETRY_AFTER_S = {60203: 600}


@dataclass
class Reply:
    status: int
    body: Any = None  # JSON-serialisable; None with `raw` unset means drop the connection
    raw: str | None = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Fault:
    operation: str | None = None
    to: str | None = None
    status: int | None = None
    code: int | None = None
    message: str = "Injected fault"
    raw: str | None = None
    delay_s: float = 0.0
    drop: bool = False
    times: int = 1
    retry_after: int | None = None

    def matches(self, operation: str, form: dict[str, str]) -> bool:
        return self.times > 0 and self.operation in {None, operation} and self.to in {None, form.get("To")}


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def error(status: int, code: int, message: str, retry_after: int | None = None) -> Reply:
    headers = {"WWW-Authenticate": 'Basic realm="Twilio API"'} if status == 401 else {}
    if status == 429:
        headers["Retry-After"] = str(retry_after or RETRY_AFTER_S.get(code, 1))
    body = {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }
    return Reply(status, body, headers=headers)


class Emulator:
    def __init__(
        self, account_sid: str, credentials: dict[str, str], service_sid: str, base_url: str, latency_s: float = 0.0
    ) -> None:
        self.account_sid, self.credentials, self.service_sid = account_sid, credentials, service_sid
        self.base_url, self.default_latency_s = base_url, latency_s
        self.operations = contract.load()
        self.lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.offset = 0.0
            self.latency_s = self.default_latency_s
            self.store = VerificationStore(self.now)
            self.requests: list[dict[str, Any]] = []
            self.violations: list[str] = []
            self.faults: list[Fault] = []

    def now(self) -> float:
        return time.time() + self.offset

    def handle(self, method: str, path: str, headers: dict[str, str], body: bytes) -> Reply:
        pairs = parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)
        form = dict(pairs)
        op, problems = contract.validate(self.operations, method, path, pairs, headers.get("content-type", ""))
        operation = OPERATIONS.get(op.operation_id, op.operation_id) if op else None
        user = self._user(headers.get("authorization", ""))
        with self.lock:
            self.violations += problems
            self.requests.append(
                {
                    "method": method,
                    "path": path,
                    "operation": operation,
                    "form": form,
                    "auth_user": user,
                    "headers": {k: v for k, v in headers.items() if k != "authorization"},
                }
            )
            fault = next((f for f in self.faults if f.matches(operation or "", form)), None)
            if fault:
                fault.times -= 1
            latency = self.latency_s
        time.sleep(latency + (fault.delay_s if fault else 0.0))
        if user is None:
            return error(401, 20003, "Authenticate")
        if fault and (fault.drop or fault.raw is not None or fault.status is not None):
            return self._fault_reply(fault)
        if op is None:
            known = any(o.match(path) is not None for o in self.operations)
            return error(405, 20004, "Method not allowed") if known else error(404, 20404, "Not found")
        if (op.match(path) or {}).get("ServiceSid") != self.service_sid:
            return error(404, 20404, f"The requested resource {path.removeprefix('/v2')} was not found")
        if form.get("To") == SLOW:
            time.sleep(SLOW_DELAY_S)
        try:
            with self.lock:
                return self._apply(operation or "", path, form)
        except VerifyFault as fault_:
            message = fault_.message
            if fault_.code == 20404:
                message = f"The requested resource {path.removeprefix('/v2')} was not found"
            return error(fault_.status, fault_.code, message)

    def _user(self, authorization: str) -> str | None:
        scheme, _, encoded = authorization.partition(" ")
        try:
            user, _, password = base64.b64decode(encoded).decode().partition(":")
        except ValueError:
            return None
        return user if scheme.lower() == "basic" and self.credentials.get(user) == password else None

    def _fault_reply(self, fault: Fault) -> Reply:
        if fault.drop:
            return Reply(0)
        if fault.raw is not None:
            return Reply(fault.status or 502, raw=fault.raw, headers={"Content-Type": "text/html"})
        return error(fault.status or 400, fault.code or fault.status or 400, fault.message, fault.retry_after)

    def _apply(self, operation: str, path: str, form: dict[str, str]) -> Reply:
        if operation == "start":
            return Reply(201, self._verification(self.store.start(form.get("To", ""), form.get("Channel", ""))))
        if operation == "check":
            if "VerificationSid" not in form and "To" not in form:
                raise invalid("VerificationSid")
            record = self.store.check(form.get("Code", ""), sid=form.get("VerificationSid"), to=form.get("To"))
            body = self._verification(record)
            for key in ("url", "lookup", "send_code_attempts", "sna"):
                del body[key]
            return Reply(200, {**body, "sna_attempts_error_codes": []})
        sid = path.rsplit("/", 1)[1]
        if operation == "cancel":
            return Reply(200, self._verification(self.store.update(sid, form.get("Status", ""))))
        return Reply(200, self._verification(self.store.fetch(sid)))

    def _verification(self, record: Record) -> dict[str, Any]:
        return {
            "sid": record.sid,
            "service_sid": self.service_sid,
            "account_sid": self.account_sid,
            "to": record.to,
            "channel": record.channel,
            "status": record.status,
            "valid": record.status == "approved",
            "lookup": {},
            "amount": None,
            "payee": None,
            "send_code_attempts": [
                {"time": _iso(s.time), "channel": s.channel, "attempt_sid": s.attempt_sid} for s in record.sends
            ],
            "date_created": _iso(record.created),
            "date_updated": _iso(record.updated),
            "sna": None,
            "url": f"{self.base_url}/v2/Services/{self.service_sid}/Verifications/{record.sid}",
        }
