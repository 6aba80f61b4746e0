"""Security events (R-A1…R-A4): one JSON log line and one row each, OWASP logging-vocabulary names."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session

from webapp.models import SecurityEvent
from webapp.security.clients import Client

log = logging.getLogger("webapp.audit")

# Shown on the profile's "Recent security activity"; events not listed stay in the log only.
EVENT_LABELS = {
    "authn_login_success": "Signed in",
    "authn_login_successafterfail": "Signed in after failed attempts",
    "authn_login_fail": "Failed sign-in",
    "authn_login_lock": "Sign-in locked after failed attempts",
    "authn_password_change": "Password change attempted",
    "session_logout": "Signed out",
    "session_revoked": "Other sessions signed out",
    "mfa_code_sent": "Verification code sent",
    "mfa_check_fail": "Wrong verification code",
    "mfa_lock": "Two-step verification locked after failed codes",
    "mfa_enabled": "Two-step verification turned on",
    "mfa_disabled": "Two-step verification turned off",
    "mfa_phone_changed": "Phone number changed",
    "recovery_code_used": "Recovery code used",
    "mfa_method_added": "Sign-in method added",
    "mfa_method_removed": "Sign-in method removed",
    "mfa_method_renamed": "Sign-in method renamed",
    "webauthn_counter_regression": "Passkey refused: its counter went backwards (possible copy)",
    "browsers_forgotten": "Remembered browsers forgotten",
    "recovery_codes_regenerated": "Recovery codes regenerated",
    "excess_rate_limit_exceeded": "Too many requests refused",
    "malicious_csrf": "Cross-site request refused",
    "admin_mfa_reset": "Two-step verification reset by an administrator",
    "admin_sessions_revoked": "Signed out everywhere by an administrator",
    "admin_unlocked": "Unlocked by an administrator",
    "admin_user_disabled": "Account disabled by an administrator",
    "admin_user_enabled": "Account enabled by an administrator",
    "password_reset_requested": "Password reset link requested",
    "authn_password_reset": "Password reset from an email link",
    "email_verified": "Email address verified",
    "email_change_requested": "Email address change requested",
    "email_changed": "Email address changed",
    "not_me_confirmed": "“This wasn't me” confirmed: every session ended",
    "mail_delivery_failed": "A security email could not be delivered",
}


_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime", "audit"}


class JsonFormatter(logging.Formatter):
    """Values travel as JSON fields, never spliced into the message, so they can't forge lines (R-A4)."""

    def format(self, record: logging.LogRecord) -> str:
        body: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        body.update({k: v for k, v in vars(record).items() if k not in _STANDARD and not k.startswith("_")})
        fields = getattr(record, "audit", None)
        if isinstance(fields, dict):
            body.update(fields)
        if record.exc_info:
            body["exc"] = self.formatException(record.exc_info)
        return json.dumps(body, ensure_ascii=True, default=str)


def record(s: Session, /, client: Client, event: str, outcome: str, *, user_id: int | None = None,
           subject_hash: str | None = None, **details: Any) -> None:
    """Add one event to the unit of work `s`: it commits or rolls back with the change it describes."""
    fields = {"event": event, "outcome": outcome, "user_id": user_id, "subject_hash": subject_hash,
              "ip": client.ip, "ua_hash": client.ua_hash, "browser": client.browser,
              "request_id": client.request_id, **details}
    log.info(event, extra={"audit": fields})
    s.add(SecurityEvent(
        event=event, outcome=outcome, user_id=user_id, subject_hash=subject_hash, ip=client.ip[:64],
        browser=client.browser[:64], ua_hash=client.ua_hash, request_id=client.request_id[:32], details=details,
    ))
