"""TOTP secrets at rest: AES-256-GCM under a key derived (HKDF-SHA256) from TOTP_ENCRYPTION_KEYS or SECRET_KEY.

A sealed value is `v1.<key id>.<base64url(nonce ‖ ciphertext ‖ tag)>`, bound to its owner by the associated data,
so a ciphertext copied onto another user's row does not open. The first key seals; every key opens, which is how
a key is rotated: put the new key first, run `python -m webapp.twofactor.secretbox` (re-seals every stored
secret under it), then drop the old key. Secrets never reach logs, cookies or audit rows.
"""

from __future__ import annotations

import base64
import hashlib
import os
from functools import lru_cache

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from webapp.settings import Settings

VERSION = "v1"


@lru_cache(maxsize=8)
def _ring(materials: tuple[str, ...]) -> tuple[tuple[str, AESGCM], ...]:
    ring = []
    for material in materials:
        key = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"webapp/totp-secrets",
                   info=b"aes-256-gcm v1").derive(material.encode())
        ring.append((hashlib.sha256(key).hexdigest()[:8], AESGCM(key)))
    return tuple(ring)


def keyring(settings: Settings) -> tuple[tuple[str, AESGCM], ...]:
    return _ring(settings.totp_encryption_keys or (settings.secret_key,))


def _aad(owner: int) -> bytes:
    return f"totp-secret:user:{owner}".encode()


def seal(settings: Settings, secret: str, owner: int) -> str:
    kid, aead = keyring(settings)[0]
    nonce = os.urandom(12)
    body = base64.urlsafe_b64encode(nonce + aead.encrypt(nonce, secret.encode(), _aad(owner))).decode()
    return f"{VERSION}.{kid}.{body}"


def unseal(settings: Settings, sealed: str, owner: int) -> str | None:
    """The secret, or None when no configured key opens it (wrong owner, tampered, or a key dropped too early)."""
    try:
        version, kid, body = sealed.split(".", 2)
        raw = base64.urlsafe_b64decode(body.encode())
    except ValueError:
        return None
    if version != VERSION:
        return None
    for key_id, aead in keyring(settings):
        if key_id == kid:
            try:
                return aead.decrypt(raw[:12], raw[12:], _aad(owner)).decode()
            except InvalidTag:
                return None
    return None


def needs_reseal(settings: Settings, sealed: str) -> bool:
    return sealed.split(".", 2)[1:2] != [keyring(settings)[0][0]]


def reseal_all(settings: Settings) -> int:
    """Re-seal every stored TOTP secret under the first key; returns how many rows changed."""
    from sqlalchemy import select, update

    from webapp.db import Database
    from webapp.models import Authenticator

    db = Database(settings.database_url)
    changed = 0
    try:
        with db.engine.begin() as conn:
            rows = conn.execute(select(Authenticator.id, Authenticator.user_id, Authenticator.secret_enc)
                                .where(Authenticator.secret_enc.is_not(None))).all()
            for row_id, owner, sealed in rows:
                assert sealed is not None
                secret = unseal(settings, sealed, owner)
                if secret is None:
                    raise SystemExit(f"authenticator {row_id}: no configured key opens its secret; keep the old key")
                if needs_reseal(settings, sealed):
                    conn.execute(update(Authenticator).where(Authenticator.id == row_id, Authenticator.secret_enc ==
                                                             sealed).values(secret_enc=seal(settings, secret, owner)))
                    changed += 1
    finally:
        db.dispose()
    return changed


if __name__ == "__main__":
    from webapp.settings import load_settings

    print(f"re-sealed {reseal_all(load_settings())} TOTP secret(s) under the first key")
