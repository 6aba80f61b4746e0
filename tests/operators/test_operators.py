"""Domain guarantees the operator commands rely on, beyond what the CLI tests show."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy.orm import Session
from starlette.testclient import TestClient

from tests.support import execute, signup
from webapp.db import Database
from webapp.security import throttle
from webapp.settings import Settings


def test_a_session_of_a_disabled_account_is_dead_even_if_its_row_escaped_the_epoch_bump(
        client: TestClient, settings: Settings) -> None:
    signup(client, "alice")
    assert client.get("/profile").status_code == 200
    execute(settings, "UPDATE users SET disabled_at = CURRENT_TIMESTAMP")  # no epoch bump, on purpose
    assert client.get("/profile").status_code == 303


@pytest.mark.parametrize("count", [
    lambda s, key: throttle.hit(s, key, 5, 60),
    lambda s, key: throttle.reserve_attempt(s, key, 5, 60),
], ids=["rate-window", "lockout-counter"])
def test_a_throttle_row_pruned_mid_transaction_is_recreated_not_a_crash(
        settings: Settings, monkeypatch: pytest.MonkeyPatch, count: Any) -> None:
    """PostgreSQL: `prune` may delete a long-quiet row after `ensure` saw it and before the counting update."""
    real, calls = throttle.ensure, []

    def row_seen_then_pruned(s: Session, key: str, now: Any) -> None:
        calls.append(key)
        if len(calls) > 1:  # the first call "saw" the row that prune then deleted, so it inserted nothing
            real(s, key, now)

    monkeypatch.setattr(throttle, "ensure", row_seen_then_pruned)
    db = Database(settings.database_url)
    try:
        verdict = db.run_write(count, "login-ip:pruned-meanwhile")
    finally:
        db.dispose()
    assert verdict.allowed and verdict.count == 1 and len(calls) == 2
