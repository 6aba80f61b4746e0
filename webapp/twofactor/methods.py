"""A user's methods (the authenticators table): list them, choose the default, keep the phone's row in step.

Each function runs inside the caller's unit of work; the ones that change rows expect the user's row locked first
(`sessions.lock_user`).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from webapp.db import utcnow
from webapp.models import Authenticator

SMS, TOTP, WEBAUTHN = "sms", "totp", "webauthn"
KINDS = (WEBAUTHN, TOTP, SMS)  # strongest first
KIND_NAMES = {SMS: "Text message", TOTP: "Authenticator app", WEBAUTHN: "Passkey"}
DEFAULT_LABELS = {SMS: "Phone", TOTP: "Authenticator app", WEBAUTHN: "Passkey"}
MAX_LABEL = 64


@dataclass(frozen=True)
class Method:
    """A method as pages show it: never a secret, a key or a full number."""

    id: int
    kind: str
    label: str
    detail: str
    created_at: object
    last_used_at: object
    flagged: bool

    @property
    def kind_name(self) -> str:
        return KIND_NAMES.get(self.kind, self.kind)


def rows_of(s: Session, user_id: int) -> list[Authenticator]:
    return list(s.execute(select(Authenticator).where(Authenticator.user_id == user_id)
                          .order_by(Authenticator.created_at, Authenticator.id)).scalars().all())


def shown(row: Authenticator) -> Method:
    detail = f"Number ending {row.phone_e164[-2:]}" if row.kind == SMS and row.phone_e164 else ""
    return Method(row.id, row.kind, row.label, detail, row.created_at, row.last_used_at, row.flagged_at is not None)


def listed(s: Session, user_id: int) -> list[Method]:
    return [shown(row) for row in rows_of(s, user_id)]


def kinds_of(s: Session, user_id: int) -> set[str]:
    return set(s.execute(select(Authenticator.kind).where(Authenticator.user_id == user_id)).scalars().all())


def default_kind(rows: list[Authenticator], *, phone: str | None = None) -> str:
    """The most recently used method; when none was used, the strongest (passkey > app > SMS)."""
    used = [r for r in rows if r.last_used_at is not None]
    if used:
        return max(used, key=lambda r: r.last_used_at or utcnow()).kind
    kinds = {r.kind for r in rows} | ({SMS} if phone else set())
    return next((k for k in KINDS if k in kinds), SMS)


def count(s: Session, user_id: int) -> int:
    return int(s.execute(select(func.count()).select_from(Authenticator)
                         .where(Authenticator.user_id == user_id)).scalar_one())


def owned(s: Session, user_id: int, method_id: int) -> Authenticator | None:
    return s.execute(select(Authenticator).where(Authenticator.id == method_id, Authenticator.user_id == user_id)
                     ).scalar_one_or_none()


def set_phone(s: Session, user_id: int, phone: str) -> None:
    """The phone's row follows users.phone_e164: created when the first number is confirmed, updated on a change."""
    changed = s.execute(update(Authenticator).where(Authenticator.user_id == user_id, Authenticator.kind == SMS)
                        .values(phone_e164=phone, created_at=utcnow(), last_used_at=None))
    if not changed.rowcount:  # type: ignore[attr-defined]
        s.add(Authenticator(user_id=user_id, kind=SMS, label=DEFAULT_LABELS[SMS], phone_e164=phone,
                            sign_count=0, transports="", created_at=utcnow()))


def delete_all(s: Session, user_id: int) -> None:
    s.execute(delete(Authenticator).where(Authenticator.user_id == user_id))


def used(s: Session, user_id: int, kind: str, method_id: int | None = None) -> None:
    """Last use, for the profile and the default choice; SMS and recovery codes name no row."""
    query = update(Authenticator).where(Authenticator.user_id == user_id, Authenticator.kind == kind)
    if method_id is not None:
        query = query.where(Authenticator.id == method_id)
    s.execute(query.values(last_used_at=utcnow()))


def clean_label(raw: str, kind: str) -> str:
    label = " ".join(raw.split())[:MAX_LABEL]
    return label or DEFAULT_LABELS.get(kind, "Method")
