"""Challenge rows: one per second step or step-up, holding every counter that must not be replayed (R-O4…R-O9).

A challenge is live while it is neither consumed nor invalidated nor expired, and while the user's session
epoch still equals the one it was opened under: every credential change bumps the epoch, which kills it.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from webapp.db import utcnow
from webapp.models import MfaChallenge, User
from webapp.settings import Settings

LOGIN = "login"
ENROLL = "enroll"
DISABLE = "disable"
CHANGE_OLD = "change_phone_old"
CHANGE_NEW = "change_phone_new"
REGEN = "recovery_regen"
ADD_TOTP = "add_totp"
ADD_PASSKEY = "add_passkey"
CHANGE_EMAIL = "change_email"
STEP_UP = frozenset({ENROLL, DISABLE, CHANGE_OLD, CHANGE_NEW, REGEN, ADD_TOTP, ADD_PASSKEY, CHANGE_EMAIL})
# Purposes that add a method: the first method added turns two-step verification on and issues recovery codes.
FIRST_METHOD_CAPABLE = frozenset({ENROLL, ADD_TOTP, ADD_PASSKEY})
NEW_NUMBER = frozenset({ENROLL, CHANGE_NEW})
RECOVERY_ALLOWED = frozenset({LOGIN, DISABLE, CHANGE_OLD, CHANGE_EMAIL})
CODE_RE = re.compile(r"^\d{6}$")


def hash_id(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def clean_code(raw: str) -> str | None:
    """Spaces and hyphens are forgiven; anything else but six digits is malformed (R-V4)."""
    code = raw.replace(" ", "").replace("-", "")
    return code if CODE_RE.fullmatch(code) else None


@dataclass(frozen=True)
class Opened:
    """A new challenge: the token goes in the cookie, the row's key is its hash."""

    token: str
    id_hash: str


@dataclass(frozen=True)
class Found:
    challenge: MfaChallenge
    user: User

    @property
    def expired(self) -> bool:
        return self.challenge.expires_at <= utcnow()


def open_conditions(now: datetime) -> tuple[ColumnElement[bool], ...]:
    return (MfaChallenge.consumed_at.is_(None), MfaChallenge.invalidated_at.is_(None), MfaChallenge.expires_at > now,
            MfaChallenge.user_epoch == select(User.session_epoch).where(User.id == MfaChallenge.user_id)
            .scalar_subquery())


def open_challenge(s: Session, settings: Settings, user: User, purpose: str, phone: str, *,
                   session_hash: str | None = None, next_path: str = "/profile", remember: bool = False,
                   method: str = "sms", payload: str | None = None) -> Opened:
    """A new challenge bound to the user's current epoch (and, for step-ups, to the acting session)."""
    token = secrets.token_urlsafe(32)
    now = utcnow()
    ch = MfaChallenge(
        id_hash=hash_id(token), user_id=user.id, purpose=purpose, auth_session_hash=session_hash,
        user_epoch=user.session_epoch, phone_e164=phone, created_at=now,
        expires_at=now + timedelta(seconds=settings.mfa_challenge_ttl_s), next_path=next_path, remember=remember,
        sends=0, failed_checks=0, channel="sms", landline=False, method=method, payload=payload,
    )
    s.add(ch)
    s.flush()
    return Opened(token, ch.id_hash)


def find(s: Session, token: str | None, purposes: frozenset[str], *, session_hash: str | None = None,
         include_expired: bool = False) -> Found | None:
    """The browser's challenge if it is open, of an expected purpose, and (for step-ups) bound to this session."""
    if not token:
        return None
    found = s.execute(
        select(MfaChallenge, User).join(User, User.id == MfaChallenge.user_id)
        .where(MfaChallenge.id_hash == hash_id(token))
    ).first()
    if found is None:
        return None
    ch, user = found
    if ch.purpose not in purposes or ch.consumed_at is not None or ch.invalidated_at is not None:
        return None
    if ch.user_epoch != user.session_epoch:
        return None
    if ch.purpose in STEP_UP and (session_hash is None or ch.auth_session_hash != session_hash):
        return None
    if ch.expires_at <= utcnow() and not include_expired:
        return None
    return Found(ch, user)


def close(s: Session, id_hash: str) -> tuple[bool, str | None]:
    """Close an open challenge: (whether this call closed it, its Verify sid to cancel)."""
    row = s.execute(
        update(MfaChallenge).where(MfaChallenge.id_hash == id_hash, MfaChallenge.consumed_at.is_(None),
                                   MfaChallenge.invalidated_at.is_(None))
        .values(invalidated_at=utcnow()).returning(MfaChallenge.verification_sid)
    ).first()
    return (True, row[0]) if row is not None else (False, None)


def invalidate(s: Session, id_hash: str) -> str | None:
    """Close an open challenge; returns its Verify sid (to cancel) when this call closed it."""
    return close(s, id_hash)[1]


def discard_token(s: Session, token: str | None) -> list[str]:
    """Close the browser's challenge, whatever its purpose (R-O8, R-O16): Verify sids to cancel."""
    if not token:
        return []
    sid = invalidate(s, hash_id(token))
    return [sid] if sid else []


def consume(s: Session, id_hash: str) -> bool:
    """Exactly once, even for two concurrent right answers, and only while open under the current epoch (R-O4)."""
    result = s.execute(update(MfaChallenge).where(MfaChallenge.id_hash == id_hash, *open_conditions(utcnow()))
                       .values(consumed_at=utcnow()))
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]


def reserve_check(s: Session, id_hash: str, max_checks: int) -> int | None:
    """Count one check before it is made; None when the challenge is closed or out of attempts."""
    return s.execute(
        update(MfaChallenge).where(MfaChallenge.id_hash == id_hash, MfaChallenge.failed_checks < max_checks,
                                   *open_conditions(utcnow()))
        .values(failed_checks=MfaChallenge.failed_checks + 1).returning(MfaChallenge.failed_checks)
    ).scalar_one_or_none()


def refund_check(s: Session, id_hash: str) -> None:
    """The service could not check the code: the attempt does not count."""
    s.execute(update(MfaChallenge).where(MfaChallenge.id_hash == id_hash, MfaChallenge.failed_checks > 0)
              .values(failed_checks=MfaChallenge.failed_checks - 1))


def reload(s: Session, id_hash: str) -> MfaChallenge:
    return s.execute(select(MfaChallenge).where(MfaChallenge.id_hash == id_hash)).scalar_one()


def take_payload(s: Session, id_hash: str) -> str | None:
    """The ceremony state on an open challenge, cleared as it is taken: one answer per ceremony.

    The clearing UPDATE repeats the value read, so of two concurrent takers exactly one gets it (RETURNING would
    give the new value, NULL, not the one taken)."""
    current = s.execute(select(MfaChallenge.payload).where(
        MfaChallenge.id_hash == id_hash, MfaChallenge.payload.is_not(None), *open_conditions(utcnow()))
    ).scalar_one_or_none()
    if current is None:
        return None
    taken = s.execute(update(MfaChallenge).where(MfaChallenge.id_hash == id_hash, MfaChallenge.payload == current)
                      .values(payload=None))
    return current if taken.rowcount == 1 else None  # type: ignore[attr-defined]


def set_payload(s: Session, id_hash: str, payload: str) -> bool:
    result = s.execute(update(MfaChallenge).where(MfaChallenge.id_hash == id_hash, *open_conditions(utcnow()))
                       .values(payload=payload))
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]


def switch_method(s: Session, id_hash: str, method: str) -> bool:
    """"Try another way": the open challenge is now proved by `method` (the attempt counts carry over)."""
    result = s.execute(update(MfaChallenge).where(MfaChallenge.id_hash == id_hash, *open_conditions(utcnow()))
                       .values(method=method, payload=None))
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]
