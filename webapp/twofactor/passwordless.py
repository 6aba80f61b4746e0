"""Passwordless sign-in with a discoverable passkey and user verification: it proves both factors at once.

No user is known when the ceremony starts, so its challenge lives in passkey_ceremonies (single use, five
minutes); the answer names its credential, which names the user.
"""

from __future__ import annotations

import hmac
import json
import secrets
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session
from webauthn.helpers import bytes_to_base64url

from webapp.db import utcnow
from webapp.deps import Deps
from webapp.models import Authenticator, PasskeyCeremony
from webapp.security import audit, sessions, throttle
from webapp.security.clients import Client
from webapp.settings import Settings
from webapp.twofactor import passkeys
from webapp.twofactor.answers import Candidate, Proof
from webapp.twofactor.challenges import hash_id
from webapp.twofactor.methods import WEBAUTHN

CEREMONY_TTL_S = 300


@dataclass(frozen=True)
class Begun:
    token: str = ""
    challenge: str = ""
    retry_after: int = 0


def begin(s: Session, settings: Settings, client: Client) -> Begun:
    """A new ceremony, counted against the address like a sign-in attempt (R-L2)."""
    verdict = throttle.hit(s, throttle.throttle_key(settings.secret_key, "passkey-ip", client.ip),
                           settings.ip_requests_per_minute, 60)
    if not verdict.allowed:
        return Begun(retry_after=verdict.retry_after)
    token, challenge, now = secrets.token_urlsafe(32), passkeys.new_challenge(), utcnow()
    s.add(PasskeyCeremony(id_hash=hash_id(token), challenge=challenge, created_at=now,
                          expires_at=now + timedelta(seconds=CEREMONY_TTL_S)))
    return Begun(token, challenge)


def _take(s: Session, token: str) -> str | None:
    now = utcnow()
    return s.execute(update(PasskeyCeremony).where(
        PasskeyCeremony.id_hash == hash_id(token), PasskeyCeremony.consumed_at.is_(None),
        PasskeyCeremony.expires_at > now).values(consumed_at=now).returning(PasskeyCeremony.challenge)
    ).scalar_one_or_none()


def _named(s: Session, credential_id: str) -> tuple[int, Candidate] | None:
    row = s.execute(select(Authenticator).where(Authenticator.credential_id == credential_id,
                                                Authenticator.kind == WEBAUTHN)).scalar_one_or_none()
    if row is None:
        return None
    return row.user_id, Candidate(row.id, row.public_key or "", row.sign_count, row.credential_id or "")


def _handle_matches(settings: Settings, raw: str, user_id: int) -> bool:
    """The user handle the authenticator returned must be the one we registered for that user."""
    try:
        given = json.loads(raw).get("response", {}).get("userHandle") or ""
    except (ValueError, AttributeError):
        return False
    return hmac.compare_digest(str(given), bytes_to_base64url(passkeys.user_handle(settings, user_id)))


async def sign_in(deps: Deps, client: Client, token: str, raw: str) -> sessions.NewSession | None:
    expected = await deps.db.write(_take, token) if token else None
    credential_id = passkeys.credential_id_of(raw)
    named = await deps.db.read(_named, credential_id) if expected and credential_id else None
    if named is None or not _handle_matches(deps.settings, raw, named[0]):
        await deps.db.write(_failed, client, named[0] if named else None, None)
        return None
    user_id, candidate = named
    proof = passkeys.prove(deps.settings, raw, [candidate], expected)
    return await deps.db.write(_decide, client, user_id, proof)


def _failed(s: Session, client: Client, user_id: int | None, proof: Proof | None) -> None:
    audit.record(s, client, "authn_login_fail", "failure", user_id=user_id, factor=WEBAUTHN, passwordless=True)
    if user_id is not None and proof is not None and proof.problem:
        passkeys.flag(s, client, user_id, proof)


def _decide(s: Session, client: Client, user_id: int, proof: Proof | None) -> sessions.NewSession | None:
    user = sessions.lock_user(s, user_id)
    if user is None or proof is None or proof.problem or not passkeys.claim(s, user_id, proof):
        _failed(s, client, user_id, proof)
        return None
    new = sessions.start(s, user, client, remember=False, mfa_passed=True)
    audit.record(s, client, "authn_login_success", "success", user_id=user.id, factor=WEBAUTHN, passwordless=True)
    return new
