"""What a passed code step does, chosen by the challenge's purpose; runs inside the unit of work that consumed it."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from webapp.db import utcnow
from webapp.mail import notices
from webapp.mail.addresses import change_requested
from webapp.models import AuthenticatorEvent, AuthSession, MfaChallenge, RecoveryCode, SecurityNotice, Throttle, User
from webapp.security import audit, sessions, throttle
from webapp.security.clients import Client
from webapp.settings import Settings
from webapp.twofactor import adding, browsers, methods, recovery
from webapp.twofactor.answers import Proof
from webapp.twofactor.challenges import (
    ADD_TOTP,
    CHANGE_EMAIL,
    CHANGE_NEW,
    CHANGE_OLD,
    DISABLE,
    ENROLL,
    LOGIN,
    NEW_NUMBER,
    Opened,
    open_challenge,
)
from webapp.twofactor.phones import last2

NUMBER_REFUSED = "We can't use this number. Please use another one."  # never says who else has it (R-V3)
EVENTS = {ENROLL: ("mfa_enabled", "twofa-on", "mfa_enabled"), CHANGE_NEW: ("mfa_phone_changed", "phone-changed",
          "phone_changed"), DISABLE: ("mfa_disabled", "twofa-off", "mfa_disabled")}


@dataclass(frozen=True)
class Completion:
    purpose: str
    session: sessions.NewSession | None = None  # the actor's new session, for the cookie
    next_path: str = "/profile"
    notice: str = ""
    codes: list[str] = field(default_factory=list)  # recovery codes, shown once
    next_step: Opened | None = None  # changing the phone: the step for the new number
    problem: str = ""  # the step passed but its effect was refused
    device_token: str = ""  # "Don't ask again on this browser": the new device cookie's value


def number_taken(s: Session, settings: Settings, user_id: int, phone: str) -> bool:
    """At most N accounts per number, decided under a lock on the number so two bindings can't both pass."""
    key = throttle.throttle_key(settings.secret_key, "phone-bind", phone)
    throttle.ensure(s, key, utcnow())
    if s.get_bind().dialect.name == "postgresql":
        s.execute(select(Throttle.key).where(Throttle.key == key).with_for_update())
    sharing = s.execute(select(func.count()).select_from(User).where(
        User.phone_e164 == phone, User.mfa_enabled.is_(True), User.id != user_id)).scalar_one()
    return bool(sharing >= settings.max_accounts_per_phone)


def complete(s: Session, settings: Settings, client: Client, ch: MfaChallenge, user: User, *, factor: str,
             acting: AuthSession | None, batch: recovery.Batch | None, proof: Proof | None = None, label: str = "",
             remember_browser: bool = False) -> Completion:
    """`user` is locked and `ch` already consumed by the caller."""
    if ch.purpose == LOGIN:
        return _signed_in(s, client, ch, user, factor, remember_browser)
    assert acting is not None
    if ch.purpose == ADD_TOTP:
        # The confirming code's step is recorded, so that code can't be replayed at sign-in.
        added = adding.add_totp(s, client, user, acting, ch.payload or "", proof.step if proof else None, label,
                                batch)
        return Completion(ch.purpose, session=added.session, notice=added.notice, codes=added.codes)
    if ch.purpose == ENROLL and user.mfa_enabled:  # a phone added beside other methods
        added = adding.add_phone(s, client, user, acting, ch.phone_e164, label)
        return Completion(ch.purpose, session=added.session, notice=added.notice)
    if ch.purpose == CHANGE_OLD:
        step = open_challenge(s, settings, user, CHANGE_NEW, "", session_hash=acting.id_hash)
        return Completion(ch.purpose, next_step=step)
    if ch.purpose == CHANGE_EMAIL:  # nothing changes yet: the new address must confirm (identity/emails)
        change_requested(s, client, user, ch.pending_email or "")
        return Completion(ch.purpose, notice="email-change-sent")
    now = utcnow()
    if ch.purpose in NEW_NUMBER:
        _unbind(s, user.id)
        s.add(AuthenticatorEvent(user_id=user.id, kind="sms", last2=last2(ch.phone_e164), bound_at=now))
        user.phone_e164, user.phone_verified_at = ch.phone_e164, now  # only now, after approval (R-O2)
        methods.set_phone(s, user.id, ch.phone_e164)
    codes: list[str] = []
    if ch.purpose == ENROLL:
        assert batch is not None
        user.mfa_enabled = True
        recovery.replace_all(s, user.id, batch)
        codes = batch.codes
    elif ch.purpose == DISABLE:
        clear_two_step(s, user)
    event, notice, kind = EVENTS[ch.purpose]
    # Confirmed by a code (or a recovery code): say which, and the channel, like every MFA event (R-A2).
    audit.record(s, client, event, "success", user_id=user.id, factor=factor, channel=ch.channel, method=ch.method)
    new = reissue(s, client, user, acting)
    # Stamped after the new session: the banner is for the next sign-in, not for whoever did it (R-O13).
    s.add(SecurityNotice(user_id=user.id, kind=kind, created_at=utcnow()))
    notices.notify(s, user, kind)  # the mail goes at once, to whoever owns the address
    return Completion(ch.purpose, session=new, notice=notice, codes=codes)


def reissue(s: Session, client: Client, user: User, acting: AuthSession, *, mfa_passed: bool = True
            ) -> sessions.NewSession:
    """End every session and open challenge (R-S8), then give the acting browser a fresh session."""
    sessions.end_all(s, user)
    return sessions.start(s, user, client, remember=acting.remember, mfa_passed=mfa_passed)


def clear_two_step(s: Session, user: User) -> int:
    """Two-step verification off: every method and remembered browser gone, the number cleared with only the binding
    history kept (R-PR4), recovery codes gone.

    `user` is locked by the caller. Returns how many recovery codes were removed.
    """
    _unbind(s, user.id)
    removed = s.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id)).rowcount  # type: ignore[attr-defined]
    methods.delete_all(s, user.id)
    browsers.forget_all(s, user.id)
    user.mfa_enabled, user.phone_e164, user.phone_verified_at = False, None, None
    return int(removed)


def _unbind(s: Session, user_id: int) -> None:
    s.execute(update(AuthenticatorEvent).where(AuthenticatorEvent.user_id == user_id,
                                               AuthenticatorEvent.unbound_at.is_(None)).values(unbound_at=utcnow()))


def _signed_in(s: Session, client: Client, ch: MfaChallenge, user: User, factor: str,
               remember_browser: bool) -> Completion:
    new = sessions.start(s, user, client, remember=ch.remember, mfa_passed=True)
    _note_abandoned(s, ch)
    notices.second_step_done(s, user.id, ch.id_hash)
    # The method and the channel the code went by, like every other MFA event (R-A2).
    audit.record(s, client, "authn_login_success", "success", user_id=user.id, factor=factor, channel=ch.channel,
                 method=ch.method, remembered=remember_browser)
    if factor == "recovery":
        s.add(SecurityNotice(user_id=user.id, kind="recovery_used", created_at=utcnow()))  # after the session
    device = browsers.remember(s, client, user.id) if remember_browser else ""
    return Completion(LOGIN, session=new, next_path=ch.next_path, device_token=device)


def note_failed_step(s: Session, user_id: int) -> None:
    """A sign-in's second step failed for good: a banner for the owner's next visit (R-L6), and the mail is due."""
    sessions.lock_user(s, user_id)  # the user's row first, like every unit of work that writes about the user
    s.add(SecurityNotice(user_id=user_id, kind="second_step_failed"))
    notices.second_step_failed(s, user_id)


def _note_abandoned(s: Session, done: MfaChallenge) -> None:
    """Password right but the second step never finished earlier: tell the user at this sign-in (R-L6)."""
    # Only attempts since the last completed sign-in: older ones were reported then. Attempts started while this
    # one was pending count too, since closing them below would otherwise hide them for good.
    mine = (MfaChallenge.user_id == done.user_id, MfaChallenge.purpose == LOGIN, MfaChallenge.id_hash != done.id_hash)
    last_ok = s.execute(select(func.max(MfaChallenge.consumed_at)).where(*mine)).scalar_one_or_none()
    query = select(MfaChallenge.created_at).where(*mine, MfaChallenge.consumed_at.is_(None))
    if last_ok is not None:
        query = query.where(MfaChallenge.created_at > last_ok)
    earlier = s.execute(query.order_by(MfaChallenge.created_at).limit(1)).scalar_one_or_none()
    notified = s.execute(select(SecurityNotice.id).where(
        SecurityNotice.user_id == done.user_id, SecurityNotice.kind == "second_step_failed",
        SecurityNotice.seen_at.is_(None))).first()
    if earlier and not notified:
        # Stamped with when the password was entered: the banner's time is the attempt's, not this sign-in's.
        s.add(SecurityNotice(user_id=done.user_id, kind="second_step_failed", created_at=earlier))
    # Reported once: those earlier attempts are closed so the next sign-in doesn't repeat the banner.
    s.execute(update(MfaChallenge).where(*mine, MfaChallenge.consumed_at.is_(None),
                                         MfaChallenge.invalidated_at.is_(None)).values(invalidated_at=utcnow()))
