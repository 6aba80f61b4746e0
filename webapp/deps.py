"""What the domain needs, handed to it explicitly: no `Request`, so a CLI or a background task can call it."""

from __future__ import annotations

from dataclasses import dataclass

from webapp.db import Database
from webapp.settings import Settings
from webapp.verify import VerifyGateway


@dataclass(frozen=True)
class Deps:
    settings: Settings
    db: Database
    verify: VerifyGateway
    # A bcrypt hash of a random password: unknown usernames are checked against it, so they cost the same (R-L4).
    dummy_hash: str
