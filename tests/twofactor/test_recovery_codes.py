"""Recovery codes at the unit level: shape, cost, normalisation, single use, one hash per guess (R-RC1…R-RC3)."""

from __future__ import annotations

import asyncio
import re
from unittest import mock

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from webapp.db import Database
from webapp.models import RecoveryCode, User
from webapp.twofactor import recovery

SHAPE = re.compile(r"^[0-9A-HJKMNP-TV-Z]{4}(-[0-9A-HJKMNP-TV-Z]{4}){3}$")
SECRET = "unit-test-secret-" + "s" * 32


def _user(s: Session) -> int:
    user = User(username="alice", display_name="alice", email="a@example.com", password_hash="x")
    s.add(user)
    s.flush()
    return user.id


@pytest.mark.parametrize(("password_rounds", "expected"), [(12, 10), (10, 10), (4, 4)])
def test_r_rc2_codes_use_bcrypt_cost_10_whatever_the_password_cost(
    database_url: str, password_rounds: int, expected: int
) -> None:
    db = Database(database_url)
    try:
        batch = asyncio.run(recovery.make_batch(SECRET, 3, password_rounds))
        user_id = db.run_write(_user)
        db.run_write(recovery.replace_all, user_id, batch)
        hashes = db.run_read(lambda s: list(s.execute(select(RecoveryCode.code_hash)).scalars()))
        codes = batch.codes
        assert len(codes) == 3 and all(SHAPE.fullmatch(c) for c in codes)  # 80 random bits each (R-RC1)
        assert all(h.startswith(f"$2b${expected:02d}$") for h in hashes)
        assert not any(c in h or c.replace("-", "") in h for c in codes for h in hashes)
        typed = codes[0].lower().replace("-", " ")  # R-RC2 normalisation
        rows = db.run_read(recovery.candidates, SECRET, user_id, typed)
        row_id = asyncio.run(recovery.match(rows, typed))
        assert row_id is not None and db.run_write(recovery.mark_used, row_id)
        assert not db.run_write(recovery.mark_used, row_id)  # single use (R-RC3)
        assert db.run_read(recovery.candidates, SECRET, user_id, codes[0]) == []
        assert db.run_read(recovery.remaining, user_id) == 2
    finally:
        db.dispose()


def test_a_wrong_guess_costs_no_bcrypt_check_and_a_right_one_exactly_one(database_url: str) -> None:
    """The keyed lookup finds at most one candidate: a guess never costs ten hash checks (issue: R-RC4 DoS)."""
    db = Database(database_url)
    try:
        batch = asyncio.run(recovery.make_batch(SECRET, 10, 4))
        user_id = db.run_write(_user)
        db.run_write(recovery.replace_all, user_id, batch)
        with mock.patch("webapp.twofactor.recovery.bcrypt.checkpw", wraps=recovery.bcrypt.checkpw) as checks:
            wrong = db.run_read(recovery.candidates, SECRET, user_id, "ABCD-EFGH-JKMN-PQRS")
            assert asyncio.run(recovery.match(wrong, "ABCD-EFGH-JKMN-PQRS")) is None
            assert checks.call_count == 0
            right = db.run_read(recovery.candidates, SECRET, user_id, batch.codes[7])
            assert len(right) == 1 and asyncio.run(recovery.match(right, batch.codes[7])) == right[0][0]
            assert checks.call_count == 1
    finally:
        db.dispose()
