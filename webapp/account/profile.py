"""The profile page (one read transaction, three queries), its banners, and "Sign out everywhere"."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import exists, select, update
from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import Response

from webapp.db import utcnow
from webapp.forms import read_form
from webapp.htmx import redirect, render
from webapp.models import AuthSession, MfaChallenge, SecurityEvent, SecurityNotice, User
from webapp.security import audit, sessions
from webapp.security.audit import EVENT_LABELS
from webapp.security.clients import Client
from webapp.security.cookies import cookie_state
from webapp.settings import Settings
from webapp.twofactor import recovery
from webapp.twofactor.phones import mask
from webapp.web import LoginRequired, client, deps_of, remember_auth, require_auth

ACTIVITY_LIMIT = 15
NOTICE_TEXTS = {
    "mfa_enabled": "Two-step verification was turned on for your account.",
    "mfa_disabled": "Two-step verification was turned off for your account.",
    "phone_changed": "The phone number for two-step verification was changed.",
    "recovery_used": "A recovery code was used to sign in to your account.",
    "codes_regenerated": "New recovery codes were created; the old ones stopped working.",
    "second_step_failed": "Someone entered your password correctly but did not complete the code step.",
    "password_changed": "Your password was changed and your other sessions were signed out.",
    "password_reset": "Your password was reset from a link sent by email, and every session was signed out.",
    "not_me": "Someone used a “This wasn't me” link from one of our emails: every session was signed out.",
}
# Notices about something a session itself did wait for the next sign-in, so whoever did it (perhaps with a
# stolen session or recovery code) cannot see and thereby dismiss the owner's warning (R-O13, R-RC5).
SELF_MADE = frozenset({"mfa_enabled", "mfa_disabled", "phone_changed", "codes_regenerated", "recovery_used"})


@dataclass
class Overview:
    auth: sessions.Auth | None
    expired: bool = False
    codes_left: int = 0
    pending_step: bool = False
    has_notices: bool = False
    sessions: list[AuthSession] = field(default_factory=list)
    events: list[SecurityEvent] = field(default_factory=list)


def overview(s: Session, settings: Settings, sid: str) -> Overview:
    """Session, user and counts in one query; then the sessions list and the activity: three queries, no write."""
    now = utcnow()
    sid_hash = sessions.hash_token(sid)
    pending = exists().where(MfaChallenge.auth_session_hash == sid_hash, MfaChallenge.consumed_at.is_(None),
                             MfaChallenge.invalidated_at.is_(None), MfaChallenge.expires_at > now)
    notices = exists().where(SecurityNotice.user_id == User.id, SecurityNotice.seen_at.is_(None))
    found = s.execute(
        select(AuthSession, User, recovery.remaining_query(AuthSession.user_id), pending, notices)
        .join(User, User.id == AuthSession.user_id).where(AuthSession.id_hash == sid_hash)
    ).first()
    if found is None:
        return Overview(None)
    row, user, left, has_pending, has_notices = found
    if not sessions.session_alive(settings, row, user, now):
        return Overview(None, expired=True)
    events = s.execute(
        select(SecurityEvent).where(SecurityEvent.user_id == user.id, SecurityEvent.event.in_(list(EVENT_LABELS)))
        .order_by(SecurityEvent.ts.desc(), SecurityEvent.id.desc()).limit(ACTIVITY_LIMIT)
    ).scalars().all()
    return Overview(sessions.Auth(user, row), codes_left=int(left), pending_step=bool(has_pending),
                    has_notices=bool(has_notices), sessions=sessions.active_sessions(s, settings, user),
                    events=list(events))


def take_notices(s: Session, user_id: int, since: datetime) -> list[SecurityNotice]:
    """Unseen banners for this user, marked seen as they are shown (R-L6, R-O13, R-RC5)."""
    rows = [row for row in s.execute(
        select(SecurityNotice).where(SecurityNotice.user_id == user_id, SecurityNotice.seen_at.is_(None))
        .order_by(SecurityNotice.created_at)).scalars().all()
        if row.kind not in SELF_MADE or row.created_at < since]
    if rows:
        s.execute(update(SecurityNotice).where(SecurityNotice.id.in_([r.id for r in rows])).values(seen_at=utcnow()))
    return rows


def twofa_status(user: User, codes_left: int) -> dict[str, Any]:
    return {"masked_phone": mask(user.phone_e164) if user.phone_e164 else "",
            "codes_left": codes_left, "flash": "", "notice_texts": NOTICE_TEXTS}


async def profile_show(request: Request) -> Response:
    deps = deps_of(request)
    sid = cookie_state(request).get("sid") or ""
    view = await deps.db.read(overview, deps.settings, sid) if sid else Overview(None)
    remember_auth(request, view.auth, view.expired)
    if view.auth is None:
        raise LoginRequired(expired=view.expired)
    auth = view.auth
    if sessions.needs_touch(auth):
        await deps.db.write(sessions.touch, auth.session.id_hash)
    notices = (await deps.db.write(take_notices, auth.user.id, auth.session.created_at)
               if view.has_notices else [])
    context = {"sessions": view.sessions, "current_session": auth.session.id_hash, "events": view.events,
               "labels": EVENT_LABELS, "notices": notices, **twofa_status(auth.user, view.codes_left),
               "pending_step": view.pending_step}
    return render(request, "account/profile.html", None, context)


def _end_everywhere(s: Session, client: Client, user_id: int) -> None:
    user = sessions.lock_user(s, user_id)
    if user is not None:
        sessions.end_all(s, user)
        audit.record(s, client, "session_revoked", "success", user_id=user.id, scope="all")


async def sessions_end_all(request: Request) -> Response:
    await read_form(request, {})
    auth = await require_auth(request)
    await deps_of(request).db.write(_end_everywhere, client(request), auth.user.id)
    cookie_state(request).clear()
    return redirect(request, "/login", notice="signed-out-everywhere")
