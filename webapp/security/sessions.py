"""Server-side sessions (R-S1…R-S9): the cookie names a row; the row, not the cookie, decides."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, text, update
from sqlalchemy.orm import Session

from webapp import rows
from webapp.db import utcnow
from webapp.models import AuthSession, MfaChallenge, User
from webapp.security.clients import Client
from webapp.settings import Settings

TOUCH_EVERY = timedelta(seconds=60)


@dataclass(frozen=True)
class Auth:
    """A signed-in request's user and session rows, as read (detached: never written back)."""

    user: User
    session: AuthSession


@dataclass(frozen=True)
class NewSession:
    """What the endpoint puts in the cookie after a sign-in or a re-issue."""

    sid: str
    remember: bool


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _limits(settings: Settings, row: AuthSession) -> tuple[timedelta, timedelta]:
    if row.remember:
        lifetime = timedelta(seconds=settings.session_remember_s)
        return lifetime, lifetime
    return timedelta(seconds=settings.session_idle_s), timedelta(seconds=settings.session_absolute_s)


def session_alive(settings: Settings, row: AuthSession, user: User, now: datetime) -> bool:
    idle, absolute = _limits(settings, row)
    return (
        row.revoked_at is None
        and row.epoch == user.session_epoch
        and now - row.last_seen_at < idle
        and now - row.created_at < absolute
        and (row.mfa_passed or not user.mfa_enabled)  # R-S9
        and user.disabled_at is None  # disabling bumps the epoch too; this holds even if a row escaped that
    )


def start(s: Session, user: User, client: Client, *, remember: bool, mfa_passed: bool) -> NewSession:
    """A fresh random id at each sign-in or step-up (R-S3), bound to the user's epoch as locked by the caller."""
    sid = secrets.token_urlsafe(32)
    now = utcnow()
    s.add(AuthSession(
        id_hash=hash_token(sid), user_id=user.id, epoch=user.session_epoch, mfa_passed=mfa_passed,
        remember=remember, created_at=now, last_seen_at=now, ip=client.ip[:64], browser=client.browser[:64],
    ))
    return NewSession(sid, remember)


# Column names come from the models, never from input.
SESSION_AND_USER = (f"SELECT {rows.columns(AuthSession, 's')}, {rows.columns(User, 'u')} "  # noqa: S608
                    "FROM auth_sessions s JOIN users u ON u.id = s.user_id WHERE s.id_hash = :id_hash")
_LOAD = text(SESSION_AND_USER)


def load(s: Session, settings: Settings, sid: str) -> tuple[Auth | None, bool]:
    """(auth, expired): the live session named by `sid`, or why not. One query."""
    found = s.execute(_LOAD, {"id_hash": hash_token(sid)}).mappings().first()
    if found is None:
        return None, False
    return from_row(settings, found)


def from_row(settings: Settings, found: Mapping[Any, Any]) -> tuple[Auth | None, bool]:
    row, user = rows.hydrate(AuthSession, found, "s"), rows.hydrate(User, found, "u")
    if not session_alive(settings, row, user, utcnow()):
        return None, True
    return Auth(user=user, session=row), False


def needs_touch(auth: Auth) -> bool:
    return utcnow() - auth.session.last_seen_at >= TOUCH_EVERY


def touch(s: Session, id_hash: str) -> None:
    """Last seen, at most once a minute: a conditional write, so reads stay reads."""
    now = utcnow()
    s.execute(update(AuthSession).where(AuthSession.id_hash == id_hash, AuthSession.last_seen_at <= now - TOUCH_EVERY)
              .values(last_seen_at=now))


def revoke(s: Session, id_hash: str) -> None:
    s.execute(update(AuthSession).where(AuthSession.id_hash == id_hash, AuthSession.revoked_at.is_(None))
              .values(revoked_at=utcnow()))


def lock_user(s: Session, user_id: int) -> User | None:
    """The user's row, locked until the unit of work ends (SQLite's write lock already covers it)."""
    query = select(User).where(User.id == user_id)
    if s.get_bind().dialect.name == "postgresql":
        query = query.with_for_update()
    return s.execute(query).scalar_one_or_none()


def end_all(s: Session, user: User) -> None:
    """Every session and open challenge of `user` dies (R-S2): bump the epoch, revoke rows, close challenges.

    `user` must be locked by the caller; its epoch is updated in place for sessions started afterwards.
    """
    now = utcnow()
    user.session_epoch = s.execute(
        update(User).where(User.id == user.id).values(session_epoch=User.session_epoch + 1)
        .returning(User.session_epoch)
    ).scalar_one()
    s.execute(update(AuthSession).where(AuthSession.user_id == user.id, AuthSession.revoked_at.is_(None))
              .values(revoked_at=now))
    s.execute(update(MfaChallenge).where(MfaChallenge.user_id == user.id, MfaChallenge.consumed_at.is_(None),
                                         MfaChallenge.invalidated_at.is_(None)).values(invalidated_at=now))


def active_sessions(s: Session, settings: Settings, user: User) -> list[AuthSession]:
    rows = s.execute(
        select(AuthSession).where(AuthSession.user_id == user.id, AuthSession.revoked_at.is_(None),
                                  AuthSession.epoch == user.session_epoch)
        .order_by(AuthSession.last_seen_at.desc())
    ).scalars().all()
    now = utcnow()
    return [r for r in rows if session_alive(settings, r, user, now)]
