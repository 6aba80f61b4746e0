"""Where rendered mail goes: an SMTP server through aiosmtplib (never blocking the loop), or the dev outbox."""

from __future__ import annotations

import logging
import re
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Protocol

import aiosmtplib

from webapp.settings import ConfigError, Settings

log = logging.getLogger("webapp.mail")
DEV_OUTBOX_SIZE = 50
_URL = re.compile(r"https?://[^\s<>\"()]+[^\s<>\"().,;:!?]")


@dataclass(frozen=True)
class Delivery:
    """One message's fate: delivered, or why not and whether trying again can help."""

    ok: bool
    error: str = ""
    permanent: bool = False


class Transport(Protocol):
    name: str

    async def send(self, messages: list[EmailMessage]) -> list[Delivery]:
        """One Delivery per message, in order."""
        ...


def _error(exc: BaseException) -> Delivery:
    """A 5xx answer is final (the server refuses this message); anything else (4xx, network, timeout) is retried."""
    code = getattr(exc, "code", None)
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused) and exc.recipients:
        code = min(r.code for r in exc.recipients)
    permanent = isinstance(code, int) and 500 <= code < 600
    # The class and the reply code only: a server's reply text may quote the address back.
    return Delivery(False, f"{type(exc).__name__}{f' {code}' if code else ''}", permanent)


class SmtpTransport:
    name = "smtp"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def _client(self) -> aiosmtplib.SMTP:
        s = self.settings
        return aiosmtplib.SMTP(
            hostname=s.smtp_host, port=s.smtp_port, timeout=s.smtp_timeout_s,
            username=s.smtp_username or None, password=s.smtp_password or None,
            use_tls=s.smtp_security == "tls",
            # Required, not opportunistic: a server that drops STARTTLS must not get the mail in clear.
            start_tls=s.smtp_security == "starttls",
        )

    async def send(self, messages: list[EmailMessage]) -> list[Delivery]:
        smtp = self._client()
        try:
            await smtp.connect()
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            return [_error(exc)] * len(messages)
        results: list[Delivery] = []
        try:
            for message in messages:
                try:
                    await smtp.send_message(message)
                    results.append(Delivery(True))
                except (aiosmtplib.SMTPRecipientsRefused, aiosmtplib.SMTPResponseException) as exc:
                    results.append(_error(exc))
                except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
                    # The connection is gone: this message and the rest wait for the next attempt.
                    results.extend([_error(exc)] * (len(messages) - len(results)))
                    break
        finally:
            if smtp.is_connected:
                try:
                    await smtp.quit()
                except (aiosmtplib.SMTPException, OSError, TimeoutError):
                    smtp.close()
        return results


@dataclass(frozen=True)
class DevMail:
    time: datetime
    to: str
    subject: str
    text: str
    links: list[str]


class DevMailbox:
    """Development without SMTP_HOST: mail is kept in memory and listed at /dev/outbox (404 in production)."""

    name = "development"

    def __init__(self) -> None:
        self._mails: deque[DevMail] = deque(maxlen=DEV_OUTBOX_SIZE)

    @property
    def mails(self) -> list[DevMail]:
        """Most recent first."""
        return list(reversed(self._mails))

    async def send(self, messages: list[EmailMessage]) -> list[Delivery]:
        for message in messages:
            body = message.get_body(("plain",))
            text = body.get_content() if body is not None else ""
            self._mails.append(DevMail(datetime.now(UTC), str(message["To"]), str(message["Subject"]), text,
                                       _URL.findall(text)))
            # No link in the log line: it carries a token, and secrets never go to logs.
            log.warning("DEV MAIL to the dev outbox: %s", message["Subject"])
        return [Delivery(True)] * len(messages)


def open_transport(settings: Settings) -> Transport:
    """SMTP whenever SMTP_HOST is set, in every environment; otherwise the dev outbox (settings refuse production)."""
    if settings.smtp_host:
        return SmtpTransport(settings)
    if settings.production:  # load_settings refuses this already; settings built by hand get the same answer
        raise ConfigError("production needs SMTP_HOST: the development outbox is refused in production")
    return DevMailbox()
