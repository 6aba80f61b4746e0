"""`webapp prune`: delete rows nothing will read again, in small batches so no transaction holds the lock for long.

- Challenges and sessions dead for more than a day (GRACE): a browser coming back soon after still hears "your
  session expired", and no code step in flight can lose its row.
- Throttle rows idle for more than a day: every rate window is at most a day, and a lockout counter nobody touched
  for a day is forgotten. Rows under an active lock stay, and so do the per-number binding locks (`phone-bind`),
  which exist only to be locked.
- Audit rows older than AUDIT_RETENTION_DAYS.
- Mail-outbox rows sent, given up or cancelled more than a day ago (pending and in-flight rows always stay), and
  mailed links (reset, verification, "This wasn't me") expired more than a day ago.

A sign-in whose code step was never finished is reported at the user's next sign-in (R-L6); when its challenge is
pruned before that, the banner is stored now instead, so pruning never hides it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, delete, exists, func, or_, select
from sqlalchemy.orm import InstrumentedAttribute, Session, aliased

from webapp.db import utcnow
from webapp.deps import Deps
from webapp.models import (
    AuthSession,
    Base,
    EmailToken,
    MailOutbox,
    MfaChallenge,
    SecurityEvent,
    SecurityNotice,
    Throttle,
)
from webapp.security import audit
from webapp.security.clients import Client
from webapp.settings import Settings
from webapp.twofactor.challenges import LOGIN

GRACE = timedelta(days=1)
LONGEST_WINDOW = timedelta(days=1)
BATCH = 2000
KEEP_THROTTLE_KINDS = ("phone-bind:",)


@dataclass(frozen=True)
class Target:
    name: str
    model: type[Base]
    key: InstrumentedAttribute[Any]
    expired: Callable[[Settings, datetime], ColumnElement[bool]]


def _challenges(settings: Settings, now: datetime) -> ColumnElement[bool]:
    return MfaChallenge.expires_at < now - GRACE


def _sessions(settings: Settings, now: datetime) -> ColumnElement[bool]:
    dead = now - GRACE  # dead as of a day ago, by the same limits as `sessions.session_alive`
    remembered = timedelta(seconds=settings.session_remember_s)
    idle, absolute = timedelta(seconds=settings.session_idle_s), timedelta(seconds=settings.session_absolute_s)
    return or_(
        AuthSession.revoked_at < dead,
        and_(AuthSession.remember.is_(True), AuthSession.created_at < dead - remembered),
        and_(AuthSession.remember.is_(False),
             or_(AuthSession.last_seen_at < dead - idle, AuthSession.created_at < dead - absolute)),
    )


def _throttles(settings: Settings, now: datetime) -> ColumnElement[bool]:
    return and_(or_(Throttle.locked_until.is_(None), Throttle.locked_until < now),
                Throttle.window_started_at < now - LONGEST_WINDOW,
                *(~Throttle.key.startswith(kind) for kind in KEEP_THROTTLE_KINDS))


def _audit(settings: Settings, now: datetime) -> ColumnElement[bool]:
    return SecurityEvent.ts < now - timedelta(days=settings.audit_retention_days)


def _mail(settings: Settings, now: datetime) -> ColumnElement[bool]:
    return and_(MailOutbox.status.in_(("sent", "failed", "cancelled")), MailOutbox.created_at < now - GRACE)


def _mail_links(settings: Settings, now: datetime) -> ColumnElement[bool]:
    return EmailToken.expires_at < now - GRACE


TARGETS = (
    Target("challenges", MfaChallenge, MfaChallenge.id_hash, _challenges),
    Target("sessions", AuthSession, AuthSession.id_hash, _sessions),
    Target("throttles", Throttle, Throttle.key, _throttles),
    Target("audit_events", SecurityEvent, SecurityEvent.id, _audit),
    Target("mail_outbox", MailOutbox, MailOutbox.id, _mail),
    Target("mail_links", EmailToken, EmailToken.id_hash, _mail_links),
)


def preview(s: Session, settings: Settings, now: datetime | None = None) -> dict[str, int]:
    """How many rows `prune` would delete now."""
    now = now or utcnow()
    return {t.name: int(s.execute(select(func.count()).select_from(t.model).where(t.expired(settings, now)))
                        .scalar_one()) for t in TARGETS}


async def prune(deps: Deps, client: Client, operator: str, now: datetime | None = None) -> dict[str, int]:
    """Delete everything `preview` counts; returns the counts and records them in one audit row."""
    now = now or utcnow()
    counts: dict[str, int] = {}
    for target in TARGETS:
        counts[target.name] = 0
        while True:
            deleted = await deps.db.write(_delete_batch, deps.settings, target, now)
            counts[target.name] += deleted
            if deleted < BATCH:
                break
    await deps.db.write(_record, client, operator, counts)
    return counts


def _record(s: Session, client: Client, operator: str, counts: dict[str, int]) -> None:
    audit.record(s, client, "admin_prune", "success", operator=operator, deleted=counts)


def _delete_batch(s: Session, settings: Settings, target: Target, now: datetime) -> int:
    keys = list(s.execute(select(target.key).where(target.expired(settings, now))
                          .order_by(target.key).limit(BATCH)).scalars())
    if not keys:
        return 0
    if target.name == "challenges":
        _keep_unreported_abandoned_sign_ins(s, keys)
    s.execute(delete(target.model).where(target.key.in_(keys)))
    return len(keys)


def _keep_unreported_abandoned_sign_ins(s: Session, doomed: list[str]) -> None:
    """Password right, code step never finished, no sign-in since: store the banner the next sign-in would show."""
    later = aliased(MfaChallenge)
    signed_in_since = exists().where(later.user_id == MfaChallenge.user_id, later.purpose == LOGIN,
                                     later.consumed_at > MfaChallenge.created_at)
    abandoned = s.execute(
        select(MfaChallenge.user_id, func.min(MfaChallenge.created_at))
        .where(MfaChallenge.id_hash.in_(doomed), MfaChallenge.purpose == LOGIN, MfaChallenge.consumed_at.is_(None),
               ~signed_in_since)
        .group_by(MfaChallenge.user_id)).all()
    for user_id, first in abandoned:
        told = s.execute(select(SecurityNotice.id).where(
            SecurityNotice.user_id == user_id, SecurityNotice.kind == "second_step_failed",
            SecurityNotice.seen_at.is_(None))).first()
        if not told:
            s.add(SecurityNotice(user_id=user_id, kind="second_step_failed", created_at=first))
