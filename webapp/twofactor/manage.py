"""Profile two-factor management: enable, disable, change phone, new recovery codes — each behind step-up (R-O12)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, func, select, update
from starlette.requests import Request
from starlette.responses import Response

from webapp.accounts.passwords import check_password
from webapp.db import utcnow
from webapp.forms import read_form
from webapp.htmx import redirect, render, wants_fragment
from webapp.models import AuthenticatorEvent, RecoveryCode, SecurityNotice, User
from webapp.security import throttle
from webapp.security.audit import audit
from webapp.security.sessions import Auth, end_other_sessions, require_auth
from webapp.settings import Settings
from webapp.twofactor import challenges, recovery
from webapp.twofactor.challenges import CHANGE_NEW, CHANGE_OLD, DISABLE, ENROLL, STEP_UP, Loaded
from webapp.twofactor.checking import Outcome, check_code, check_recovery
from webapp.twofactor.login_step import cancel_verifications, discard
from webapp.twofactor.phones import MAX_PHONE_INPUT, last2, parse_phone
from webapp.twofactor.sending import Refused, send_code
from webapp.twofactor.views import phone_form_context, render_code_step, twofa_context

ACTIONS = {"enable": ENROLL, "disable": DISABLE, "phone": CHANGE_OLD, "recovery-codes": "recovery_regen"}
TITLES = {"enable": "Turn on two-step verification", "disable": "Turn off two-step verification",
          "phone": "Change your phone number", "recovery-codes": "Get new recovery codes"}
# One partial per state of the #twofa region; the code step's is chosen by render_code_step.
STATUS_PARTIAL = "account/_twofa_status.html"
STEPUP_PARTIAL = "account/_twofa_password.html"
PHONE_PARTIAL = "account/_twofa_phone.html"
CODES_PARTIAL = "account/_twofa_codes.html"


def _page(request: Request, partial: str, context: dict[str, Any], status: int = 200,
          headers: dict[str, str] | None = None) -> Response:
    """The state's partial for htmx, else the two-step page around it (which includes `partial`)."""
    return render(request, "account/twofa.html", partial, {"flash": "", "partial": partial, **context}, status,
                  headers)


def _action(request: Request, auth: Auth) -> str | None:
    action = str(request.path_params["action"])
    if action not in ACTIONS or (action == "enable") == auth.user.mfa_enabled:
        return None
    return action


async def stepup_form(request: Request) -> Response:
    auth = await require_auth(request)
    action = _action(request, auth)
    if action is None:
        return redirect(request, "/profile")
    return _page(request, STEPUP_PARTIAL, {"action": action, "title": TITLES[action], "error": ""})


async def stepup_submit(request: Request) -> Response:
    """The password again; a right one opens a challenge bound to this session, a wrong one counts (R-L1)."""
    form = await read_form(request, {"password": 1024})
    auth = await require_auth(request)
    action = _action(request, auth)
    if action is None:
        return redirect(request, "/profile")
    settings: Settings = request.app.state.settings
    key = throttle.throttle_key(settings.secret_key, "login-user", auth.user.username)
    async with request.app.state.db.session() as s:
        locked = await throttle.locked_for(s, key)
    ok = not locked and await check_password(settings, form.values.get("password", ""), auth.user.password_hash)
    context = {"action": action, "title": TITLES[action]}
    if not ok:
        async with request.app.state.db.session() as s:
            if not locked:
                await throttle.record_failure(s, key, settings.login_max_failures, settings.login_lock_s)
            await audit(request, "authn_login_fail", "failure", user_id=auth.user.id, factor="password",
                        purpose="step_up", session=s)
        error = "Too many wrong passwords. Try again later." if locked else "That password isn't right."
        return _page(request, STEPUP_PARTIAL, {**context, "error": error}, 429 if locked else 422)
    async with request.app.state.db.session() as s:
        await throttle.reset(s, key)
        stale = await discard(request, s)
        if action == "recovery-codes":
            return await _regenerate(request, s, auth)
        phone = "" if action == "enable" else (auth.user.phone_e164 or "")
        ch = await challenges.create(request, s, auth.user, ACTIONS[action], phone,
                                     auth_session_hash=auth.session.id_hash)
        ch_id = ch.id_hash
    await cancel_verifications(request, stale)
    if action == "enable":
        return _page(request, PHONE_PARTIAL, phone_form_context(request))
    return await _send_and_show(request, ch_id)


async def _send_and_show(request: Request, ch_id: str, channel: str = "sms") -> Response:
    try:
        ch = await send_code(request, ch_id, channel)
    except Refused as refused:
        async with request.app.state.db.session() as s:
            loaded = await _reload(request, s, ch_id)
        return render_code_step(request, loaded, error=refused.message, status=refused.status,
                                retry_after=refused.retry_after, call_possible=refused.offer_call)
    return render_code_step(request, ch, flash=f"We sent a code to the number ending {last2(ch.phone_e164)}.")


async def _reload(request: Request, s: Any, ch_id: str) -> Any:
    from webapp.models import MfaChallenge

    return (await s.execute(select(MfaChallenge).where(MfaChallenge.id_hash == ch_id))).scalar_one()


async def _current(request: Request, auth: Auth, purposes: frozenset[str] = STEP_UP) -> Loaded | None:
    async with request.app.state.db.session() as s:
        return await challenges.load(request, s, purposes, session_hash=auth.session.id_hash)


async def phone_submit(request: Request) -> Response:
    form = await read_form(request, {"region": 4, "phone": 64})
    auth = await require_auth(request)
    loaded = await _current(request, auth, frozenset({ENROLL, CHANGE_NEW}))
    if loaded is None:
        return redirect(request, "/profile")
    settings: Settings = request.app.state.settings
    e164, problem = parse_phone(form["phone"], form["region"].upper(), settings.phone_allowed_regions)
    if "phone" in form.errors:  # over-long input arrives empty: say why, not "Enter a phone number" (R-V1)
        e164, problem = None, f"A phone number has at most {MAX_PHONE_INPUT} characters."
    if e164 and not problem:
        async with request.app.state.db.session() as s:
            sharing = (await s.execute(select(func.count()).select_from(User).where(
                User.phone_e164 == e164, User.mfa_enabled.is_(True), User.id != auth.user.id))).scalar_one()
        if sharing >= settings.max_accounts_per_phone:
            problem = "We can't use this number. Please use another one."  # never says who else has it (R-V3)
    if problem or not e164:
        ctx = phone_form_context(request, form=form.values, error=problem or form.errors.get("phone", ""),
                                 purpose=loaded.challenge.purpose)
        return _page(request, PHONE_PARTIAL, ctx, 422)
    async with request.app.state.db.session() as s:
        ch = await _reload(request, s, loaded.challenge.id_hash)
        old_sid = ch.verification_sid if ch.phone_e164 != e164 else None
        if ch.phone_e164 != e164:
            ch.phone_e164, ch.verification_sid, ch.sends, ch.last_sent_at, ch.landline = e164, None, 0, None, False
    await cancel_verifications(request, [old_sid] if old_sid else [])
    return await _send_and_show(request, loaded.challenge.id_hash)


async def verify_submit(request: Request) -> Response:
    form = await read_form(request, {"code": 32})
    return await _check(request, form["code"], recovery_code=False)


async def recovery_submit(request: Request) -> Response:
    form = await read_form(request, {"recovery_code": 64})
    return await _check(request, form["recovery_code"], recovery_code=True)


async def _check(request: Request, code: str, *, recovery_code: bool) -> Response:
    auth = await require_auth(request)
    loaded = await _current(request, auth)
    if loaded is None or not loaded.challenge.phone_e164:
        return redirect(request, "/profile")
    if recovery_code and loaded.challenge.purpose not in (DISABLE, CHANGE_OLD):
        return redirect(request, "/2fa")
    check = check_recovery if recovery_code else check_code
    outcome: Outcome = await check(request, loaded.challenge, auth.user, code)
    if not outcome.ok:
        if outcome.over:
            async with request.app.state.db.session() as s:
                stale = await discard(request, s)
            await cancel_verifications(request, stale)
            return _page(request, STATUS_PARTIAL, {**await twofa_context(request, auth.user), "error": outcome.message},
                         outcome.status)
        return render_code_step(request, loaded.challenge, error=outcome.message, status=outcome.status,
                                retry_after=outcome.retry_after)
    return await _approved(request, auth, loaded, factor="recovery" if recovery_code else "sms")


async def _approved(request: Request, auth: Auth, loaded: Loaded, factor: str) -> Response:
    ch = loaded.challenge
    settings: Settings = request.app.state.settings
    async with request.app.state.db.session() as s:
        if not await challenges.consume(s, ch):
            return redirect(request, "/profile")
        user = (await s.execute(select(User).where(User.id == auth.user.id))).scalar_one()
        user.mfa_failed_count, user.mfa_locked_until = 0, None
        if ch.purpose == CHANGE_OLD:
            new = await challenges.create(request, s, user, CHANGE_NEW, "", auth_session_hash=auth.session.id_hash)
            del new
            return _page(request, PHONE_PARTIAL, phone_form_context(request, purpose=CHANGE_NEW))
        now = utcnow()
        if ch.purpose in (ENROLL, CHANGE_NEW):
            await s.execute(update(AuthenticatorEvent).where(AuthenticatorEvent.user_id == user.id,
                                                             AuthenticatorEvent.unbound_at.is_(None))
                            .values(unbound_at=now))
            s.add(AuthenticatorEvent(user_id=user.id, kind="sms", last2=last2(ch.phone_e164), bound_at=now))
            user.phone_e164, user.phone_verified_at = ch.phone_e164, now  # only now, after approval (R-O2)
        codes: list[str] = []
        if ch.purpose == ENROLL:
            user.mfa_enabled = True
            codes = await recovery.issue(s, user.id, settings.recovery_code_count, settings.bcrypt_rounds)
            event, notice, kind = "mfa_enabled", "twofa-on", "mfa_enabled"
        elif ch.purpose == CHANGE_NEW:
            event, notice, kind = "mfa_phone_changed", "phone-changed", "phone_changed"
        else:  # DISABLE: clear the number, keep only the binding history (R-PR4)
            await s.execute(update(AuthenticatorEvent).where(AuthenticatorEvent.user_id == user.id,
                                                             AuthenticatorEvent.unbound_at.is_(None))
                            .values(unbound_at=now))
            await s.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
            user.mfa_enabled, user.phone_e164, user.phone_verified_at = False, None, None
            event, notice, kind = "mfa_disabled", "twofa-off", "mfa_disabled"
        # Confirmed by a code (or a recovery code): say which, and the channel, like every MFA event (R-A2).
        await audit(request, event, "success", user_id=user.id, factor=factor, channel=ch.channel, session=s)
        # The acting session just proved the phone (or a recovery code): it counts as second-factor passed.
        await end_other_sessions(request, s, user, auth.session, mfa_passed=True)  # R-S8
        # Stamped after the new session: the banner is for the next sign-in, not for whoever did it (R-O13).
        s.add(SecurityNotice(user_id=user.id, kind=kind, created_at=utcnow()))
    if codes:
        return _codes_page(request, codes, "Two-step verification is on.")
    return redirect(request, "/profile", notice=notice)


async def _regenerate(request: Request, s: Any, auth: Auth) -> Response:
    settings: Settings = request.app.state.settings
    user = (await s.execute(select(User).where(User.id == auth.user.id))).scalar_one()
    codes = await recovery.issue(s, user.id, settings.recovery_code_count, settings.bcrypt_rounds)
    await audit(request, "recovery_codes_regenerated", "success", user_id=user.id, session=s)
    await end_other_sessions(request, s, user, auth.session)
    s.add(SecurityNotice(user_id=user.id, kind="codes_regenerated", created_at=utcnow()))  # see _approved
    return _codes_page(request, codes, "New recovery codes are ready; the old ones no longer work.")


def _codes_page(request: Request, codes: list[str], flash: str) -> Response:
    """Shown once, never stored in clear (R-RC1). htmx swaps the whole page body: the session and its CSRF token
    were just re-issued, so every form on the page must be re-rendered with the new token."""
    context = {"partial": CODES_PARTIAL, "codes": codes, "codes_text": "\n".join(codes) + "\n", "flash": flash}
    headers = {"HX-Retarget": "body", "HX-Reswap": "innerHTML"} if wants_fragment(request) else None
    return render(request, "account/twofa.html", None, context, headers=headers)


async def resend_submit(request: Request) -> Response:
    return await _resend(request, "sms")


async def call_submit(request: Request) -> Response:
    return await _resend(request, "call")


async def _resend(request: Request, channel: str) -> Response:
    await read_form(request, {})
    auth = await require_auth(request)
    loaded = await _current(request, auth)
    if loaded is None or not loaded.challenge.phone_e164:
        return redirect(request, "/profile")
    return await _send_and_show(request, loaded.challenge.id_hash, channel)


async def cancel_submit(request: Request) -> Response:
    await read_form(request, {})
    await require_auth(request)
    async with request.app.state.db.session() as s:
        stale = await discard(request, s)
    await cancel_verifications(request, stale)
    return redirect(request, "/profile")


async def current_step(request: Request) -> Response:
    """GET /2fa: the step in progress as a full page, for reloads, history and no-JS."""
    auth = await require_auth(request)
    loaded = await _current(request, auth)
    if loaded is None:
        return redirect(request, "/profile")
    if not loaded.challenge.phone_e164:
        return _page(request, PHONE_PARTIAL, phone_form_context(request, purpose=loaded.challenge.purpose))
    return render_code_step(request, loaded.challenge)


async def recovery_used(request: Request) -> Response:
    """The interstitial after a recovery-code sign-in: how many remain and what to do next (R-RC5)."""
    auth = await require_auth(request)
    return render(request, "account/recovery_used.html", None, await twofa_context(request, auth.user))
