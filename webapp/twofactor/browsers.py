"""Remembered browsers: "Don't ask again on this browser for 30 days".

The browser keeps a random device token in a cookie of its own; the row keeps only its hash, the browser's
description and its last use. Every change is one conditional statement, so a forget racing a sign-in wins.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from webapp.db import utcnow
from webapp.models import RememberedBrowser
from webapp.security.clients import Client

REMEMBER_DAYS = 30


def hash_token(token: str) -> str:
    return hashlib.sha256(b"device\0" + token.encode()).hexdigest()


def remember(s: Session, client: Client, user_id: int) -> str:
    """A new device token for this browser; the caller puts it in the device cookie."""
    token = secrets.token_urlsafe(32)
    now = utcnow()
    s.add(RememberedBrowser(user_id=user_id, token_hash=hash_token(token), browser=client.browser[:64],
                            created_at=now, last_used_at=now, expires_at=now + timedelta(days=REMEMBER_DAYS)))
    return token


def recognise(s: Session, user_id: int, token: str | None) -> bool:
    """True when `token` remembers this browser for `user_id`: its last use is stamped by the same statement."""
    if not token or len(token) > 128:
        return False
    now = utcnow()
    found = s.execute(update(RememberedBrowser).where(
        RememberedBrowser.token_hash == hash_token(token), RememberedBrowser.user_id == user_id,
        RememberedBrowser.revoked_at.is_(None), RememberedBrowser.expires_at > now)
        .values(last_used_at=now).returning(RememberedBrowser.id)).first()
    return found is not None


def forget(s: Session, user_id: int, browser_id: int) -> bool:
    result = s.execute(update(RememberedBrowser).where(
        RememberedBrowser.id == browser_id, RememberedBrowser.user_id == user_id,
        RememberedBrowser.revoked_at.is_(None)).values(revoked_at=utcnow()))
    return bool(result.rowcount)  # type: ignore[attr-defined]


def forget_all(s: Session, user_id: int) -> int:
    """Every remembered browser of the user asks for the second step again (sign out everywhere, a password change,
    a method removed, two-step verification turned off)."""
    result = s.execute(update(RememberedBrowser).where(
        RememberedBrowser.user_id == user_id, RememberedBrowser.revoked_at.is_(None)).values(revoked_at=utcnow()))
    return int(result.rowcount)  # type: ignore[attr-defined]


def listed(s: Session, user_id: int) -> list[RememberedBrowser]:
    return list(s.execute(select(RememberedBrowser).where(
        RememberedBrowser.user_id == user_id, RememberedBrowser.revoked_at.is_(None),
        RememberedBrowser.expires_at > utcnow()).order_by(RememberedBrowser.last_used_at.desc())).scalars().all())


def current_id(s: Session, user_id: int, token: str | None) -> int | None:
    """The row this browser's own token names, to mark "(this browser)" on the profile."""
    if not token:
        return None
    return s.execute(select(RememberedBrowser.id).where(
        RememberedBrowser.token_hash == hash_token(token), RememberedBrowser.user_id == user_id)).scalar_one_or_none()
