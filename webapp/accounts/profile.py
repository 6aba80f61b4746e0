"""The profile page, its sessions list and activity, and "Sign out everywhere"."""

from __future__ import annotations

from sqlalchemy import select
from starlette.requests import Request
from starlette.responses import Response

from webapp.forms import read_form
from webapp.htmx import redirect, render
from webapp.models import SecurityEvent
from webapp.security.audit import EVENT_LABELS, audit
from webapp.security.cookies import cookie_state
from webapp.security.sessions import active_sessions, hash_token, require_auth
from webapp.settings import Settings
from webapp.twofactor import challenges
from webapp.twofactor.views import take_notices, twofa_context

ACTIVITY_LIMIT = 15


async def profile_show(request: Request) -> Response:
    auth = await require_auth(request)
    settings: Settings = request.app.state.settings
    async with request.app.state.db.session() as s:
        sessions = await active_sessions(s, settings, auth.user)
        events = (await s.execute(
            select(SecurityEvent).where(SecurityEvent.user_id == auth.user.id,
                                        SecurityEvent.event.in_(list(EVENT_LABELS)))
            .order_by(SecurityEvent.ts.desc(), SecurityEvent.id.desc()).limit(ACTIVITY_LIMIT)
        )).scalars().all()
        notices = await take_notices(request, auth.user.id, s)
        twofa = await twofa_context(request, auth.user, s)
        # A reload mid-enrollment (htmx pushes no URL for these steps) must not hide the step in progress.
        pending = await challenges.load(request, s, challenges.STEP_UP, session_hash=auth.session.id_hash)
    current = hash_token(cookie_state(request).get("sid") or "")
    context = {"sessions": sessions, "current_session": current, "events": events, "labels": EVENT_LABELS,
               "notices": notices, **twofa, "pending_step": pending is not None}
    return render(request, "account/profile.html", None, context)


async def sessions_end_all(request: Request) -> Response:
    await read_form(request, {})
    auth = await require_auth(request)
    async with request.app.state.db.session() as s:
        user = await s.merge(auth.user)
        user.session_epoch += 1
        await audit(request, "session_revoked", "success", user_id=user.id, scope="all", session=s)
    cookie_state(request).clear()
    return redirect(request, "/login", notice="signed-out-everywhere")
