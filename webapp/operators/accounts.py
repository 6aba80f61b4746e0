"""Reading accounts for an operator: find one, list them, show one. Never a secret nor a full phone number."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import ColumnElement, func, or_, select
from sqlalchemy.orm import InstrumentedAttribute, Session
from sqlalchemy.sql.selectable import ScalarSelect

from webapp.db import utcnow
from webapp.identity.usernames import canonical
from webapp.identity.users import login_key
from webapp.models import MfaChallenge, SecurityEvent, Throttle, User
from webapp.security import sessions
from webapp.settings import Settings
from webapp.twofactor import recovery
from webapp.twofactor.challenges import open_conditions
from webapp.twofactor.phones import mask

SIGN_INS = ("authn_login_success", "authn_login_successafterfail")
RECENT_EVENTS = 10


class UnknownUser(LookupError):
    """No account matches what the operator typed."""

    def __init__(self, ref: str) -> None:
        super().__init__(f"no user {ref!r} (give a username, or #ID for a user id)")


@dataclass(frozen=True)
class Locks:
    login_locked_s: int
    login_failures: int
    mfa_locked_s: int
    mfa_failures: int

    @property
    def any(self) -> bool:
        return bool(self.login_locked_s or self.mfa_locked_s)


@dataclass(frozen=True)
class Summary:
    id: int
    username: str
    status: str  # "active" or "disabled"
    two_step: bool
    created_at: datetime
    last_sign_in: datetime | None
    locks: Locks


@dataclass(frozen=True)
class Detail(Summary):
    email: str = ""
    disabled_at: datetime | None = None
    phone: str = ""  # masked: country code and last two digits (R-PR1)
    recovery_codes_left: int = 0
    sessions_active: int = 0
    challenges_open: int = 0
    recent_events: list[tuple[datetime, str, str]] = field(default_factory=list)

    @property
    def methods(self) -> list[str]:
        found = ["password"]
        if self.two_step:
            found.append(f"sms {self.phone}")
            found.append(f"recovery codes ({self.recovery_codes_left} unused)")
        return found


def find_user(s: Session, ref: str) -> User:
    """`alice` (as typed at sign-in: case and width folded) or `#12` (an id); raises UnknownUser."""
    text = ref.strip()
    if text.startswith("#") and text[1:].isdigit():
        user = s.get(User, int(text[1:]))
    else:
        user = s.execute(select(User).where(User.username == canonical(text))).scalar_one_or_none()
    if user is None:
        raise UnknownUser(ref)
    return user


def last_sign_in(user_id: ColumnElement[int] | InstrumentedAttribute[int] | int) -> ScalarSelect[datetime]:
    """A completed sign-in: the password step of a two-step sign-in does not count, its code step does."""
    step = SecurityEvent.details["outcome_detail"].as_string()
    return select(func.max(SecurityEvent.ts)).where(
        SecurityEvent.user_id == user_id, SecurityEvent.event.in_(SIGN_INS), SecurityEvent.outcome == "success",
        or_(step.is_(None), step != "second_step_required")).scalar_subquery()


def _locks(user: User, login_row: tuple[int, datetime | None] | None, now: datetime) -> Locks:
    failures, until = login_row if login_row else (0, None)
    login_left = int((until - now).total_seconds()) + 1 if until and until > now else 0
    mfa_until = user.mfa_locked_until
    mfa_left = int((mfa_until - now).total_seconds()) + 1 if mfa_until and mfa_until > now else 0
    return Locks(login_left, failures, mfa_left, user.mfa_failed_count)


def _login_rows(s: Session, settings: Settings, users: list[User]) -> dict[int, tuple[int, datetime | None]]:
    keys = {login_key(settings, u.username): u.id for u in users}
    found = s.execute(select(Throttle.key, Throttle.count, Throttle.locked_until).where(Throttle.key.in_(keys)))
    return {keys[key]: (count, until) for key, count, until in found}


def list_users(s: Session, settings: Settings, *, limit: int = 200) -> list[Summary]:
    rows = s.execute(select(User, last_sign_in(User.id)).order_by(User.id).limit(limit)).all()
    logins = _login_rows(s, settings, [user for user, _ in rows])
    now = utcnow()
    return [Summary(user.id, user.username, "disabled" if user.disabled_at else "active", user.mfa_enabled,
                    user.created_at, last, _locks(user, logins.get(user.id), now)) for user, last in rows]


def show_user(s: Session, settings: Settings, ref: str) -> Detail:
    user = find_user(s, ref)
    now = utcnow()
    last = s.execute(select(last_sign_in(user.id))).scalar_one_or_none()
    login = _login_rows(s, settings, [user]).get(user.id)
    challenges_open = s.execute(select(func.count()).select_from(MfaChallenge).where(
        MfaChallenge.user_id == user.id, *open_conditions(now))).scalar_one()
    events = s.execute(select(SecurityEvent.ts, SecurityEvent.event, SecurityEvent.outcome)
                       .where(SecurityEvent.user_id == user.id)
                       .order_by(SecurityEvent.ts.desc(), SecurityEvent.id.desc()).limit(RECENT_EVENTS)).all()
    return Detail(
        user.id, user.username, "disabled" if user.disabled_at else "active", user.mfa_enabled, user.created_at, last,
        _locks(user, login, now), email=user.email, disabled_at=user.disabled_at,
        phone=mask(user.phone_e164) if user.phone_e164 else "",
        recovery_codes_left=recovery.remaining(s, user.id) if user.mfa_enabled else 0,
        sessions_active=len(sessions.active_sessions(s, settings, user)), challenges_open=int(challenges_open),
        recent_events=[(ts, event, outcome) for ts, event, outcome in events])
