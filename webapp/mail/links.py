"""The paths mailed links point to, in one place: the route table, the mails and the log redaction agree on them."""

from __future__ import annotations

import re

RESET = "/password/reset/"
VERIFY = "/email/verify/"
CONFIRM = "/email/confirm/"
NOT_ME = "/not-me/"

# A token is the last segment of one of these paths; access logs must never keep it (secrets never in logs).
_TOKEN_PATH = re.compile(r"(/(?:password/reset|email/verify|email/confirm|not-me)/)[^/?#\s\"]+")


def redact(text: str) -> str:
    """`/password/reset/abc…` → `/password/reset/[redacted]`, wherever it appears in `text`."""
    return _TOKEN_PATH.sub(r"\1[redacted]", text)
