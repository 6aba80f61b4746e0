"""A real SMTP server in the test process (aiosmtpd on a loopback port) that keeps what it receives.

It can be stopped and started again on the same port, so a test can take the mail server down and bring it back.
Waits are bounded polls with a deadline: the only timing the mail tests depend on.
"""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller

BASE_URL = "https://accounts.example.test"
_LINK = re.compile(re.escape(BASE_URL) + r"(/[^\s<>\"]*)")


@dataclass(frozen=True)
class Received:
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage

    @property
    def to(self) -> str:
        return str(self.message["To"])

    @property
    def subject(self) -> str:
        return str(self.message["Subject"])

    @property
    def text(self) -> str:
        part = self.message.get_body(("plain",))
        assert part is not None, "no text part"
        return str(part.get_content())  # type: ignore[attr-defined]

    @property
    def html(self) -> str:
        part = self.message.get_body(("html",))
        assert part is not None, "no html part"
        return str(part.get_content())  # type: ignore[attr-defined]

    def paths(self) -> list[str]:
        """The app paths of the links in the text part (every link must start with APP_BASE_URL)."""
        return _LINK.findall(self.text)

    def link(self, prefix: str) -> str:
        found = [p for p in self.paths() if p.startswith(prefix)]
        assert len(found) == 1, f"expected one {prefix} link in {self.subject!r}: {self.paths()}"
        return found[0]


class _Handler:
    def __init__(self, sink: SmtpSink) -> None:
        self.sink = sink

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str,
                          rcpt_options: list[str]) -> str:
        if address in self.sink.refuse:
            return "550 5.1.1 No such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = message_from_bytes(envelope.content, policy=policy.default)
        assert isinstance(message, EmailMessage)
        with self.sink.lock:
            self.sink.received.append(Received(envelope.mail_from, list(envelope.rcpt_tos), message))
        return "250 Message accepted for delivery"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class SmtpSink:
    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.received: list[Received] = []
        self.refuse: set[str] = set()  # recipients answered with a permanent 550
        self.lock = threading.Lock()
        self._controller: Controller | None = None

    def start(self) -> None:
        self._controller = Controller(_Handler(self), hostname="127.0.0.1", port=self.port)
        self._controller.start()

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def messages(self, to: str | None = None) -> list[Received]:
        with self.lock:
            return [m for m in self.received if to is None or m.rcpt_tos == [to]]

    def wait_for(self, predicate: Callable[[list[Received]], bool], timeout: float = 10.0) -> list[Received]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = self.messages()
            if predicate(got):
                return got
            time.sleep(0.02)
        raise AssertionError(f"timed out after {timeout}s; received: {[(m.to, m.subject) for m in self.messages()]}")

    def wait_for_mail(self, to: str, subject: str, count: int = 1, timeout: float = 10.0) -> Received:
        """The newest mail to `to` with `subject`, once `count` of them have arrived."""
        def enough(got: list[Received]) -> bool:
            return len([m for m in got if m.rcpt_tos == [to] and m.subject == subject]) >= count
        self.wait_for(enough, timeout)
        return [m for m in self.messages(to) if m.subject == subject][-1]
