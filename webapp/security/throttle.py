"""Counters in the database, so limits hold across processes and restarts (R-L1…R-L3, R-O9).

Every change is one conditional statement (`UPDATE … WHERE count < limit RETURNING count`), so two requests
can never both read the same count and both pass: the database decides, on SQLite and PostgreSQL alike.
Rate rows keep their window's start in `window_started_at`; lockout rows (consecutive failures) keep their last
attempt there, so `webapp prune` can tell a finished window or a long-quiet counter from a live one.
"""

from __future__ import annotations

import hashlib
import hmac
import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from webapp.db import utcnow
from webapp.models import Throttle


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    retry_after: int = 0
    count: int = 0


def throttle_key(secret: str, kind: str, value: str) -> str:
    """Keyed hash, so usernames, numbers and IPs never sit in the table in clear (R-PR3)."""
    digest = hmac.new(secret.encode(), f"{kind}\0{value}".encode("utf-8", "replace"), hashlib.sha256).hexdigest()
    return f"{kind}:{digest[:48]}"


def ensure(s: Session, key: str, now: datetime) -> None:
    insert = pg_insert if s.get_bind().dialect.name == "postgresql" else sqlite_insert
    s.execute(insert(Throttle).values(key=key, count=0, window_started_at=now).on_conflict_do_nothing())


def seconds_until(when: datetime, now: datetime) -> int:
    return max(1, math.ceil((when - now).total_seconds()))


def hit(s: Session, key: str, limit: int, window_s: int) -> Verdict:
    """Count one event in a fixed window; refuse once `limit` fall in it."""
    now = utcnow()
    window = timedelta(seconds=window_s)
    ensure(s, key, now)
    s.execute(update(Throttle).where(Throttle.key == key, Throttle.window_started_at <= now - window)
              .values(count=0, window_started_at=now))
    counted = s.execute(update(Throttle).where(Throttle.key == key, Throttle.count < limit)
                        .values(count=Throttle.count + 1).returning(Throttle.count)).scalar_one_or_none()
    if counted is not None:
        return Verdict(True, count=counted)
    started = s.execute(select(Throttle.window_started_at).where(Throttle.key == key)).scalar_one_or_none()
    if started is None:  # `webapp prune` removed a long-quiet row after `ensure` saw it: count on a fresh one
        return hit(s, key, limit, window_s)
    return Verdict(False, seconds_until(started + window, now), limit)


def locked_for(s: Session, key: str) -> int:
    """Seconds left on a lockout, 0 when free (read only)."""
    until = s.execute(select(Throttle.locked_until).where(Throttle.key == key)).scalar_one_or_none()
    now = utcnow()
    return seconds_until(until, now) if until is not None and until > now else 0


def reserve_attempt(s: Session, key: str, max_failures: int, lock_s: int) -> Verdict:
    """Take one attempt before checking a secret: refused while locked or when `max_failures` are in flight.

    Counting first (and clearing on success) means concurrent guesses can't all slip in under the limit.
    """
    now = utcnow()
    ensure(s, key, now)
    # A lock that has run out starts a fresh count.
    s.execute(update(Throttle).where(Throttle.key == key, Throttle.locked_until <= now)
              .values(count=0, locked_until=None))
    counted = s.execute(update(Throttle).where(Throttle.key == key, Throttle.locked_until.is_(None),
                                               Throttle.count < max_failures)
                        .values(count=Throttle.count + 1, window_started_at=now)
                        .returning(Throttle.count)).scalar_one_or_none()
    if counted is not None:
        return Verdict(True, count=counted)
    row = s.execute(select(Throttle.locked_until).where(Throttle.key == key)).first()
    if row is None:  # pruned between `ensure` and the update, as in `hit`
        return reserve_attempt(s, key, max_failures, lock_s)
    until = row[0]
    return Verdict(False, seconds_until(until, now) if until else lock_s, max_failures)


def settle_failure(s: Session, key: str, max_failures: int, lock_s: int) -> bool:
    """After a reserved attempt failed: lock once the count reached the limit; True if this call locked it."""
    now = utcnow()
    result = s.execute(update(Throttle).where(Throttle.key == key, Throttle.count >= max_failures,
                                              Throttle.locked_until.is_(None))
                       .values(locked_until=now + timedelta(seconds=lock_s)))
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]


def record_failure(s: Session, key: str, max_failures: int, lock_s: int) -> bool:
    """Count a failure that was not reserved beforehand; True when it triggers the lock."""
    now = utcnow()
    ensure(s, key, now)
    s.execute(update(Throttle).where(Throttle.key == key, Throttle.locked_until <= now)
              .values(count=0, locked_until=None))
    s.execute(update(Throttle).where(Throttle.key == key).values(count=Throttle.count + 1, window_started_at=now))
    return settle_failure(s, key, max_failures, lock_s)


def reset(s: Session, key: str) -> None:
    s.execute(update(Throttle).where(Throttle.key == key).values(count=0, locked_until=None))
