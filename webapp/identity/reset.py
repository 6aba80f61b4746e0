"""Password reset by mail. It changes the password and ends everything; it never signs anyone in.

So a reset can't get past the second factor: with two-step verification on, the new password leads to the code
step like any other sign-in (Flask-Security-Too #258's trap).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from webapp.db import utcnow
from webapp.deps import Deps
from webapp.identity.passwords import hash_password
from webapp.identity.users import login_key
from webapp.mail import links, tokens
from webapp.mail.notices import notify
from webapp.mail.outbox import enqueue
from webapp.models import SecurityNotice, User
from webapp.security import audit, sessions, throttle
from webapp.security.clients import Client
from webapp.settings import Settings
from webapp.twofactor import browsers

# A shared address gets one mail per account, up to this many (accounts don't need distinct addresses).
MAX_ACCOUNTS_PER_ADDRESS = 5


@dataclass(frozen=True)
class Requested:
    """Whether the request was taken; never whether an account has that address."""

    allowed: bool
    retry_after: int = 0


def folded(email: str) -> str:
    return email.strip().lower()


async def request_reset(deps: Deps, client: Client, email: str) -> Requested:
    """One unit of work whether or not an account exists, and no bcrypt: known and unknown cost the same."""
    return await deps.db.write(_request, deps.settings, client, email)


def _request(s: Session, settings: Settings, client: Client, email: str) -> Requested:
    address = folded(email)
    subject = throttle.throttle_key(settings.secret_key, "reset-address", address)
    ids = s.execute(select(User.id).where(func.lower(User.email) == address).order_by(User.id)
                    .limit(MAX_ACCOUNTS_PER_ADDRESS)).scalars().all()
    users = [u for u in (sessions.lock_user(s, i) for i in ids) if u is not None]  # user rows first, in id order
    by_ip = throttle.throttle_key(settings.secret_key, "reset-ip", client.ip)
    limits = ((by_ip, settings.reset_requests_per_ip_per_hour), (subject, settings.reset_requests_per_address_per_hour))
    for key, limit in limits:
        verdict = throttle.hit(s, key, limit, 3600)
        if not verdict.allowed:
            audit.record(s, client, "excess_rate_limit_exceeded", "failure", subject_hash=subject.split(":")[1][:16],
                         limit=key.split(":")[0])
            return Requested(False, verdict.retry_after)
    for user in users:
        # To the address the account holds, never to the one typed: a look-alike can't redirect the link.
        token = tokens.issue(s, user, tokens.RESET, user.email)
        enqueue(s, to=user.email, template="reset_password", user_id=user.id,
                context={"username": user.display_name, "reset_path": links.RESET + token, "minutes": 30})
        audit.record(s, client, "password_reset_requested", "success", user_id=user.id)
    if not users:
        audit.record(s, client, "password_reset_requested", "failure", subject_hash=subject.split(":")[1][:16],
                     reason="no-account")
    return Requested(True)


async def reset_password(deps: Deps, client: Client, found: tokens.Found, token: str, new_password: str) -> bool:
    """False when the link was used or outlived meanwhile (a concurrent reset got there first)."""
    new_hash = await hash_password(deps.settings, new_password)
    return await deps.db.write(_reset, deps.settings, client, found.user.id, token, new_hash)


def _reset(s: Session, settings: Settings, client: Client, user_id: int, token: str, new_hash: str) -> bool:
    user = sessions.lock_user(s, user_id)
    link = tokens.find(s, token, tokens.RESET)
    if user is None or link is None or not tokens.use(s, link.token.id_hash, user):
        return False
    user.password_hash, user.pepper_id = new_hash, settings.pepper_id
    sessions.end_all(s, user)  # every session and open code step; the epoch bump also kills other mailed links
    tokens.retire(s, user.id, {tokens.RESET, tokens.CHANGE})
    browsers.forget_all(s, user.id)
    # A lockout someone caused with wrong passwords must not keep the owner out of the new one.
    throttle.reset(s, login_key(settings, user.username))
    if link.token.email == user.email and user.email_verified_at is None:
        user.email_verified_at = utcnow()  # the link proved the mailbox
    audit.record(s, client, "authn_password_reset", "success", user_id=user.id)
    s.add(SecurityNotice(user_id=user.id, kind="password_reset"))
    notify(s, user, "password_reset")
    return True
