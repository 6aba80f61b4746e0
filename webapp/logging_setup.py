"""One JSON log stream; the Twilio client's request loggers are kept quiet (R-X6, R-PR2)."""

from __future__ import annotations

import logging
import sys

from webapp.mail.links import redact
from webapp.security.audit import JsonFormatter

# The Twilio client logs URLs and headers at INFO; aiosqlite logs SQL parameters (phone numbers) at DEBUG.
QUIET = ("twilio.http_client", "twilio.async_http_client", "aiosqlite")


class RedactTokens(logging.Filter):
    """Mailed links carry a token in their path; uvicorn's access log would otherwise keep it (R-PR2)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        return True


def configure_logging(level: int = logging.INFO) -> None:
    root = logging.getLogger()
    if not any(getattr(h, "_webapp", False) for h in root.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(JsonFormatter())
        handler._webapp = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    root.setLevel(level)
    for name in QUIET:
        logging.getLogger(name).setLevel(logging.WARNING)
    access = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, RedactTokens) for f in access.filters):
        access.addFilter(RedactTokens())
