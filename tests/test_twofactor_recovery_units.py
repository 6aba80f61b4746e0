"""Recovery codes at the unit level: shape, cost, normalisation, single use (R-RC1…R-RC3)."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from webapp.db import Database
from webapp.models import RecoveryCode, User
from webapp.twofactor import recovery

SHAPE = re.compile(r"^[0-9A-HJKMNP-TV-Z]{4}(-[0-9A-HJKMNP-TV-Z]{4}){3}$")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.mark.anyio
@pytest.mark.parametrize(("password_rounds", "expected"), [(12, 10), (10, 10), (4, 4)])
async def test_r_rc2_codes_use_bcrypt_cost_10_whatever_the_password_cost(
    database_url: str, password_rounds: int, expected: int
) -> None:
    db = Database(database_url)
    try:
        async with db.session() as s:
            user = User(username="alice", display_name="alice", email="a@example.com", password_hash="x")
            s.add(user)
            await s.flush()
            codes = await recovery.issue(s, user.id, 3, password_rounds)
            hashes = (await s.execute(select(RecoveryCode.code_hash))).scalars().all()
        assert len(codes) == 3 and all(SHAPE.fullmatch(c) for c in codes)  # 80 random bits each (R-RC1)
        assert all(h.startswith(f"$2b${expected:02d}$") for h in hashes)
        assert not any(c in h or c.replace("-", "") in h for c in codes for h in hashes)
        async with db.session() as s:
            assert await recovery.use(s, user.id, codes[0].lower().replace("-", " "))  # R-RC2 normalisation
            assert not await recovery.use(s, user.id, codes[0])  # single use (R-RC3)
            assert await recovery.remaining(s, user.id) == 2
    finally:
        await db.dispose()
