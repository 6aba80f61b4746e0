"""Passkeys (WebAuthn) with py_webauthn: discoverable credentials, user verification required, origin checked.

The RP ID is APP_BASE_URL's host and the expected origin is APP_BASE_URL itself. Ceremony challenges live
server-side like the SMS challenges: on the step's challenge row (second step, step-ups, adding a passkey) or in
passkey_ceremonies (passwordless sign-in, before any user is known); each is taken by the answer that uses it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from urllib.parse import urlsplit

from sqlalchemy import update
from sqlalchemy.orm import Session
from webauthn import (
    generate_authentication_options,
    generate_registration_options,
    options_to_json,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers import base64url_to_bytes, bytes_to_base64url
from webauthn.helpers.exceptions import WebAuthnException
from webauthn.helpers.structs import (
    AuthenticatorSelectionCriteria,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from webapp.db import utcnow
from webapp.models import Authenticator, SecurityNotice, User
from webapp.security import audit
from webapp.security.clients import Client
from webapp.settings import Settings
from webapp.twofactor.answers import Candidate, Proof
from webapp.twofactor.methods import WEBAUTHN, clean_label

TIMEOUT_MS = 120_000
MAX_CREDENTIAL_JSON = 8000


def rp_id(settings: Settings) -> str:
    return urlsplit(settings.app_base_url).hostname or "localhost"


def origin(settings: Settings) -> str:
    parts = urlsplit(settings.app_base_url)
    return f"{parts.scheme}://{parts.netloc}"


def new_challenge() -> str:
    return bytes_to_base64url(secrets.token_bytes(32))


def user_handle(settings: Settings, user_id: int) -> bytes:
    """Opaque and stable: no username or number in the authenticator (WebAuthn §14.6.1)."""
    return hmac.new(settings.secret_key.encode(), f"webauthn-user\0{user_id}".encode(), hashlib.sha256).digest()


def registration_options(settings: Settings, user: User, existing: list[str], challenge: str) -> str:
    options = generate_registration_options(
        rp_id=rp_id(settings), rp_name=settings.app_name, user_name=user.username,
        user_id=user_handle(settings, user.id), user_display_name=user.display_name,
        challenge=base64url_to_bytes(challenge), timeout=TIMEOUT_MS,
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement.REQUIRED, user_verification=UserVerificationRequirement.REQUIRED),
        exclude_credentials=[PublicKeyCredentialDescriptor(id=base64url_to_bytes(c)) for c in existing],
    )
    return options_to_json(options)


def authentication_options(settings: Settings, challenge: str, allowed: list[str]) -> str:
    """`allowed` empty: any discoverable passkey for this site (passwordless)."""
    options = generate_authentication_options(
        rp_id=rp_id(settings), challenge=base64url_to_bytes(challenge), timeout=TIMEOUT_MS,
        allow_credentials=[PublicKeyCredentialDescriptor(id=base64url_to_bytes(c)) for c in allowed],
        user_verification=UserVerificationRequirement.REQUIRED,
    )
    return options_to_json(options)


def credential_id_of(raw: str) -> str:
    """The credential id an answer names, or "" when the JSON is unusable."""
    try:
        data = json.loads(raw[:MAX_CREDENTIAL_JSON])
    except ValueError:
        return ""
    value = data.get("id") if isinstance(data, dict) else None
    return value if isinstance(value, str) and 0 < len(value) <= 1400 else ""


def new_row(settings: Settings, user_id: int, raw: str, expected: str | None, label: str) -> Authenticator | None:
    """Verify a registration answer; the passkey's row, or None when it doesn't verify."""
    if not expected or len(raw) > MAX_CREDENTIAL_JSON:
        return None
    try:
        verified = verify_registration_response(
            credential=raw, expected_challenge=base64url_to_bytes(expected), expected_rp_id=rp_id(settings),
            expected_origin=origin(settings), require_user_verification=True)
    except (WebAuthnException, ValueError, KeyError, TypeError):
        return None
    transports = json.loads(raw).get("response", {}).get("transports", [])
    return Authenticator(
        user_id=user_id, kind=WEBAUTHN, label=clean_label(label, WEBAUTHN),
        credential_id=bytes_to_base64url(verified.credential_id),
        public_key=bytes_to_base64url(verified.credential_public_key), sign_count=verified.sign_count,
        transports=",".join(t for t in transports if isinstance(t, str))[:128], created_at=utcnow())


def prove(settings: Settings, raw: str, found: list[Candidate], expected: str | None) -> Proof | None:
    """Verify an assertion against the passkey it names; a counter that went backwards is refused and flagged."""
    named = credential_id_of(raw)
    candidate = next((c for c in found if c.credential_id and hmac.compare_digest(c.credential_id, named)), None)
    if candidate is None or not expected:
        return None
    try:
        verified = verify_authentication_response(
            credential=raw, expected_challenge=base64url_to_bytes(expected), expected_rp_id=rp_id(settings),
            expected_origin=origin(settings), credential_public_key=base64url_to_bytes(candidate.secret),
            credential_current_sign_count=candidate.last or 0, require_user_verification=True)
    except (WebAuthnException, ValueError, KeyError, TypeError) as exc:
        if "sign count" in str(exc):
            return Proof(candidate.row_id, problem="counter")
        return None
    return Proof(candidate.row_id, step=verified.new_sign_count)


def claim(s: Session, user_id: int, proof: Proof) -> bool:
    """The new sign count, only if it still moves forward (or the authenticator keeps none): one statement."""
    count = proof.step or 0
    result = s.execute(update(Authenticator).where(
        Authenticator.id == proof.row_id, Authenticator.user_id == user_id, Authenticator.kind == WEBAUTHN,
        (Authenticator.sign_count < count) | ((Authenticator.sign_count == 0) & (count == 0)))
        .values(sign_count=count, last_used_at=utcnow()))
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]


def flag(s: Session, client: Client, user_id: int, proof: Proof) -> None:
    """A counter regression hints at a cloned authenticator: mark the passkey, tell the owner at the next visit."""
    flagged = s.execute(update(Authenticator).where(Authenticator.id == proof.row_id,
                                                    Authenticator.flagged_at.is_(None)).values(flagged_at=utcnow()))
    audit.record(s, client, "webauthn_counter_regression", "failure", user_id=user_id, method=WEBAUTHN)
    if flagged.rowcount:  # type: ignore[attr-defined]
        s.add(SecurityNotice(user_id=user_id, kind="passkey_flagged"))

