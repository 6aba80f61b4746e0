"""Counters in the database, so limits hold across processes and restarts (R-L1…R-L3, R-O9)."""

from __future__ import annotations

import hashlib
import hmac
import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from webapp.db import utcnow
from webapp.models import Throttle


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    retry_after: int = 0


def throttle_key(secret: str, kind: str, value: str) -> str:
    """Keyed hash, so usernames, numbers and IPs never sit in the table in clear."""
    digest = hmac.new(secret.encode(), f"{kind}\0{value}".encode("utf-8", "replace"), hashlib.sha256).hexdigest()
    return f"{kind}:{digest[:48]}"


async def _row(s: AsyncSession, key: str) -> Throttle:
    """Lock the row (creating it if needed) so concurrent requests count one after another."""
    bind = s.get_bind()
    insert = pg_insert if bind.dialect.name == "postgresql" else sqlite_insert
    await s.execute(insert(Throttle).values(key=key, count=0, window_started_at=utcnow()).on_conflict_do_nothing())
    row = (await s.execute(select(Throttle).where(Throttle.key == key).with_for_update())).scalar_one()
    await s.refresh(row)
    return row


def _seconds_until(when: datetime) -> int:
    return max(1, math.ceil((when - utcnow()).total_seconds()))


async def hit(s: AsyncSession, key: str, limit: int, window_s: int) -> Verdict:
    """Count one event in a fixed window; refuse once more than `limit` fall in it."""
    row = await _row(s, key)
    now = utcnow()
    if now - row.window_started_at >= timedelta(seconds=window_s):
        row.window_started_at, row.count = now, 0
    if row.count >= limit:
        return Verdict(False, _seconds_until(row.window_started_at + timedelta(seconds=window_s)))
    row.count += 1
    return Verdict(True)


async def would_allow(s: AsyncSession, key: str, limit: int, window_s: int) -> Verdict:
    """Like `hit` without counting: for budgets that are only spent when the action succeeds."""
    row = (await s.execute(select(Throttle).where(Throttle.key == key))).scalar_one_or_none()
    if row is None or utcnow() - row.window_started_at >= timedelta(seconds=window_s) or row.count < limit:
        return Verdict(True)
    return Verdict(False, _seconds_until(row.window_started_at + timedelta(seconds=window_s)))


async def locked_for(s: AsyncSession, key: str) -> int:
    """Seconds left on a lockout, 0 when free; an expired lock starts a fresh count."""
    row = (await s.execute(select(Throttle).where(Throttle.key == key))).scalar_one_or_none()
    until = row.locked_until if row else None
    if row is None or until is None:
        return 0
    if until <= utcnow():
        row.locked_until, row.count = None, 0
        return 0
    return _seconds_until(until)


async def record_failure(s: AsyncSession, key: str, max_failures: int, lock_s: int) -> bool:
    """Count a consecutive failure; True when this one triggers the lock."""
    row = await _row(s, key)
    row.count += 1
    if row.count >= max_failures:
        row.locked_until = utcnow() + timedelta(seconds=lock_s)
        return True
    return False


async def failures(s: AsyncSession, key: str) -> int:
    row = (await s.execute(select(Throttle).where(Throttle.key == key))).scalar_one_or_none()
    return row.count if row else 0


async def reset(s: AsyncSession, key: str) -> None:
    row = (await s.execute(select(Throttle).where(Throttle.key == key))).scalar_one_or_none()
    if row is not None:
        row.count, row.locked_until = 0, None
