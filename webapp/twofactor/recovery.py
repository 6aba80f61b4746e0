"""Recovery codes (R-RC1…R-RC6): 80 random bits each, shown once, stored as separate bcrypt hashes."""

from __future__ import annotations

import secrets

import bcrypt
from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from webapp.accounts.passwords import run_bcrypt
from webapp.db import utcnow
from webapp.models import RecoveryCode

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford base32: no I, L, O, U
RECOVERY_ROUNDS = 10


def new_code() -> str:
    raw = "".join(secrets.choice(ALPHABET) for _ in range(16))
    return "-".join(raw[i : i + 4] for i in range(0, 16, 4))


def normalise(code: str) -> str:
    cleaned = code.upper().replace("-", "").replace(" ", "")
    return cleaned.translate(str.maketrans("ILO", "110"))


def _hash_all(codes: list[str], rounds: int) -> list[str]:
    return [bcrypt.hashpw(normalise(c).encode(), bcrypt.gensalt(rounds)).decode() for c in codes]


async def issue(s: AsyncSession, user_id: int, count: int, rounds: int = RECOVERY_ROUNDS) -> list[str]:
    """Replace the user's codes with a fresh set; the old set stops working in the same transaction."""
    codes = [new_code() for _ in range(count)]
    # Cost 10 (R-RC2) is enough for 80 random bits; 12 would make enabling take ~2.5 s for ten codes.
    hashes = await run_bcrypt(_hash_all, codes, min(rounds, RECOVERY_ROUNDS))
    batch = secrets.token_hex(8)
    await s.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user_id))
    s.add_all(RecoveryCode(user_id=user_id, batch_id=batch, code_hash=h) for h in hashes)
    return codes


def _find(candidates: list[tuple[int, str]], code: str) -> int | None:
    given = normalise(code).encode()
    if len(given) != 16:
        return None
    for row_id, hashed in candidates:
        if bcrypt.checkpw(given, hashed.encode()):
            return row_id
    return None


async def use(s: AsyncSession, user_id: int, code: str) -> bool:
    """Mark the matching unused code used (single use, R-RC3); False when none matches."""
    rows = (await s.execute(
        select(RecoveryCode.id, RecoveryCode.code_hash).where(RecoveryCode.user_id == user_id,
                                                              RecoveryCode.used_at.is_(None))
    )).all()
    found = await run_bcrypt(_find, [(r.id, r.code_hash) for r in rows], code)
    if found is None:
        return False
    result = await s.execute(
        update(RecoveryCode).where(RecoveryCode.id == found, RecoveryCode.used_at.is_(None)).values(used_at=utcnow())
    )
    return bool(getattr(result, "rowcount", 0) == 1)


async def remaining(s: AsyncSession, user_id: int) -> int:
    rows = (await s.execute(
        select(RecoveryCode.id).where(RecoveryCode.user_id == user_id, RecoveryCode.used_at.is_(None))
    )).all()
    return len(rows)
