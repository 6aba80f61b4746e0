"""One JSON log stream, each line carrying the request id; the Twilio client's request loggers are kept quiet.

The request id lives in a contextvar set by the middleware that creates it (webapp.security.headers), so every
line written while a request is handled carries it: the app's own, uvicorn's, the provider-error lines, and those
written in database worker threads (webapp.db copies the context into them). The CLI sets it to its run id.
"""

from __future__ import annotations

import contextvars
import logging
import sys

from webapp.mail.links import redact
from webapp.security.audit import JsonFormatter

# The Twilio client logs URLs and headers at INFO; aiosqlite logs SQL parameters (phone numbers) at DEBUG.
QUIET = ("twilio.http_client", "twilio.async_http_client", "aiosqlite")
# uvicorn installs its own plain-text handlers before it imports the app; its lines join the JSON stream instead.
UVICORN = ("uvicorn", "uvicorn.error", "uvicorn.access")

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="")


class RequestIdFilter(logging.Filter):
    """Stamp the current request id on every record that passes the handler, unless it carries one already."""

    def filter(self, record: logging.LogRecord) -> bool:
        current = request_id.get()
        if current and not getattr(record, "request_id", ""):
            record.request_id = current
        return True


class RedactTokens(logging.Filter):
    """Mailed links carry a token in their path; uvicorn's access log would otherwise keep it (R-PR2)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        return True


def configure_logging(level: int | str = logging.INFO) -> None:
    root = logging.getLogger()
    handler = next((h for h in root.handlers if getattr(h, "_webapp", False)), None)
    if handler is None:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(JsonFormatter())
        handler.addFilter(RequestIdFilter())
        handler._webapp = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    root.setLevel(level)
    # On the handler too: uvicorn's loggers set their own INFO level, which the root's level does not override.
    handler.setLevel(level)
    for name in QUIET:
        logging.getLogger(name).setLevel(logging.WARNING)
    for name in UVICORN:
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
    access = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, RedactTokens) for f in access.filters):
        access.addFilter(RedactTokens())
