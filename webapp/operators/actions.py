"""Operator actions on one account. Each is one unit of work holding the user's row lock, with its audit row.

Verifications still open at Twilio are cancelled afterwards, best effort (they expire by themselves in ten
minutes), and the user is told through `notify.tell_user` once mail exists.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from webapp.db import utcnow
from webapp.deps import Deps
from webapp.identity.users import login_key
from webapp.mail import notices
from webapp.models import AuthSession, MfaChallenge, SecurityNotice, User
from webapp.operators.accounts import UnknownUser
from webapp.operators.notify import tell_user
from webapp.security import audit, sessions, throttle
from webapp.security.clients import Client
from webapp.settings import Settings
from webapp.twofactor.challenges import open_conditions
from webapp.twofactor.completion import clear_two_step
from webapp.verify import VerifyError


@dataclass(frozen=True)
class Done:
    """What an action did, in words for the operator; `changed` False when there was nothing to do."""

    changed: bool
    message: str
    sessions_ended: int = 0
    mailed: bool = False
    verification_sids: list[str] = field(default_factory=list, repr=False)


def _locked(s: Session, user_id: int) -> User:
    user = sessions.lock_user(s, user_id)
    if user is None:  # deleted since the operator looked it up
        raise UnknownUser(f"#{user_id}")
    return user


def _end_everything(s: Session, user: User) -> tuple[int, list[str]]:
    """End every session and open challenge; (sessions that were live, Verify sids to cancel)."""
    live = s.execute(select(func.count()).select_from(AuthSession).where(
        AuthSession.user_id == user.id, AuthSession.revoked_at.is_(None),
        AuthSession.epoch == user.session_epoch)).scalar_one()
    sids = s.execute(select(MfaChallenge.verification_sid).where(
        MfaChallenge.user_id == user.id, MfaChallenge.verification_sid.is_not(None),
        *open_conditions(utcnow()))).scalars().all()
    sessions.end_all(s, user)
    return int(live), [sid for sid in sids if sid]


async def _finish(deps: Deps, user_id: int, kind: str, done: Done) -> Done:
    for sid in done.verification_sids:
        with contextlib.suppress(VerifyError):
            await deps.verify.cancel(sid)
    mailed = await tell_user(deps, user_id, kind) if done.changed else False
    return Done(done.changed, done.message, done.sessions_ended, mailed)


async def reset_2fa(deps: Deps, client: Client, user_id: int, operator: str) -> Done:
    """For a user who lost both phone and recovery codes: number, recovery codes, remembered browsers, open steps."""
    done = await deps.db.write(_reset_2fa, client, user_id, operator)
    return await _finish(deps, user_id, "mfa_reset", done)


def _reset_2fa(s: Session, client: Client, user_id: int, operator: str) -> Done:
    user = _locked(s, user_id)
    had = user.mfa_enabled
    codes = clear_two_step(s, user)
    user.mfa_failed_count, user.mfa_locked_until = 0, None
    ended, sids = _end_everything(s, user)  # "Keep me signed in" browsers included: every session ends
    s.add(SecurityNotice(user_id=user.id, kind="mfa_reset"))
    notices.notify(s, user, "mfa_reset")  # the mail is written with the change, so it goes out exactly when it did
    audit.record(s, client, "admin_mfa_reset", "success", user_id=user.id, operator=operator, had_two_step=had,
                 recovery_codes_removed=codes, sessions_ended=ended)
    state = "two-step verification removed" if had else "two-step verification was already off; cleared anyway"
    return Done(True, f"{user.username}: {state}; {codes} recovery codes deleted; {ended} sessions ended",
                ended, verification_sids=sids)


async def revoke_sessions(deps: Deps, client: Client, user_id: int, operator: str) -> Done:
    done = await deps.db.write(_revoke_sessions, client, user_id, operator)
    return await _finish(deps, user_id, "sessions_revoked", done)


def _revoke_sessions(s: Session, client: Client, user_id: int, operator: str) -> Done:
    user = _locked(s, user_id)
    ended, sids = _end_everything(s, user)
    audit.record(s, client, "admin_sessions_revoked", "success", user_id=user.id, operator=operator,
                 sessions_ended=ended)
    return Done(True, f"{user.username}: {ended} sessions ended", ended, verification_sids=sids)


async def unlock(deps: Deps, client: Client, user_id: int, operator: str) -> Done:
    """Lift the sign-in lock and the two-step lock, and forget the failures counted towards them."""
    return await deps.db.write(_unlock, deps.settings, client, user_id, operator)


def _unlock(s: Session, settings: Settings, client: Client, user_id: int, operator: str) -> Done:
    user = _locked(s, user_id)
    key = login_key(settings, user.username)
    login_left = throttle.locked_for(s, key)
    mfa_locked = user.mfa_locked_until is not None and user.mfa_locked_until > utcnow()
    throttle.reset(s, key)
    user.mfa_failed_count, user.mfa_locked_until = 0, None
    audit.record(s, client, "admin_unlocked", "success", user_id=user.id, operator=operator,
                 login_was_locked=bool(login_left), mfa_was_locked=mfa_locked)
    what = [name for name, on in (("sign-in", login_left), ("two-step verification", mfa_locked)) if on]
    message = f"{user.username}: unlocked {' and '.join(what)}" if what else f"{user.username}: was not locked"
    return Done(bool(what), message + "; failure counts cleared")


async def disable(deps: Deps, client: Client, user_id: int, operator: str) -> Done:
    """The account can't sign in (refused like a wrong password) and every session of it ends."""
    done = await deps.db.write(_disable, client, user_id, operator)
    return await _finish(deps, user_id, "disabled", done)


def _disable(s: Session, client: Client, user_id: int, operator: str) -> Done:
    user = _locked(s, user_id)
    if user.disabled_at is not None:
        return Done(False, f"{user.username}: already disabled since {user.disabled_at:%Y-%m-%d %H:%M} UTC")
    user.disabled_at = utcnow()
    ended, sids = _end_everything(s, user)
    audit.record(s, client, "admin_user_disabled", "success", user_id=user.id, operator=operator,
                 sessions_ended=ended)
    return Done(True, f"{user.username}: disabled; {ended} sessions ended", ended, verification_sids=sids)


async def enable(deps: Deps, client: Client, user_id: int, operator: str) -> Done:
    done = await deps.db.write(_enable, client, user_id, operator)
    return await _finish(deps, user_id, "enabled", done)


def _enable(s: Session, client: Client, user_id: int, operator: str) -> Done:
    user = _locked(s, user_id)
    if user.disabled_at is None:
        return Done(False, f"{user.username}: not disabled")
    user.disabled_at = None
    audit.record(s, client, "admin_user_enabled", "success", user_id=user.id, operator=operator)
    return Done(True, f"{user.username}: enabled; they can sign in again")
