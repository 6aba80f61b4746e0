"""Rendering the code step and the profile's two-factor section, for pages and htmx fragments alike."""

from __future__ import annotations

import contextlib
from contextlib import AbstractAsyncContextManager
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import Response

from webapp.htmx import render
from webapp.models import MfaChallenge, SecurityNotice, User
from webapp.settings import Settings
from webapp.twofactor import recovery
from webapp.twofactor.challenges import CHANGE_OLD, DISABLE, ENROLL, LOGIN
from webapp.twofactor.phones import country_options, mask, region_from_language
from webapp.twofactor.sending import cooldown_left

NOTICE_TEXTS = {
    "mfa_enabled": "Two-step verification was turned on for your account.",
    "mfa_disabled": "Two-step verification was turned off for your account.",
    "phone_changed": "The phone number for two-step verification was changed.",
    "recovery_used": "A recovery code was used to sign in to your account.",
    "codes_regenerated": "New recovery codes were created; the old ones stopped working.",
    "second_step_failed": "Someone entered your password correctly but did not complete the code step.",
    "password_changed": "Your password was changed and your other sessions were signed out.",
}
HEADINGS = {
    LOGIN: "Enter your code",
    ENROLL: "Confirm your phone",
    DISABLE: "Confirm it's you",
    CHANGE_OLD: "Confirm it's you",
    "change_phone_new": "Confirm your new phone",
}


def code_step(request: Request, ch: MfaChallenge, *, error: str = "", call_possible: bool = True) -> dict[str, Any]:
    settings: Settings = request.app.state.settings
    cooldown = cooldown_left(settings, ch)
    return {
        "heading": HEADINGS.get(ch.purpose, "Enter your code"),
        "purpose": ch.purpose,
        "masked": mask(ch.phone_e164),
        # The full number only where it catches a typo: confirming a new number (R-PR1).
        "full_number": ch.phone_e164 if ch.purpose in (ENROLL, "change_phone_new") else "",
        "channel": ch.channel,
        "sent": bool(ch.verification_sid),
        "cooldown": cooldown,
        # From the start of the step, disabled by the resend countdown during the cooldown (when the server refuses a
        # call too). Hidden only when no call can follow: nothing sent yet (unless Verify said landline, 60205), the
        # send limit reached, or the last send refused for a reason a call shares (R-O9, R-O11).
        "offer_call": call_possible and ch.sends < settings.mfa_max_sends and (ch.landline or ch.sends > 0),
        "allow_recovery": ch.purpose in (LOGIN, DISABLE, CHANGE_OLD),
        "error": error,
    }


def render_code_step(request: Request, ch: MfaChallenge, *, error: str = "", status: int = 200,
                     flash: str = "", retry_after: int = 0, call_possible: bool = True) -> Response:
    headers = {"Retry-After": str(retry_after)} if retry_after else {}
    if ch.purpose == LOGIN:
        headers["HX-Push-Url"] = "/login/verify"
        page, fragment = "signin/verify.html", "signin/_code_step.html"
    else:
        page, fragment = "account/twofa.html", "account/_twofa_code.html"
    context = {"step": code_step(request, ch, error=error, call_possible=call_possible), "flash": flash,
               "partial": fragment}
    return render(request, page, fragment, context, status, headers)


def phone_form_context(request: Request, *, form: dict[str, str] | None = None, error: str = "",
                       purpose: str = ENROLL) -> dict[str, Any]:
    settings: Settings = request.app.state.settings
    values = form or {}
    region = values.get("region") or region_from_language(
        request.headers.get("accept-language", ""), settings.phone_allowed_regions, settings.phone_default_region)
    return {"countries": country_options(settings.phone_allowed_regions), "region": region,
            "phone": values.get("phone", ""), "error": error, "purpose": purpose, "flash": ""}


def _session(request: Request, s: AsyncSession | None) -> AbstractAsyncContextManager[AsyncSession]:
    """Join the caller's transaction when there is one: the profile page runs its reads in one session."""
    return contextlib.nullcontext(s) if s is not None else request.app.state.db.session()


async def twofa_context(request: Request, user: User, s: AsyncSession | None = None) -> dict[str, Any]:
    left = 0
    if user.mfa_enabled:
        async with _session(request, s) as session:
            left = await recovery.remaining(session, user.id)
    return {"masked_phone": mask(user.phone_e164) if user.phone_e164 else "",
            "codes_left": left, "flash": "", "notice_texts": NOTICE_TEXTS}


# Notices about something a session itself did; they wait for the next sign-in, so that whoever did it (perhaps
# with a stolen session or recovery code) cannot see and thereby dismiss the owner's warning (R-O13, R-RC5).
SELF_MADE = frozenset({"mfa_enabled", "mfa_disabled", "phone_changed", "codes_regenerated", "recovery_used"})


async def take_notices(request: Request, user_id: int, s: AsyncSession | None = None) -> list[SecurityNotice]:
    """Unseen banners for this user, marked seen as they are shown (R-L6, R-O13, R-RC5)."""
    from webapp.db import utcnow

    auth = getattr(request.state, "auth", None)
    since = auth.session.created_at if auth is not None else None
    async with _session(request, s) as session:
        rows = [row for row in (await session.execute(
            select(SecurityNotice).where(SecurityNotice.user_id == user_id, SecurityNotice.seen_at.is_(None))
            .order_by(SecurityNotice.created_at)
        )).scalars().all() if since is None or row.kind not in SELF_MADE or row.created_at < since]
        for row in rows:
            row.seen_at = utcnow()
    return rows
