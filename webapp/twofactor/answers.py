"""What a method kind reads before a check (Candidate) and what a right answer proved (Proof)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Candidate:
    """One thing an answer may match: a recovery-code row, an app's sealed secret or a passkey's public key."""

    row_id: int  # 0: the challenge's own pending secret (an app being set up)
    secret: str
    last: int | None = None  # the last accepted TOTP step, or the passkey's sign count
    credential_id: str = ""


@dataclass(frozen=True)
class Proof:
    row_id: int = 0
    step: int | None = None  # the TOTP step matched, or the passkey's new sign count
    problem: str = ""  # refused for a reason worth telling (a passkey's counter went backwards)
