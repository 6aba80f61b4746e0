"""Tables. The cookie carries ids only; everything that must not be replayed lives here (D-1)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, DateTime, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from webapp.db import utcnow


class Base(DeclarativeBase):
    pass


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(32), unique=True)
    display_name: Mapped[str] = mapped_column(String(32))
    email: Mapped[str] = mapped_column(String(254))
    password_hash: Mapped[str] = mapped_column(String(100))
    pepper_id: Mapped[int] = mapped_column(Integer, default=1)
    phone_e164: Mapped[str | None] = mapped_column(String(20), index=True)
    phone_verified_at: Mapped[datetime | None] = mapped_column(DateTime)
    mfa_enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    mfa_failed_count: Mapped[int] = mapped_column(Integer, default=0)
    mfa_locked_until: Mapped[datetime | None] = mapped_column(DateTime)
    session_epoch: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    # Set by an operator (`webapp users disable`): the password step refuses the account like a wrong password.
    disabled_at: Mapped[datetime | None] = mapped_column(DateTime)
    # Set when a link mailed to `email` was followed; a new address starts unverified.
    email_verified_at: Mapped[datetime | None] = mapped_column(DateTime)


class AuthSession(Base):
    __tablename__ = "auth_sessions"

    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    epoch: Mapped[int] = mapped_column(Integer)
    mfa_passed: Mapped[bool] = mapped_column(Boolean, default=False)
    remember: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime)
    ip: Mapped[str] = mapped_column(String(64), default="")
    browser: Mapped[str] = mapped_column(String(64), default="")


class Throttle(Base):
    """A counter under a hashed key: fixed windows for rates, consecutive failures for lockouts."""

    __tablename__ = "throttles"

    key: Mapped[str] = mapped_column(String(80), primary_key=True)
    count: Mapped[int] = mapped_column(Integer, default=0)
    window_started_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    locked_until: Mapped[datetime | None] = mapped_column(DateTime)


class SecurityEvent(Base):
    __tablename__ = "security_events"
    # ts alone: `webapp prune` deletes by age.
    __table_args__ = (Index("ix_security_events_user_ts", "user_id", "ts"), Index("ix_security_events_ts", "ts"))

    id: Mapped[int] = mapped_column(primary_key=True)
    ts: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    event: Mapped[str] = mapped_column(String(64))
    outcome: Mapped[str] = mapped_column(String(16))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    subject_hash: Mapped[str | None] = mapped_column(String(64))
    ip: Mapped[str] = mapped_column(String(64), default="")
    browser: Mapped[str] = mapped_column(String(64), default="")
    ua_hash: Mapped[str] = mapped_column(String(16), default="")
    request_id: Mapped[str] = mapped_column(String(32), default="")
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class MfaChallenge(Base):
    """A pending second step; the cookie holds only the random id whose hash is the key."""

    __tablename__ = "mfa_challenges"

    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    purpose: Mapped[str] = mapped_column(String(24))
    auth_session_hash: Mapped[str | None] = mapped_column(String(64))
    # The user's session epoch when the challenge opened: any credential change bumps it and kills the challenge.
    user_epoch: Mapped[int] = mapped_column(Integer, default=0)
    # Fixed at creation: a different number is a different challenge (no swapping the number under a sent code).
    phone_e164: Mapped[str] = mapped_column(String(20))
    verification_sid: Mapped[str | None] = mapped_column(String(34))
    channel: Mapped[str] = mapped_column(String(8), default="sms")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime)
    sends: Mapped[int] = mapped_column(Integer, default=0)
    last_sent_at: Mapped[datetime | None] = mapped_column(DateTime)
    failed_checks: Mapped[int] = mapped_column(Integer, default=0)
    consumed_at: Mapped[datetime | None] = mapped_column(DateTime)
    invalidated_at: Mapped[datetime | None] = mapped_column(DateTime)
    next_path: Mapped[str] = mapped_column(String(512), default="/profile")
    remember: Mapped[bool] = mapped_column(Boolean, default=False)
    landline: Mapped[bool] = mapped_column(Boolean, default=False)
    # How this step is proved: "sms" (a code sent by Verify), "totp" (an authenticator app) or "webauthn".
    method: Mapped[str] = mapped_column(String(16), default="sms")
    # Method state that must stay server-side: a new app's encrypted secret while it is set up, or the WebAuthn
    # challenge of the ceremony in progress (taken, single use, by the answer that uses it).
    payload: Mapped[str | None] = mapped_column(String(512))
    # Purpose change_email only: the address to confirm once the step-up passes.
    pending_email: Mapped[str | None] = mapped_column(String(254))


class RecoveryCode(Base):
    __tablename__ = "recovery_codes"
    __table_args__ = (Index("ix_recovery_codes_user_lookup", "user_id", "lookup"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    batch_id: Mapped[str] = mapped_column(String(32))
    code_hash: Mapped[str] = mapped_column(String(100))
    # Keyed hash prefix that finds the one candidate row, so a guess costs at most one bcrypt check.
    lookup: Mapped[str | None] = mapped_column(String(16))
    used_at: Mapped[datetime | None] = mapped_column(DateTime)


class AuthenticatorEvent(Base):
    """History of phone bindings, kept after the number itself is cleared (R-PR4)."""

    __tablename__ = "authenticator_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16), default="sms")
    last2: Mapped[str] = mapped_column(String(2))
    bound_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    unbound_at: Mapped[datetime | None] = mapped_column(DateTime)


class SecurityNotice(Base):
    """A banner for the user's next visit: something security-relevant happened to the account."""

    __tablename__ = "security_notices"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    seen_at: Mapped[datetime | None] = mapped_column(DateTime)


class Authenticator(Base):
    """One of a user's ways to prove it's them: a phone (sms), an authenticator app (totp) or a passkey (webauthn).

    For sms, users.phone_e164 stays the number the Verify path sends to; this row mirrors it with its label and times.
    """

    __tablename__ = "authenticators"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    label: Mapped[str] = mapped_column(String(64))
    phone_e164: Mapped[str | None] = mapped_column(String(20))
    # AES-GCM ciphertext of the TOTP secret (webapp.twofactor.secretbox), never the secret itself.
    secret_enc: Mapped[str | None] = mapped_column(String(255))
    # The last accepted time step: a code is accepted once only, and never one older than it (no replay).
    totp_last_step: Mapped[int | None] = mapped_column(BigInteger)
    credential_id: Mapped[str | None] = mapped_column(String(1400), unique=True)
    public_key: Mapped[str | None] = mapped_column(Text)
    sign_count: Mapped[int] = mapped_column(BigInteger, default=0)
    transports: Mapped[str] = mapped_column(String(128), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime)
    # Set when a passkey's signature counter went backwards: a sign of a cloned authenticator.
    flagged_at: Mapped[datetime | None] = mapped_column(DateTime)


class RememberedBrowser(Base):
    """"Don't ask again on this browser": the device cookie's token, hashed, with what the profile lists."""

    __tablename__ = "remembered_browsers"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    browser: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    last_used_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime)


class PasskeyCeremony(Base):
    """A passwordless sign-in in progress: its WebAuthn challenge, single use and expiring (no user known yet)."""

    __tablename__ = "passkey_ceremonies"

    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    challenge: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime)
    consumed_at: Mapped[datetime | None] = mapped_column(DateTime)
class EmailToken(Base):
    """A single-use link sent by mail (reset, verify, change address, "this wasn't me"); the row holds its hash."""

    __tablename__ = "email_tokens"

    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    purpose: Mapped[str] = mapped_column(String(16))
    # The address the link went to (for verify and change: the address it proves).
    email: Mapped[str] = mapped_column(String(254))
    # When set, the link dies as soon as the user's session epoch moves on (any credential change).
    user_epoch: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime)
    used_at: Mapped[datetime | None] = mapped_column(DateTime)


class MailOutbox(Base):
    """A mail to send, written in the transaction of the change it reports; the background sender delivers it."""

    __tablename__ = "mail_outbox"
    __table_args__ = (Index("ix_mail_outbox_status_due", "status", "due_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), index=True)
    to_addr: Mapped[str] = mapped_column(String(254))
    template: Mapped[str] = mapped_column(String(48))
    # What the template needs, links included; emptied once the mail is sent or given up (no token lingers).
    context: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # pending → sending (claimed, with a lease) → sent | failed | cancelled
    status: Mapped[str] = mapped_column(String(12), default="pending")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    due_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    lease_until: Mapped[datetime | None] = mapped_column(DateTime)
    sent_at: Mapped[datetime | None] = mapped_column(DateTime)
    last_error: Mapped[str] = mapped_column(String(200), default="")
    # Stable across retries, so a receiver can drop a duplicate delivered after a crash.
    message_key: Mapped[str] = mapped_column(String(32))
