"""The profile page (one read transaction, three queries), its banners, and "Sign out everywhere"."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select, text, update
from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import Response

from webapp import rows
from webapp.db import utcnow
from webapp.forms import read_form
from webapp.htmx import redirect, render
from webapp.models import AuthSession, RememberedBrowser, SecurityNotice, User
from webapp.security import audit, sessions
from webapp.security.audit import EVENT_LABELS
from webapp.security.clients import Client
from webapp.security.cookies import cookie_state
from webapp.settings import Settings
from webapp.signin import device
from webapp.twofactor import browsers, methods, recovery
from webapp.twofactor.phones import mask
from webapp.web import LoginRequired, client, deps_of, remember_auth, require_auth

ACTIVITY_LIMIT = 15
# How the security log names the method an event used (its details' "factor", else its "method").
METHOD_NAMES = {"sms": "text message", "totp": "authenticator app", "webauthn": "passkey", "recovery": "recovery code"}
NOTICE_TEXTS = {
    "mfa_enabled": "Two-step verification was turned on for your account.",
    "mfa_disabled": "Two-step verification was turned off for your account.",
    "phone_changed": "The phone number for two-step verification was changed.",
    "recovery_used": "A recovery code was used to sign in to your account.",
    "codes_regenerated": "New recovery codes were created; the old ones stopped working.",
    "second_step_failed": "Someone entered your password correctly but did not complete the code step.",
    "password_changed": "Your password was changed and your other sessions were signed out.",
    "mfa_reset": "An administrator turned off two-step verification for your account and ended all its sessions. "
                 "You can turn it on again below.",
    "method_added": "A new way to sign in was added to your account.",
    "method_removed": "A way to sign in was removed from your account.",
    "passkey_flagged": "One of your passkeys was refused because its counter went backwards: it may have been copied. "
                       "Remove it below if you don't recognise this.",
    "password_reset": "Your password was reset from a link sent by email, and every session was signed out.",
    "not_me": "Someone used a “This wasn't me” link from one of our emails: every session was signed out.",
}
# Notices about something a session itself did wait for the next sign-in, so whoever did it (perhaps with a
# stolen session or recovery code) cannot see and thereby dismiss the owner's warning (R-O13, R-RC5).
SELF_MADE = frozenset({"mfa_enabled", "mfa_disabled", "phone_changed", "codes_regenerated", "recovery_used",
                       "method_added", "method_removed"})


@dataclass(frozen=True)
class Activity:
    ts: datetime
    event: str
    ip: str
    browser: str
    details: dict[str, Any]


@dataclass
class Overview:
    auth: sessions.Auth | None
    expired: bool = False
    codes_left: int = 0
    pending_step: bool = False
    has_notices: bool = False
    sessions: list[AuthSession] = field(default_factory=list)
    events: list[Activity] = field(default_factory=list)
    methods: list[methods.Method] = field(default_factory=list)
    browsers: list[RememberedBrowser] = field(default_factory=list)
    this_browser: int | None = None


# Column names come from the models and the label list, never from input.
_OVERVIEW = text(
    sessions.SESSION_AND_USER.replace(" FROM ", ", (SELECT count(*) FROM recovery_codes r "
                                      "WHERE r.user_id = u.id AND r.used_at IS NULL) AS codes_left, "
                                      "EXISTS (SELECT 1 FROM mfa_challenges c WHERE c.auth_session_hash = s.id_hash "
                                      "AND c.consumed_at IS NULL AND c.invalidated_at IS NULL AND c.expires_at > :now"
                                      ") AS pending, EXISTS (SELECT 1 FROM security_notices n WHERE n.user_id = u.id "
                                      "AND n.seen_at IS NULL) AS has_notices FROM ", 1))
_SESSIONS = text(f"SELECT {rows.columns(AuthSession, 's')} FROM auth_sessions s WHERE s.user_id = :user_id "  # noqa: S608
                 "AND s.revoked_at IS NULL AND s.epoch = :epoch ORDER BY s.last_seen_at DESC")
_LABELLED = ", ".join(repr(e) for e in EVENT_LABELS)
_EVENTS = text("SELECT ts, event, ip, browser, details FROM security_events WHERE user_id = :user_id "  # noqa: S608
               f"AND event IN ({_LABELLED}) ORDER BY ts DESC, id DESC LIMIT :limit")


def overview(s: Session, settings: Settings, sid: str, device_token: str | None = None) -> Overview:
    """Session, user and counts in one query; then sessions, activity, methods and remembered browsers; no write."""
    now = utcnow()
    found = s.execute(_OVERVIEW, {"id_hash": sessions.hash_token(sid), "now": now}).mappings().first()
    if found is None:
        return Overview(None)
    auth, expired = sessions.from_row(settings, found)
    if auth is None:
        return Overview(None, expired=expired)
    user = auth.user
    listed = [rows.hydrate(AuthSession, r, "s") for r in
              s.execute(_SESSIONS, {"user_id": user.id, "epoch": user.session_epoch}).mappings()]
    events = [Activity(rows.as_datetime(r.ts), r.event, r.ip, r.browser, rows.as_dict(r.details)) for r in
              s.execute(_EVENTS, {"user_id": user.id, "limit": ACTIVITY_LIMIT})]
    remembered = browsers.listed(s, user.id)
    mine = browsers.hash_token(device_token) if device_token else None
    return Overview(auth, codes_left=int(found["codes_left"]), pending_step=bool(found["pending"]),
                    has_notices=bool(found["has_notices"]), events=events,
                    sessions=[r for r in listed if sessions.session_alive(settings, r, user, now)],
                    methods=methods.listed(s, user.id), browsers=remembered,
                    this_browser=next((b.id for b in remembered if b.token_hash == mine), None))


def take_notices(s: Session, user_id: int, since: datetime) -> list[SecurityNotice]:
    """Unseen banners for this user, marked seen as they are shown (R-L6, R-O13, R-RC5)."""
    rows = [row for row in s.execute(
        select(SecurityNotice).where(SecurityNotice.user_id == user_id, SecurityNotice.seen_at.is_(None))
        .order_by(SecurityNotice.created_at)).scalars().all()
        if row.kind.split(":")[0] not in SELF_MADE or row.created_at < since]
    if rows:
        s.execute(update(SecurityNotice).where(SecurityNotice.id.in_([r.id for r in rows])).values(seen_at=utcnow()))
    return rows


def twofa_status(user: User, codes_left: int, listed: list[methods.Method] | None = None) -> dict[str, Any]:
    return {"masked_phone": mask(user.phone_e164) if user.phone_e164 else "", "methods": listed or [],
            "codes_left": codes_left, "flash": "", "notice_text": notice_text}


def notice_text(kind: str) -> str:
    """A banner's sentence; kinds such as `method_added:webauthn` name the method."""
    base, _, method = kind.partition(":")
    text = NOTICE_TEXTS.get(base, "Something changed in your account security.")
    return f"{text} ({METHOD_NAMES[method].capitalize()})" if method in METHOD_NAMES else text


def status_view(s: Session, user_id: int) -> tuple[int, list[methods.Method]]:
    """What the two-step status shows besides the user: recovery codes left and the methods."""
    return recovery.remaining(s, user_id), methods.listed(s, user_id)


async def profile_show(request: Request) -> Response:
    deps = deps_of(request)
    sid = cookie_state(request).get("sid") or ""
    view = await deps.db.read(overview, deps.settings, sid, device.token_of(request)) if sid else Overview(None)
    remember_auth(request, view.auth, view.expired)
    if view.auth is None:
        raise LoginRequired(expired=view.expired)
    auth = view.auth
    if sessions.needs_touch(auth):
        await deps.db.write(sessions.touch, auth.session.id_hash)
    notices = (await deps.db.write(take_notices, auth.user.id, auth.session.created_at)
               if view.has_notices else [])
    context = {"sessions": view.sessions, "current_session": auth.session.id_hash, "events": view.events,
               "labels": EVENT_LABELS, "notices": notices, **twofa_status(auth.user, view.codes_left, view.methods),
               "pending_step": view.pending_step, "browsers": view.browsers, "this_browser": view.this_browser,
               "method_names": METHOD_NAMES}
    return render(request, "account/profile.html", None, context)


def _end_everywhere(s: Session, client: Client, user_id: int) -> None:
    user = sessions.lock_user(s, user_id)
    if user is not None:
        sessions.end_all(s, user)
        browsers.forget_all(s, user.id)  # "sign out everywhere" includes the remembered browsers
        audit.record(s, client, "session_revoked", "success", user_id=user.id, scope="all")


async def sessions_end_all(request: Request) -> Response:
    await read_form(request, {})
    auth = await require_auth(request)
    await deps_of(request).db.write(_end_everywhere, client(request), auth.user.id)
    cookie_state(request).clear()
    return redirect(request, "/login", notice="signed-out-everywhere")
