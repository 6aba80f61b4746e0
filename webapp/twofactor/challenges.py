"""Challenge rows: one per second step or step-up, holding every counter that must not be replayed (R-O4…R-O9)."""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request

from webapp.db import utcnow
from webapp.models import MfaChallenge, User
from webapp.security.cookies import cookie_state
from webapp.settings import Settings

LOGIN = "login"
ENROLL = "enroll"
DISABLE = "disable"
CHANGE_OLD = "change_phone_old"
CHANGE_NEW = "change_phone_new"
REGEN = "recovery_regen"
STEP_UP = frozenset({ENROLL, DISABLE, CHANGE_OLD, CHANGE_NEW, REGEN})
CODE_RE = re.compile(r"^\d{6}$")


def hash_id(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def clean_code(raw: str) -> str | None:
    """Spaces and hyphens are forgiven; anything else but six digits is malformed (R-V4)."""
    code = raw.replace(" ", "").replace("-", "")
    return code if CODE_RE.fullmatch(code) else None


@dataclass
class Loaded:
    challenge: MfaChallenge
    user: User

    @property
    def expired(self) -> bool:
        return self.challenge.expires_at <= utcnow()


def usable(ch: MfaChallenge, now: datetime) -> bool:
    return ch.consumed_at is None and ch.invalidated_at is None and ch.expires_at > now


async def create(
    request: Request, s: AsyncSession, user: User, purpose: str, phone: str, *,
    auth_session_hash: str | None = None, next_path: str = "/profile", remember: bool = False,
) -> MfaChallenge:
    """A new challenge replaces the browser's older one (R-O16); the cookie gets only its random id (R-S3)."""
    settings: Settings = request.app.state.settings
    token = secrets.token_urlsafe(32)
    now = utcnow()
    ch = MfaChallenge(
        id_hash=hash_id(token), user_id=user.id, purpose=purpose, auth_session_hash=auth_session_hash,
        phone_e164=phone, created_at=now, expires_at=now + timedelta(seconds=settings.mfa_challenge_ttl_s),
        next_path=next_path, remember=remember, sends=0, failed_checks=0, channel="sms", landline=False,
    )
    s.add(ch)
    state = cookie_state(request)
    state.set("challenge_id", token)
    state.rotate_csrf()
    return ch


async def load(request: Request, s: AsyncSession, purposes: frozenset[str], *, session_hash: str | None = None,
               include_expired: bool = False) -> Loaded | None:
    """The browser's challenge if it is live, of an expected purpose, and (for step-ups) bound to this session."""
    token = cookie_state(request).get("challenge_id")
    if not token:
        return None
    found = (await s.execute(
        select(MfaChallenge, User).join(User, User.id == MfaChallenge.user_id)
        .where(MfaChallenge.id_hash == hash_id(token))
    )).first()
    if found is None:
        return None
    ch, user = found
    if ch.purpose not in purposes or ch.consumed_at is not None or ch.invalidated_at is not None:
        return None
    if ch.purpose in STEP_UP and (session_hash is None or ch.auth_session_hash != session_hash):
        return None
    if ch.expires_at <= utcnow() and not include_expired:
        return None
    return Loaded(ch, user)


async def invalidate(s: AsyncSession, ch: MfaChallenge) -> None:
    await s.execute(
        update(MfaChallenge).where(MfaChallenge.id_hash == ch.id_hash, MfaChallenge.invalidated_at.is_(None))
        .values(invalidated_at=utcnow())
    )


async def consume(s: AsyncSession, ch: MfaChallenge) -> bool:
    """Exactly once, even for two concurrent right answers (R-O4)."""
    result = await s.execute(
        update(MfaChallenge)
        .where(MfaChallenge.id_hash == ch.id_hash, MfaChallenge.consumed_at.is_(None),
               MfaChallenge.invalidated_at.is_(None))
        .values(consumed_at=utcnow())
    )
    return bool(getattr(result, "rowcount", 0) == 1)


async def pending_for_session(s: AsyncSession, session_hash: str) -> list[MfaChallenge]:
    rows = (await s.execute(
        select(MfaChallenge).where(MfaChallenge.auth_session_hash == session_hash,
                                   MfaChallenge.consumed_at.is_(None), MfaChallenge.invalidated_at.is_(None))
    )).scalars().all()
    return list(rows)
