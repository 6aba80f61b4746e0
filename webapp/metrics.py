"""Prometheus counters the domain increments where it already audits or logs the event. No HTTP here.

Every label takes values from a small fixed set (route templates, channels, outcomes, limit kinds, known Twilio
codes), never a path, a user or a number, so the series count stays bounded whatever clients send.
Counters are per process: Prometheus scrapes each replica and sums (docs/deploy.md).
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

# Twilio codes the app knows by name; anything else is counted as "other" so a new code can't grow the series.
KNOWN_TWILIO_CODES = frozenset({20003, 20404, 20429, 60006, 60200, 60202, 60203, 60205, 60212, 60238, 60410, 60605})

HTTP_REQUESTS = Counter("webapp_http_requests", "HTTP requests by route template, method and status",
                        ["route", "method", "status"])
HTTP_LATENCY = Histogram("webapp_http_request_duration_seconds", "Time to answer, by route template and method",
                         ["route", "method"])
CODES_SENT = Counter("webapp_verify_codes_sent", "Verification code sends by channel and outcome "
                     "(sent, failed at the provider, refused by a limit)", ["channel", "outcome"])
VERIFY_ERRORS = Counter("webapp_verify_errors", "Verify API errors by operation and Twilio error code",
                        ["operation", "code"])
CODE_CHECKS = Counter("webapp_code_checks", "Code and recovery-code checks by factor and outcome",
                      ["factor", "outcome"])
LOCKOUTS = Counter("webapp_lockouts", "Locks set after too many failures, by kind (login, mfa)", ["kind"])
THROTTLE_REFUSALS = Counter("webapp_throttle_refusals", "Requests refused by a limit, by kind", ["kind"])


def code_sent(channel: str, outcome: str) -> None:
    CODES_SENT.labels("call" if channel == "call" else "sms", outcome).inc()


def verify_error(operation: str, code: int | None) -> None:
    label = "none" if code is None else str(code) if code in KNOWN_TWILIO_CODES else "other"
    VERIFY_ERRORS.labels(operation, label).inc()


def code_checked(factor: str, outcome: str) -> None:
    CODE_CHECKS.labels("recovery" if factor == "recovery" else "sms", outcome).inc()


def locked_out(kind: str) -> None:
    LOCKOUTS.labels(kind).inc()


def refused(kind: str) -> None:
    THROTTLE_REFUSALS.labels(kind).inc()
