"""Server-side sessions (R-S1…R-S9): the cookie names a row; the row, not the cookie, decides."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request

from webapp.db import utcnow
from webapp.models import AuthSession, User
from webapp.security.clients import browser_label, client_ip
from webapp.security.cookies import cookie_state
from webapp.settings import Settings

TOUCH_EVERY = timedelta(seconds=60)


class LoginRequired(Exception):
    """Raised by `require_auth`; answered with a redirect to the sign-in page."""

    def __init__(self, expired: bool = False) -> None:
        super().__init__("login required")
        self.expired = expired


@dataclass
class Auth:
    user: User
    session: AuthSession


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
    )


async def start_session(request: Request, s: AsyncSession, user: User, *, remember: bool, mfa_passed: bool) -> str:
    """A fresh random id at each login or step-up (R-S3); the cookie gets it and a new CSRF token (R-C2)."""
    settings: Settings = request.app.state.settings
    sid = secrets.token_urlsafe(32)
    now = utcnow()
    s.add(AuthSession(
        id_hash=hash_token(sid), user_id=user.id, epoch=user.session_epoch, mfa_passed=mfa_passed,
        remember=remember, created_at=now, last_seen_at=now, ip=client_ip(request)[:64],
        browser=browser_label(request.headers.get("user-agent", "")),
    ))
    state = cookie_state(request)
    state.set("sid", sid)
    state.set("challenge_id", None)
    state.rotate_csrf()
    state.max_age = settings.session_remember_s if remember else settings.session_absolute_s
    return sid


async def load_auth(request: Request) -> Auth | None:
    """The signed-in user for this request, or None; cached on request.state."""
    if hasattr(request.state, "auth"):
        cached: Auth | None = request.state.auth
        return cached
    request.state.auth = None
    sid = cookie_state(request).get("sid")
    if not sid:
        return None
    settings: Settings = request.app.state.settings
    now = utcnow()
    async with request.app.state.db.session() as s:
        found = (await s.execute(
            select(AuthSession, User).join(User, User.id == AuthSession.user_id)
            .where(AuthSession.id_hash == hash_token(sid))
        )).first()
        if found is None:
            return None
        row, user = found
        if not session_alive(settings, row, user, now):
            request.state.session_expired = True
            return None
        if now - row.last_seen_at >= TOUCH_EVERY:
            row.last_seen_at = now
    auth = Auth(user=user, session=row)
    request.state.auth = auth
    return auth


async def require_auth(request: Request) -> Auth:
    auth = await load_auth(request)
    if auth is None:
        raise LoginRequired(expired=bool(getattr(request.state, "session_expired", False)))
    return auth


async def revoke_session(s: AsyncSession, id_hash: str) -> None:
    await s.execute(
        update(AuthSession).where(AuthSession.id_hash == id_hash, AuthSession.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )


async def end_other_sessions(request: Request, s: AsyncSession, user: User, current: AuthSession,
                             *, mfa_passed: bool | None = None) -> None:
    """Bump the epoch (every row goes stale, R-S2) and re-issue the acting session (R-S8)."""
    user.session_epoch += 1
    await s.execute(
        update(AuthSession).where(AuthSession.user_id == user.id, AuthSession.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )
    passed = current.mfa_passed if mfa_passed is None else mfa_passed
    await start_session(request, s, user, remember=current.remember, mfa_passed=passed)


async def active_sessions(s: AsyncSession, settings: Settings, user: User) -> list[AuthSession]:
    rows = (await s.execute(
        select(AuthSession).where(AuthSession.user_id == user.id, AuthSession.revoked_at.is_(None),
                                  AuthSession.epoch == user.session_epoch)
        .order_by(AuthSession.last_seen_at.desc())
    )).scalars().all()
    now = utcnow()
    return [r for r in rows if session_alive(settings, r, user, now)]
