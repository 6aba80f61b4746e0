"""Single-use links sent by mail: a random token in the link, its SHA-256 in `email_tokens`.

A link is live while unused and unexpired; links bound to an epoch (reset, change of address) also die with any
credential change. Using one is a conditional UPDATE inside the caller's unit of work, after the user's row is
locked, so two concurrent uses can't both pass.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from webapp.db import utcnow
from webapp.models import EmailToken, User

RESET = "reset"
VERIFY = "verify"
CHANGE = "change"
NOT_ME = "not_me"
LIFETIMES = {
    RESET: timedelta(minutes=30),
    VERIFY: timedelta(days=2),
    CHANGE: timedelta(days=1),
    NOT_ME: timedelta(days=7),
}
# "This wasn't me" and address verification outlive credential changes: an attacker who changes something must
# not be able to cancel the owner's link by doing so. Reset and change-of-address links die with the epoch.
EPOCH_BOUND = frozenset({RESET, CHANGE})


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class Found:
    token: EmailToken
    user: User


def issue(s: Session, user: User, purpose: str, email: str) -> str:
    """A new link's token (the only time it exists in clear); the row stores its hash."""
    token = secrets.token_urlsafe(32)
    now = utcnow()
    s.add(EmailToken(id_hash=hash_token(token), user_id=user.id, purpose=purpose, email=email, created_at=now,
                     expires_at=now + LIFETIMES[purpose],
                     user_epoch=user.session_epoch if purpose in EPOCH_BOUND else None))
    return token


def _live(row: EmailToken, user: User) -> bool:
    return (row.used_at is None and row.expires_at > utcnow()
            and (row.user_epoch is None or row.user_epoch == user.session_epoch))


def find(s: Session, token: str, purpose: str) -> Found | None:
    """The live link and its user, or None (unknown, used, expired, or outlived by a credential change)."""
    if not token or len(token) > 128:
        return None
    found = s.execute(select(EmailToken, User).join(User, User.id == EmailToken.user_id)
                      .where(EmailToken.id_hash == hash_token(token), EmailToken.purpose == purpose)).first()
    if found is None or not _live(*found):
        return None
    return Found(*found)


def use(s: Session, id_hash: str, user: User) -> bool:
    """Spend the link exactly once; `user` is locked by the caller, so its epoch is the one that counts."""
    now = utcnow()
    epoch_ok = EmailToken.user_epoch.is_(None) | (EmailToken.user_epoch == user.session_epoch)
    result = s.execute(update(EmailToken).where(EmailToken.id_hash == id_hash, EmailToken.user_id == user.id,
                                                EmailToken.used_at.is_(None), EmailToken.expires_at > now, epoch_ok)
                       .values(used_at=now))
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]


def retire(s: Session, user_id: int, purposes: frozenset[str] | set[str]) -> None:
    """Every open link of these purposes stops working (marked used now)."""
    s.execute(update(EmailToken).where(EmailToken.user_id == user_id, EmailToken.purpose.in_(list(purposes)),
                                       EmailToken.used_at.is_(None)).values(used_at=utcnow()))
