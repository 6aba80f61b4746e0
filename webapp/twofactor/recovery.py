"""Recovery codes (R-RC1…R-RC6): 80 random bits each, shown once, stored as separate bcrypt hashes.

Each row also keeps a short keyed-hash prefix of its code. A guess computes that prefix and finds at most one
candidate, so it costs one HMAC and at most one bcrypt check instead of one per unused code.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

import bcrypt
from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import InstrumentedAttribute, Session
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.selectable import ScalarSelect

from webapp.db import utcnow
from webapp.hashing import run_bcrypt
from webapp.models import RecoveryCode

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford base32: no I, L, O, U
RECOVERY_ROUNDS = 10
LOOKUP_CHARS = 16


@dataclass(frozen=True)
class Batch:
    """Fresh codes to show once, and what to store for them."""

    codes: list[str]
    rows: list[tuple[str, str]]  # (bcrypt hash, lookup)


def new_code() -> str:
    raw = "".join(secrets.choice(ALPHABET) for _ in range(16))
    return "-".join(raw[i : i + 4] for i in range(0, 16, 4))


def normalise(code: str) -> str:
    cleaned = code.upper().replace("-", "").replace(" ", "")
    return cleaned.translate(str.maketrans("ILO", "110"))


def lookup_key(secret: str, code: str) -> str:
    digest = hmac.new(secret.encode(), b"recovery\0" + normalise(code).encode(), hashlib.sha256).hexdigest()
    return digest[:LOOKUP_CHARS]


def _hash_all(codes: list[str], rounds: int) -> list[str]:
    return [bcrypt.hashpw(normalise(c).encode(), bcrypt.gensalt(rounds)).decode() for c in codes]


async def make_batch(secret: str, count: int, rounds: int = RECOVERY_ROUNDS) -> Batch:
    """Outside any transaction: hashing ten codes takes about half a second."""
    codes = [new_code() for _ in range(count)]
    # Cost 10 (R-RC2) is enough for 80 random bits; 12 would make enabling take ~2.5 s for ten codes.
    hashes = await run_bcrypt(_hash_all, codes, min(rounds, RECOVERY_ROUNDS))
    return Batch(codes, [(h, lookup_key(secret, c)) for h, c in zip(hashes, codes, strict=True)])


def replace_all(s: Session, user_id: int, batch: Batch) -> None:
    """The old set stops working in the same transaction that stores the new one."""
    batch_id = secrets.token_hex(8)
    s.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user_id))
    s.add_all(RecoveryCode(user_id=user_id, batch_id=batch_id, code_hash=h, lookup=key) for h, key in batch.rows)


def candidates(s: Session, secret: str, user_id: int, code: str) -> list[tuple[int, str]]:
    """The unused rows a guess could match: one by lookup key; rows stored before lookup keys, all of them."""
    given = normalise(code)
    if len(given) != 16:
        return []
    unused = (RecoveryCode.user_id == user_id, RecoveryCode.used_at.is_(None))
    rows = s.execute(select(RecoveryCode.id, RecoveryCode.code_hash).where(
        *unused, (RecoveryCode.lookup == lookup_key(secret, given)) | RecoveryCode.lookup.is_(None))).all()
    return [(row.id, row.code_hash) for row in rows]


def _match(rows: list[tuple[int, str]], code: str) -> int | None:
    given = normalise(code).encode()
    for row_id, hashed in rows:
        if bcrypt.checkpw(given, hashed.encode()):
            return row_id
    return None


async def match(rows: list[tuple[int, str]], code: str) -> int | None:
    return await run_bcrypt(_match, rows, code) if rows else None


def unused(s: Session, row_id: int) -> bool:
    return s.execute(select(RecoveryCode.id).where(RecoveryCode.id == row_id, RecoveryCode.used_at.is_(None))
                     ).first() is not None


def mark_used(s: Session, row_id: int) -> bool:
    """Single use (R-RC3): of two concurrent uses of one code, one wins."""
    result = s.execute(update(RecoveryCode).where(RecoveryCode.id == row_id, RecoveryCode.used_at.is_(None))
                       .values(used_at=utcnow()))
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]


def remaining(s: Session, user_id: int) -> int:
    return int(s.execute(select(func.count()).select_from(RecoveryCode).where(
        RecoveryCode.user_id == user_id, RecoveryCode.used_at.is_(None))).scalar_one())


def remaining_query(user_id: ColumnElement[int] | InstrumentedAttribute[int]) -> ScalarSelect[int]:
    return (select(func.count()).select_from(RecoveryCode)
            .where(RecoveryCode.user_id == user_id, RecoveryCode.used_at.is_(None)).scalar_subquery())
