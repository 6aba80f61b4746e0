"""Security notices by mail, sent the moment the change commits, each with a "This wasn't me" link.

`notify` runs inside the unit of work that made the change, so the notice exists exactly when the change does.
A sign-in whose second step failed or was abandoned is batched: one pending mail per user collects the
attempts, is due when the last one's code step has expired, and at most one such mail goes out per hour.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from webapp.db import utcnow
from webapp.mail import links, tokens
from webapp.mail.outbox import enqueue
from webapp.models import MailOutbox, User

SECOND_STEP = "second_step"
SECOND_STEP_EVERY = timedelta(hours=1)
# After the code step's expiry, so an owner who is merely slow to type gets no mail.
SECOND_STEP_GRACE = timedelta(minutes=1)


def stamp(when: datetime) -> str:
    return when.strftime("%Y-%m-%d %H:%M UTC")


def notify(s: Session, user: User, kind: str, *, to: str | None = None, **details: Any) -> None:
    """Mail `user` (or `to`, e.g. the old address) that `kind` happened, with a fresh "This wasn't me" link."""
    address = to or user.email
    token = tokens.issue(s, user, tokens.NOT_ME, address)
    enqueue(s, to=address, template="notice", user_id=user.id,
            context={"kind": kind, "username": user.display_name, "when": stamp(utcnow()),
                     "not_me_path": links.NOT_ME + token, **details})


def _pending_second_step(s: Session, user_id: int) -> MailOutbox | None:
    return s.execute(select(MailOutbox).where(MailOutbox.user_id == user_id, MailOutbox.template == SECOND_STEP,
                                              MailOutbox.status == "pending")).scalar_one_or_none()


def _earliest_due(s: Session, user_id: int, wanted: datetime) -> datetime:
    """No sooner than an hour after the last such mail went out."""
    last = s.execute(select(MailOutbox.sent_at).where(MailOutbox.user_id == user_id,
                                                      MailOutbox.template == SECOND_STEP,
                                                      MailOutbox.sent_at.is_not(None))
                     .order_by(MailOutbox.sent_at.desc()).limit(1)).scalar_one_or_none()
    return max(wanted, last + SECOND_STEP_EVERY) if last else wanted


def second_step_opened(s: Session, user: User, challenge_id: str, expires_at: datetime) -> None:
    """The password was right and a code step opened: unless it completes, the owner hears of it by mail."""
    row = _pending_second_step(s, user.id)
    attempt = {"id": challenge_id, "when": stamp(utcnow())}
    due = _earliest_due(s, user.id, expires_at + SECOND_STEP_GRACE)
    if row is None:
        token = tokens.issue(s, user, tokens.NOT_ME, user.email)
        enqueue(s, to=user.email, template=SECOND_STEP, user_id=user.id, due_at=due,
                context={"username": user.display_name, "attempts": [attempt], "not_me_path": links.NOT_ME + token})
        return
    row.context = {**row.context, "attempts": [*row.context.get("attempts", []), attempt][-20:]}
    row.due_at = max(row.due_at, due)


def second_step_done(s: Session, user_id: int, challenge_id: str) -> None:
    """The owner completed this code step: it is not reported; with no other attempt left, the mail is dropped."""
    row = _pending_second_step(s, user_id)
    if row is None:
        return
    left = [a for a in row.context.get("attempts", []) if a.get("id") != challenge_id]
    if left:
        row.context = {**row.context, "attempts": left}
    else:
        row.status = "cancelled"


def second_step_failed(s: Session, user_id: int) -> None:
    """Failed for good (too many wrong codes): no reason to wait for the expiry, only for the hourly limit."""
    row = _pending_second_step(s, user_id)
    if row is not None:
        row.due_at = _earliest_due(s, user_id, utcnow())
