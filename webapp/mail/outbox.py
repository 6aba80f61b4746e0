"""The durable outbox. `enqueue` adds a mail to the caller's unit of work; the sender claims, delivers and settles.

A claim is one conditional UPDATE that moves due rows to `sending` with a lease: under `FOR UPDATE SKIP LOCKED` on
PostgreSQL (several processes take disjoint rows), under the write lock on SQLite. A process that dies mid-send
leaves a lease that runs out, and another sender takes the row again: no mail is lost, and each row is marked sent
by the one sender holding it.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from webapp.db import signal, utcnow
from webapp.models import MailOutbox
from webapp.security import audit
from webapp.security.clients import Client

TEMPLATES = frozenset({"verify_email", "reset_password", "confirm_email_change", "notice", "second_step"})
SIGNAL = "mail"
SENDER = Client(ip="-", user_agent="", request_id="mail-sender")


@dataclass(frozen=True)
class Claimed:
    """A row this sender holds until it settles it or its lease runs out."""

    id: int
    user_id: int | None
    to_addr: str
    template: str
    context: dict[str, Any]
    attempts: int
    created_at: datetime
    message_key: str


def enqueue(s: Session, *, to: str, template: str, context: dict[str, Any], user_id: int | None = None,
            due_at: datetime | None = None) -> MailOutbox:
    """Add a mail to the unit of work `s`: it exists only if `s` commits, and the sender wakes at that commit.

    `context` must be JSON (strings, numbers, lists); links are app paths (see `webapp.mail.links`), made absolute
    with APP_BASE_URL when the mail is rendered.
    """
    assert template in TEMPLATES, template
    now = utcnow()
    row = MailOutbox(user_id=user_id, to_addr=to.strip()[:254], template=template, context=dict(context),
                     status="pending", created_at=now, due_at=due_at or now, attempts=0, last_error="",
                     message_key=secrets.token_hex(16))
    s.add(row)
    s.flush()
    signal(s, SIGNAL)
    return row


def _due(now: datetime) -> ColumnElement[bool]:
    return or_(and_(MailOutbox.status == "pending", MailOutbox.due_at <= now),
               and_(MailOutbox.status == "sending", MailOutbox.lease_until < now))


def due_exists(s: Session) -> bool:
    """A read, so an idle sender's poll never takes the write lock."""
    return s.execute(select(MailOutbox.id).where(_due(utcnow())).limit(1)).first() is not None


def claim(s: Session, worker: str, limit: int, lease_s: float) -> list[Claimed]:
    now = utcnow()
    ids = select(MailOutbox.id).where(_due(now)).order_by(MailOutbox.id).limit(limit)
    if s.get_bind().dialect.name == "postgresql":
        # Another process's claim skips these rows instead of waiting. A materialized CTE, because PostgreSQL may
        # re-run an `IN (… LIMIT n FOR UPDATE SKIP LOCKED)` subquery and so update more than n rows.
        due = ids.with_for_update(skip_locked=True).cte("due").prefix_with("MATERIALIZED")
        chosen = MailOutbox.id == due.c.id
    else:
        chosen = MailOutbox.id.in_(ids)  # under SQLite's write lock (BEGIN IMMEDIATE) no one else claims
    rows = s.execute(
        update(MailOutbox).where(chosen, _due(now))
        .values(status="sending", claimed_by=worker, lease_until=now + timedelta(seconds=lease_s),
                attempts=MailOutbox.attempts + 1)
        .returning(MailOutbox.id, MailOutbox.user_id, MailOutbox.to_addr, MailOutbox.template, MailOutbox.context,
                   MailOutbox.attempts, MailOutbox.created_at, MailOutbox.message_key)
        .execution_options(synchronize_session=False)
    ).all()
    return sorted((Claimed(*row) for row in rows), key=lambda c: c.id)


def _mine(row_id: int, worker: str) -> tuple[ColumnElement[bool], ...]:
    return MailOutbox.id == row_id, MailOutbox.status == "sending", MailOutbox.claimed_by == worker


def mark_sent(s: Session, row_id: int, worker: str) -> bool:
    """Sent: the context (and any link in it) is dropped, so no token outlives its mail in the table."""
    result = s.execute(update(MailOutbox).where(*_mine(row_id, worker))
                       .values(status="sent", sent_at=utcnow(), lease_until=None, context={}, last_error=""))
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]


def retry_later(s: Session, row_id: int, worker: str, error: str, delay_s: float) -> None:
    s.execute(update(MailOutbox).where(*_mine(row_id, worker))
              .values(status="pending", due_at=utcnow() + timedelta(seconds=delay_s), claimed_by=None,
                      lease_until=None, last_error=error[:200]))


def give_up(s: Session, row: Claimed, worker: str, error: str) -> None:
    """Delivery failed for good: the row says why, the context is dropped, and the owner's log shows it."""
    result = s.execute(update(MailOutbox).where(*_mine(row.id, worker))
                       .values(status="failed", lease_until=None, context={}, last_error=error[:200]))
    if result.rowcount == 1:  # type: ignore[attr-defined]
        audit.record(s, SENDER, "mail_delivery_failed", "failure", user_id=row.user_id, template=row.template,
                     attempts=row.attempts, error=error[:200], outbox_id=row.id)


def release(s: Session, worker: str, row_ids: list[int]) -> None:
    """On shutdown: rows claimed but never tried go back to the queue at once, not after the lease.

    Only rows never handed to the server: one cut off mid-send may have arrived, so it waits for its lease.
    """
    if row_ids:
        s.execute(update(MailOutbox).where(MailOutbox.id.in_(row_ids), MailOutbox.status == "sending",
                                           MailOutbox.claimed_by == worker)
                  .values(status="pending", claimed_by=None, lease_until=None, attempts=MailOutbox.attempts - 1))
