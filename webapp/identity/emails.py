"""The account's address: verify it, send the link again, change it (confirmed from the new address).

A change needs the password, plus the second factor when it is on (the step-up runs in the code-step engine as
purpose `change_email`). Until the new address confirms, the old one stays in force and receives a notice with
"This wasn't me", whose use kills the pending change along with every session.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from webapp.db import utcnow
from webapp.deps import Deps
from webapp.mail import links, tokens
from webapp.mail.addresses import change_requested, masked
from webapp.mail.notices import notify
from webapp.mail.outbox import enqueue
from webapp.models import MfaChallenge, User
from webapp.security import audit, sessions, throttle
from webapp.security.clients import Client
from webapp.settings import Settings
from webapp.twofactor import challenges
from webapp.twofactor.challenges import CHANGE_EMAIL


@dataclass(frozen=True)
class Confirmed:
    ok: bool
    session: sessions.NewSession | None = None  # the confirming browser's new session, when it is the owner's


def send_verification(s: Session, user: User) -> None:
    """A verification link to the account's current address (at registration, and on "Send the link again")."""
    token = tokens.issue(s, user, tokens.VERIFY, user.email)
    enqueue(s, to=user.email, template="verify_email", user_id=user.id,
            context={"username": user.display_name, "verify_path": links.VERIFY + token})


async def resend_verification(deps: Deps, client: Client, auth: sessions.Auth) -> int:
    """0 when a link was sent (or none is needed); else the seconds to wait (per-user hourly limit)."""
    return await deps.db.write(_resend, deps.settings, client, auth.user.id)


def _resend(s: Session, settings: Settings, client: Client, user_id: int) -> int:
    user = sessions.lock_user(s, user_id)
    if user is None or user.email_verified_at is not None:
        return 0
    key = throttle.throttle_key(settings.secret_key, "email-link", str(user.id))
    verdict = throttle.hit(s, key, settings.email_links_per_user_per_hour, 3600)
    if not verdict.allowed:
        audit.record(s, client, "excess_rate_limit_exceeded", "failure", user_id=user.id, limit="email-link")
        return verdict.retry_after
    send_verification(s, user)
    return 0


async def verify_address(deps: Deps, client: Client, token: str) -> bool:
    return await deps.db.write(_verify, client, token)


def _verify(s: Session, client: Client, token: str) -> bool:
    found = tokens.find(s, token, tokens.VERIFY)
    user = sessions.lock_user(s, found.user.id) if found else None
    # The link proves the address it was sent to; after a change of address it proves nothing about the new one.
    if found is None or user is None or found.token.email != user.email or not tokens.use(s, found.token.id_hash, user):
        return False
    user.email_verified_at = utcnow()
    tokens.retire(s, user.id, {tokens.VERIFY})
    audit.record(s, client, "email_verified", "success", user_id=user.id)
    return True


async def request_change(deps: Deps, client: Client, auth: sessions.Auth, new_email: str) -> bool:
    """Two-step verification off: the password was enough. False when the account changed meanwhile."""
    return await deps.db.write(_request_change, client, auth, new_email)


def _request_change(s: Session, client: Client, auth: sessions.Auth, new_email: str) -> bool:
    user = sessions.lock_user(s, auth.user.id)
    if user is None or user.session_epoch != auth.user.session_epoch or user.mfa_enabled:
        return False
    change_requested(s, client, user, new_email)
    return True


def open_change_step(s: Session, settings: Settings, auth: sessions.Auth, new_email: str, token: str | None
               ) -> tuple[challenges.Opened | None, list[str]]:
    """Two-step verification on: a code step bound to this session, holding the address it will confirm."""
    user = sessions.lock_user(s, auth.user.id)
    stale = challenges.discard_token(s, token)
    if user is None or user.session_epoch != auth.user.session_epoch or not user.mfa_enabled:
        return None, stale
    step = challenges.open_challenge(s, settings, user, CHANGE_EMAIL, user.phone_e164 or "",
                                     session_hash=auth.session.id_hash)
    row = s.get(MfaChallenge, step.id_hash)
    assert row is not None  # flushed by open_challenge in this unit of work
    row.pending_email = new_email  # the step's completion asks the new address to confirm (mail/addresses)
    return step, stale


async def confirm_change(deps: Deps, client: Client, token: str, acting: sessions.Auth | None) -> Confirmed:
    return await deps.db.write(_confirm, client, token, acting)


def _confirm(s: Session, client: Client, token: str, acting: sessions.Auth | None) -> Confirmed:
    found = tokens.find(s, token, tokens.CHANGE)
    user = sessions.lock_user(s, found.user.id) if found else None
    if found is None or user is None or not tokens.use(s, found.token.id_hash, user):
        return Confirmed(False)
    old = user.email
    user.email, user.email_verified_at = found.token.email, utcnow()
    # The recovery address changed: like any credential change, every other session ends and every mailed link
    # that would go on working for the old address (a reset link) dies with the epoch.
    sessions.end_all(s, user)
    tokens.retire(s, user.id, {tokens.RESET, tokens.VERIFY})
    audit.record(s, client, "email_changed", "success", user_id=user.id)
    notify(s, user, "email_changed", to=old, new_address=masked(user.email))
    if acting is not None and acting.user.id == user.id:
        return Confirmed(True, sessions.start(s, user, client, remember=acting.session.remember,
                                              mfa_passed=acting.session.mfa_passed))
    return Confirmed(True)
