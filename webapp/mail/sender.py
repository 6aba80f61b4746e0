"""The background sender the app's lifespan starts: wakes on each commit that enqueued mail, else polls briefly.

Delivery never happens in a request. A failure is retried with exponential backoff (jittered) until
MAIL_GIVE_UP_HOURS after the mail was written, then the row is marked failed and an audit row says so.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import secrets
import socket
from datetime import timedelta
from email.message import EmailMessage

from webapp.db import Database, utcnow
from webapp.mail import outbox
from webapp.mail.outbox import Claimed
from webapp.mail.render import MailRenderer
from webapp.mail.transport import Delivery, Transport
from webapp.settings import Settings

log = logging.getLogger("webapp.mail")


class MailSender:
    def __init__(self, settings: Settings, db: Database, transport: Transport, *, worker: str = "") -> None:
        self.settings = settings
        self.db = db
        self.transport = transport
        self.renderer = MailRenderer(settings)
        self.worker = worker or f"{socket.gethostname()[:40]}:{os.getpid()}:{secrets.token_hex(3)}"
        # A send can't outlast its lease: connect, then the whole batch, each bounded by the SMTP timeout.
        self.lease_s = settings.smtp_timeout_s * (settings.mail_batch + 2) + 30
        self._wake: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        self.db.on_commit(outbox.SIGNAL, self.wake)
        self._task = self._loop.create_task(self._run(), name=f"mail-sender-{self.worker}")

    def wake(self) -> None:
        """Thread-safe: called from the database thread that committed a new row."""
        loop, event = self._loop, self._wake
        if loop is not None and event is not None:
            with contextlib.suppress(RuntimeError):  # the loop has closed: nothing left to wake
                loop.call_soon_threadsafe(event.set)

    async def stop(self) -> None:
        """Finish the batch in hand, bounded by the SMTP timeout; a send cut off waits for its lease to run out."""
        self._stopping = True
        self.wake()
        if self._task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._task), timeout=self.settings.smtp_timeout_s + 5)
            except TimeoutError:
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._task

    async def _run(self) -> None:
        assert self._wake is not None
        while not self._stopping:
            self._wake.clear()  # before looking, so a commit during the batch wakes the next round
            try:
                handled = await self.deliver_due()
            except Exception:
                log.exception("mail sender round failed", extra={"event": "mail_sender_error"})
                handled = 0
            if handled >= self.settings.mail_batch and not self._stopping:
                continue  # more may be waiting
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self.settings.mail_poll_s)

    async def deliver_due(self) -> int:
        """One round: claim what is due, deliver it, settle each row. Returns how many rows it claimed."""
        if not await self.db.read(outbox.due_exists):
            return 0
        batch = await self.db.write(outbox.claim, self.worker, self.settings.mail_batch, self.lease_s)
        if not batch:
            return 0
        messages: list[tuple[Claimed, EmailMessage]] = []
        for row in batch:
            try:
                messages.append((row, self.renderer.render(row)))
            except Exception as exc:  # a template bug fails this mail, not the sender
                log.exception("mail render failed", extra={"event": "mail_render_error", "outbox_id": row.id})
                await self.db.write(outbox.give_up, row, self.worker, f"render: {type(exc).__name__}")
        if self._stopping:  # shutting down between claim and send: back to the queue now, not after the lease
            await self.db.write(outbox.release, self.worker, [row.id for row, _ in messages])
            return len(batch)
        results = await self.transport.send([message for _, message in messages])
        for (row, _), result in zip(messages, results, strict=True):
            await self._settle(row, result)
        return len(batch)

    async def _settle(self, row: Claimed, result: Delivery) -> None:
        fields = {"event": "mail_delivery", "outbox_id": row.id, "template": row.template, "attempt": row.attempts,
                  "transport": self.transport.name}
        if result.ok:
            await self.db.write(outbox.mark_sent, row.id, self.worker)
            log.info("mail delivered", extra=fields)
            return
        expired = utcnow() - row.created_at >= timedelta(seconds=self.settings.mail_give_up_s)
        if result.permanent or expired:
            await self.db.write(outbox.give_up, row, self.worker, result.error)
            log.error("mail given up", extra={**fields, "error": result.error})
            return
        delay = self.backoff(row.attempts)
        await self.db.write(outbox.retry_later, row.id, self.worker, result.error, delay)
        log.warning("mail delivery failed; will retry", extra={**fields, "error": result.error, "retry_in_s": delay})

    def backoff(self, attempts: int) -> float:
        """base · 2^(n-1), capped, with ±20 % jitter so senders that failed together don't retry together."""
        delay = min(self.settings.mail_retry_max_s, self.settings.mail_retry_base_s * 2 ** max(0, attempts - 1))
        return float(delay * random.uniform(0.8, 1.2))  # noqa: S311 - jitter, not a secret
