"""Accounts: create one, the sign-in password step, and a password change. No HTTP here.

Each operation reads what it needs, runs bcrypt outside any transaction, then decides in one locked unit of
work that re-reads the user: nothing read before the hash is ever written back (no stale object merged).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from webapp import metrics
from webapp.db import utcnow
from webapp.deps import Deps
from webapp.identity.emails import send_verification
from webapp.identity.passwords import check_password, hash_password
from webapp.mail import notices
from webapp.models import SecurityNotice, Throttle, User
from webapp.security import audit, sessions, throttle
from webapp.security.clients import Client
from webapp.security.sessions import NewSession
from webapp.settings import Settings
from webapp.twofactor import browsers, challenges, methods
from webapp.twofactor.challenges import LOGIN, Opened
from webapp.twofactor.checking import lock_left


@dataclass(frozen=True)
class PasswordStep:
    """The password step's result: refused (with a wait), wrong, a session, or a second step to take."""

    ok: bool
    retry_after: int = 0
    mfa_wait: int = 0
    session: NewSession | None = None
    challenge: Opened | None = None
    stale_sids: tuple[str, ...] = ()
    refused_by: str = ""  # the limit that refused the attempt before any password check
    locked_now: bool = False  # this failure locked the account
    method: str = "sms"  # how the second step starts: the user's default method


@dataclass(frozen=True)
class _Snapshot:
    id: int
    password_hash: str
    epoch: int


def login_key(settings: Settings, username: str) -> str:
    return throttle.throttle_key(settings.secret_key, "login-user", username)


def username_taken(s: Session, username: str) -> bool:
    return s.execute(select(User.id).where(User.username == username)).first() is not None


async def create_user(deps: Deps, client: Client, username: str, display: str, email: str, password: str) -> bool:
    """False when the username was taken meanwhile."""
    password_hash = await hash_password(deps.settings, password)
    try:
        await deps.db.write(_insert_user, client, username, display, email, password_hash, deps.settings.pepper_id)
    except IntegrityError:
        return False
    return True


def _insert_user(s: Session, client: Client, username: str, display: str, email: str, password_hash: str,
                 pepper_id: int) -> None:
    user = User(username=username, display_name=display[:32], email=email, password_hash=password_hash,
                pepper_id=pepper_id)
    s.add(user)
    s.flush()
    audit.record(s, client, "user_created", "success", user_id=user.id)
    send_verification(s, user)  # committed with the account, sent after


async def password_step(deps: Deps, client: Client, username: str, password: str, *, remember: bool,
                        next_path: str, challenge_token: str | None, device_token: str | None = None
                        ) -> PasswordStep:
    """device_token: this browser's "don't ask again" cookie, which skips the second step for its own user only."""
    settings = deps.settings
    key = login_key(settings, username)
    gate = await deps.db.write(_admit, settings, client, key, username)
    if isinstance(gate, PasswordStep):
        metrics.refused(gate.refused_by)
        return gate
    # Equal bcrypt work whether or not the account exists (R-L4).
    right = await check_password(settings, password, gate.password_hash if gate.id else deps.dummy_hash)
    step = await deps.db.write(_decide, settings, client, key, gate, right and gate.id > 0, remember=remember,
                               next_path=next_path, challenge_token=challenge_token, device_token=device_token)
    if step.locked_now:
        metrics.locked_out("login")
    return step


def _admit(s: Session, settings: Settings, client: Client, key: str, username: str) -> PasswordStep | _Snapshot:
    """Per-IP limit and the account's attempt counter, taken before bcrypt (R-L1, R-L2)."""
    subject = key.split(":", 1)[1][:16]
    ip = throttle.hit(s, throttle.throttle_key(settings.secret_key, "login-ip", client.ip),
                      settings.ip_requests_per_minute, 60)
    if not ip.allowed:
        audit.record(s, client, "excess_rate_limit_exceeded", "failure", subject_hash=subject, reason="ip-limit")
        return PasswordStep(False, retry_after=ip.retry_after, refused_by="login-ip")
    attempt = throttle.reserve_attempt(s, key, settings.login_max_failures, settings.login_lock_s)
    if not attempt.allowed:
        audit.record(s, client, "authn_login_fail", "failure", subject_hash=subject, reason="locked")
        return PasswordStep(False, retry_after=attempt.retry_after, refused_by="login-locked")
    user = s.execute(select(User.id, User.password_hash, User.session_epoch).where(User.username == username)).first()
    return _Snapshot(user.id, user.password_hash, user.session_epoch) if user else _Snapshot(0, "", 0)


def _decide(s: Session, settings: Settings, client: Client, key: str, seen: _Snapshot, right: bool, *,
            remember: bool, next_path: str, challenge_token: str | None, device_token: str | None) -> PasswordStep:
    subject = key.split(":", 1)[1][:16]
    user = sessions.lock_user(s, seen.id) if seen.id else None
    # A password checked against a hash or epoch that changed meanwhile proves nothing about the account now.
    # A disabled account fails exactly like a wrong password, counted and all, so nobody learns it exists.
    disabled = user is not None and user.disabled_at is not None
    if (not right or user is None or disabled or user.password_hash != seen.password_hash
            or user.session_epoch != seen.epoch):
        extra = {"reason": "disabled"} if disabled and right else {}
        audit.record(s, client, "authn_login_fail", "failure", user_id=seen.id or None, subject_hash=subject,
                     factor="password", **extra)
        locked = throttle.settle_failure(s, key, settings.login_max_failures, settings.login_lock_s)
        if locked:
            audit.record(s, client, "authn_login_lock", "failure", user_id=seen.id or None, subject_hash=subject)
        return PasswordStep(False, locked_now=locked)
    earlier = s.execute(select(Throttle.count).where(Throttle.key == key)).scalar_one() > 1
    throttle.reset(s, key)
    event = "authn_login_successafterfail" if earlier else "authn_login_success"
    if not user.mfa_enabled:
        new = sessions.start(s, user, client, remember=remember, mfa_passed=False)
        audit.record(s, client, event, "success", user_id=user.id, factor="password")
        return PasswordStep(True, session=new)
    if wait := lock_left(user):
        return PasswordStep(False, mfa_wait=wait)  # locked second step: no code is sent (R-O6)
    if browsers.recognise(s, user.id, device_token):  # "don't ask again on this browser", for this user only
        new = sessions.start(s, user, client, remember=remember, mfa_passed=True)
        audit.record(s, client, event, "success", user_id=user.id, factor="password", remembered_browser=True)
        return PasswordStep(True, session=new)
    audit.record(s, client, event, "success", user_id=user.id, factor="password",
                 outcome_detail="second_step_required")
    stale = challenges.discard_token(s, challenge_token)
    method = methods.default_kind(methods.rows_of(s, user.id), phone=user.phone_e164)
    opened = challenges.open_challenge(s, settings, user, LOGIN, user.phone_e164 or "", next_path=next_path,
                                       remember=remember, method=method)
    # Unless this code step completes, the owner is mailed (batched, at most hourly) once it has expired.
    notices.second_step_opened(s, user, opened.id_hash, utcnow() + timedelta(seconds=settings.mfa_challenge_ttl_s))
    if challenge_token:  # this browser's earlier attempt is replaced by this one: one person, nothing to report
        notices.second_step_done(s, user.id, challenges.hash_id(challenge_token))
    return PasswordStep(True, challenge=opened, stale_sids=tuple(stale), method=method)


async def confirm_password(deps: Deps, client: Client, user: User, password: str, *, event: str) -> str | None:
    """A step-up: the password again, counted like a sign-in (R-L1). None when right, else what to say."""
    settings = deps.settings
    key = login_key(settings, user.username)
    attempt = await deps.db.write(throttle.reserve_attempt, key, settings.login_max_failures, settings.login_lock_s)
    if not attempt.allowed:
        metrics.refused("login-locked")
        return "Too many wrong passwords. Try again later."
    if not await check_password(settings, password, user.password_hash):
        if await deps.db.write(_step_up_failed, settings, client, key, user.id, event):
            metrics.locked_out("login")
        return "wrong"
    await deps.db.write(throttle.reset, key)
    return None


async def change_password(deps: Deps, client: Client, auth: sessions.Auth, new_password: str) -> str | NewSession:
    """Store the new password (after `confirm_password`): a message, or the acting browser's new session (R-P9)."""
    new_hash = await hash_password(deps.settings, new_password)
    return await deps.db.write(_store_password, deps.settings, client, auth, new_hash)


def _step_up_failed(s: Session, settings: Settings, client: Client, key: str, user_id: int, event: str) -> bool:
    """True when this failure locked the account."""
    locked = throttle.settle_failure(s, key, settings.login_max_failures, settings.login_lock_s)
    if event == "authn_password_change":
        audit.record(s, client, event, "failure", user_id=user_id)
    else:
        audit.record(s, client, "authn_login_fail", "failure", user_id=user_id, factor="password", purpose="step_up")
    return locked


def _store_password(s: Session, settings: Settings, client: Client, auth: sessions.Auth,
                    new_hash: str) -> str | NewSession:
    user = sessions.lock_user(s, auth.user.id)
    if user is None or user.password_hash != auth.user.password_hash or user.session_epoch != auth.user.session_epoch:
        return "Your account changed while you were doing this. Please sign in again and retry."
    user.password_hash, user.pepper_id = new_hash, settings.pepper_id
    s.add(SecurityNotice(user_id=user.id, kind="password_changed"))
    notices.notify(s, user, "password_changed")
    audit.record(s, client, "authn_password_change", "success", user_id=user.id)
    sessions.end_all(s, user)  # two-step verification stays as it was
    browsers.forget_all(s, user.id)  # but every remembered browser asks for it again
    return sessions.start(s, user, client, remember=auth.session.remember, mfa_passed=auth.session.mfa_passed)
