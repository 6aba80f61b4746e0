"""Adding, renaming and removing methods; each runs inside a unit of work that locked the user's row first.

The first method added turns two-step verification on and issues recovery codes; removing one that is not the last
ends the other sessions and forgets remembered browsers. Removing the last one is the "turn off" flow (password and
a code), never done here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import delete, update
from sqlalchemy.orm import Session

from webapp.db import utcnow
from webapp.models import Authenticator, AuthenticatorEvent, AuthSession, SecurityNotice, User
from webapp.security import audit, sessions
from webapp.security.clients import Client
from webapp.twofactor import browsers, methods, recovery
from webapp.twofactor.methods import SMS, TOTP, WEBAUTHN, clean_label


@dataclass(frozen=True)
class Added:
    session: sessions.NewSession
    notice: str
    codes: list[str] = field(default_factory=list)


def _finish(s: Session, client: Client, user: User, acting: AuthSession, kind: str,
            batch: recovery.Batch | None) -> Added:
    first = not user.mfa_enabled
    codes: list[str] = []
    if first:
        user.mfa_enabled = True
        if batch is not None:
            recovery.replace_all(s, user.id, batch)
            codes = batch.codes
    audit.record(s, client, "mfa_enabled" if first else "mfa_method_added", "success", user_id=user.id, method=kind)
    sessions.end_all(s, user)  # a credential change: other sessions and open steps end (R-S8)
    new = sessions.start(s, user, client, remember=acting.remember, mfa_passed=True)
    # Stamped after the new session: the banner is for the next sign-in, not for whoever did it (R-O13).
    notice = "mfa_enabled" if first else "method_added"
    s.add(SecurityNotice(user_id=user.id, kind=f"{notice}:{kind}", created_at=utcnow()))
    return Added(new, "twofa-on" if first else "method-added", codes)


def add_totp(s: Session, client: Client, user: User, acting: AuthSession, sealed: str, step: int | None, label: str,
             batch: recovery.Batch | None) -> Added:
    """The app confirmed by its first code: that code's step is recorded, so it can't be replayed at sign-in."""
    s.add(Authenticator(user_id=user.id, kind=TOTP, label=clean_label(label, TOTP), secret_enc=sealed,
                        totp_last_step=step, sign_count=0, transports="", created_at=utcnow()))
    return _finish(s, client, user, acting, TOTP, batch)


def add_phone(s: Session, client: Client, user: User, acting: AuthSession, phone: str, label: str) -> Added:
    now = utcnow()
    user.phone_e164, user.phone_verified_at = phone, now
    methods.set_phone(s, user.id, phone)
    if label:
        s.execute(update(Authenticator).where(Authenticator.user_id == user.id, Authenticator.kind == SMS)
                  .values(label=clean_label(label, SMS)))
    s.add(AuthenticatorEvent(user_id=user.id, kind=SMS, last2=phone[-2:], bound_at=now))
    return _finish(s, client, user, acting, SMS, None)


def add_passkey(s: Session, client: Client, user: User, acting: AuthSession, row: Authenticator,
                batch: recovery.Batch | None) -> Added:
    s.add(row)
    return _finish(s, client, user, acting, WEBAUTHN, batch)


def rename(s: Session, client: Client, user_id: int, method_id: int, label: str) -> bool:
    sessions.lock_user(s, user_id)
    row = methods.owned(s, user_id, method_id)
    if row is None:
        return False
    row.label = clean_label(label, row.kind)
    audit.record(s, client, "mfa_method_renamed", "success", user_id=user_id, method=row.kind)
    return True


def remove(s: Session, client: Client, auth: sessions.Auth, method_id: int) -> sessions.NewSession | str:
    """Remove one method that is not the last: the acting browser's new session, or why not ("gone", "last")."""
    user = sessions.lock_user(s, auth.user.id)
    if user is None or user.session_epoch != auth.user.session_epoch:
        return "gone"
    row = methods.owned(s, user.id, method_id)
    if row is None:
        return "gone"
    if methods.count(s, user.id) <= 1:
        return "last"
    s.execute(delete(Authenticator).where(Authenticator.id == row.id))
    if row.kind == SMS:  # the number goes; its binding history stays (R-PR4)
        s.execute(update(AuthenticatorEvent).where(AuthenticatorEvent.user_id == user.id,
                                                   AuthenticatorEvent.unbound_at.is_(None)).values(unbound_at=utcnow()))
        user.phone_e164, user.phone_verified_at = None, None
    browsers.forget_all(s, user.id)
    audit.record(s, client, "mfa_method_removed", "success", user_id=user.id, method=row.kind)
    sessions.end_all(s, user)
    new = sessions.start(s, user, client, remember=auth.session.remember, mfa_passed=auth.session.mfa_passed)
    s.add(SecurityNotice(user_id=user.id, kind=f"method_removed:{row.kind}", created_at=utcnow()))
    return new
