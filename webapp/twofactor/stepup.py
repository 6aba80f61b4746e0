"""Profile step-ups (R-O12): open the step an action needs, take a new number, or regenerate recovery codes."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy.orm import Session

from webapp.db import utcnow
from webapp.deps import Deps
from webapp.mail import notices
from webapp.models import SecurityNotice, User
from webapp.security import audit, sessions
from webapp.security.clients import Client
from webapp.settings import Settings
from webapp.twofactor import challenges, methods, recovery, secretbox, totp
from webapp.twofactor.challenges import ADD_PASSKEY, ADD_TOTP, CHANGE_OLD, DISABLE, ENROLL, Found, Opened
from webapp.twofactor.completion import NUMBER_REFUSED, number_taken, reissue
from webapp.twofactor.methods import SMS, TOTP, WEBAUTHN

PURPOSES = {"enable": ENROLL, "disable": DISABLE, "phone": CHANGE_OLD, "app": ADD_TOTP, "passkey": ADD_PASSKEY}


def allowed(action: str, user: User) -> bool:
    """Which profile actions make sense now: a phone is added when there is none; the rest need two-step on."""
    if action in ("app", "passkey"):
        return True
    if action == "enable":
        return not user.phone_e164
    if action == "phone":
        return bool(user.mfa_enabled and user.phone_e164)
    return bool(user.mfa_enabled)


def _method_for(s: Session, user: User, action: str) -> tuple[str, str | None]:
    """The method and server-side state a new step starts with; proving it's you uses the default method."""
    if action == "app":
        return TOTP, totp.new_secret()  # sealed below: the page shows it until the app confirms it
    if action == "passkey":
        return WEBAUTHN, None
    if action in ("disable", "phone"):
        kind = methods.default_kind(methods.rows_of(s, user.id), phone=user.phone_e164)
        return (SMS if action == "phone" else kind), None
    return SMS, None


@dataclass(frozen=True)
class Begun:
    step: Opened | None = None
    stale_sids: list[str] = field(default_factory=list)
    problem: str = ""


def open_step(s: Session, settings: Settings, auth: sessions.Auth, action: str, token: str | None) -> Begun:
    """After the password: the browser's older step closes, a new one opens bound to this session."""
    user = sessions.lock_user(s, auth.user.id)  # the user's row first, in every unit of work: no lock-order deadlock
    stale = challenges.discard_token(s, token)
    if user is None or user.session_epoch != auth.user.session_epoch or not allowed(action, user):
        return Begun(stale_sids=stale, problem="changed")
    phone = "" if action in ("enable", "app", "passkey") else (user.phone_e164 or "")
    method, payload = _method_for(s, user, action)
    if payload is not None:
        payload = secretbox.seal(settings, payload, user.id)
    step = challenges.open_challenge(s, settings, user, PURPOSES[action], phone, session_hash=auth.session.id_hash,
                                     method=method, payload=payload)
    return Begun(step, stale)


def choose_number(s: Session, settings: Settings, found: Found, e164: str) -> Begun:
    """A number fixes the challenge: a different number closes this one and opens another (no swap under a code)."""
    ch = found.challenge
    user = sessions.lock_user(s, ch.user_id)
    assert user is not None
    if number_taken(s, settings, ch.user_id, e164):
        return Begun(problem=NUMBER_REFUSED)
    closed, sid = challenges.close(s, ch.id_hash)
    if not closed:
        return Begun(problem="changed")  # a concurrent submission got there first
    step = challenges.open_challenge(s, settings, user, ch.purpose, e164, session_hash=ch.auth_session_hash)
    return Begun(step, [sid] if sid else [])


async def regenerate(deps: Deps, client: Client, auth: sessions.Auth) -> tuple[list[str], sessions.NewSession] | None:
    batch = await recovery.make_batch(deps.settings.secret_key, deps.settings.recovery_code_count,
                                      deps.settings.bcrypt_rounds)
    new = await deps.db.write(_store_codes, client, auth, batch)
    return (batch.codes, new) if new else None


def _store_codes(s: Session, client: Client, auth: sessions.Auth, batch: recovery.Batch) -> sessions.NewSession | None:
    user = sessions.lock_user(s, auth.user.id)
    if user is None or not user.mfa_enabled or user.session_epoch != auth.user.session_epoch:
        return None
    recovery.replace_all(s, user.id, batch)
    audit.record(s, client, "recovery_codes_regenerated", "success", user_id=user.id)
    new = reissue(s, client, user, auth.session, mfa_passed=auth.session.mfa_passed)
    s.add(SecurityNotice(user_id=user.id, kind="codes_regenerated", created_at=utcnow()))  # see completion
    notices.notify(s, user, "codes_regenerated")
    return new
