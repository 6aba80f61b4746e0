"""The method kinds of the code-step engine: what each one checks against, how, and how a pass is claimed.

The engine (checking.py) counts the attempt, then asks the kind: `candidates` (inside the reserving unit of work),
`prove` (outside any transaction: Twilio, bcrypt, HMAC or a signature check), then `claim` (inside the unit of work
that consumes the challenge: one conditional statement, so two concurrent right answers can't both pass).
"""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from webapp.db import utcnow
from webapp.deps import Deps
from webapp.models import Authenticator, MfaChallenge
from webapp.settings import Settings
from webapp.twofactor import methods, passkeys, recovery, secretbox, totp
from webapp.twofactor.answers import Candidate, Proof
from webapp.twofactor.methods import SMS, TOTP, WEBAUTHN

RECOVERY = "recovery"
ADD_TOTP = "add_totp"


def candidates(s: Session, settings: Settings, ch: MfaChallenge, factor: str, code: str | None) -> list[Candidate]:
    if factor == RECOVERY:
        return [Candidate(row, hashed) for row, hashed in recovery.candidates(s, settings.secret_key, ch.user_id,
                                                                              code or "")] if code else []
    if factor == TOTP and ch.purpose == ADD_TOTP:
        return [Candidate(0, ch.payload or "")]
    if factor in (TOTP, WEBAUTHN):
        rows = s.execute(select(Authenticator).where(Authenticator.user_id == ch.user_id,
                                                     Authenticator.kind == factor)).scalars().all()
        if factor == TOTP:
            return [Candidate(r.id, r.secret_enc or "", r.totp_last_step) for r in rows]
        return [Candidate(r.id, r.public_key or "", r.sign_count, r.credential_id or "") for r in rows]
    return []


async def prove(deps: Deps, ch: MfaChallenge, factor: str, code: str, found: list[Candidate],
                expected: str | None) -> Proof | None:
    """A Proof when the answer is right; None when wrong. Verify's own errors propagate to the engine."""
    if factor == RECOVERY:
        row = await recovery.match([(c.row_id, c.secret) for c in found], code)
        return Proof(row) if row is not None else None
    if factor == TOTP:
        return _totp(deps.settings, ch.user_id, code, found)
    if factor == WEBAUTHN:
        return passkeys.prove(deps.settings, code, found, expected)
    assert ch.verification_sid
    result = await deps.verify.check(ch.verification_sid, code)
    return Proof() if result.approved else None


def _totp(settings: Settings, owner: int, code: str, found: list[Candidate]) -> Proof | None:
    for candidate in found:
        secret = secretbox.unseal(settings, candidate.secret, owner)
        step = totp.matching_step(secret, code) if secret else None
        # A code at or before the last accepted step was already used (or is older): refused, never replayed.
        if step is not None and (candidate.last is None or step > candidate.last):
            return Proof(candidate.row_id, step)
    return None


def claim(s: Session, user_id: int, factor: str, proof: Proof) -> bool:
    """Take the pass in the consuming unit of work: False when a concurrent answer claimed it first."""
    now = utcnow()
    if factor == RECOVERY:
        return recovery.mark_used(s, proof.row_id)
    if factor == TOTP and proof.row_id:
        result = s.execute(update(Authenticator).where(
            Authenticator.id == proof.row_id, Authenticator.user_id == user_id,
            Authenticator.totp_last_step.is_(None) | (Authenticator.totp_last_step < proof.step))
            .values(totp_last_step=proof.step, last_used_at=now))
        return bool(result.rowcount == 1)  # type: ignore[attr-defined]
    if factor == WEBAUTHN:
        return passkeys.claim(s, user_id, proof)
    if factor == SMS:
        methods.used(s, user_id, SMS)
    return True
