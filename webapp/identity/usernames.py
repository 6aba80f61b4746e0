"""Usernames: NFKC then case-folded before any comparison, so `Alice` and `alice` are one account (R-V5)."""

from __future__ import annotations

import re
import unicodedata

USERNAME_RE = re.compile(r"^[a-z0-9_.-]{3,32}$")


def canonical(username: str) -> str:
    return unicodedata.normalize("NFKC", username).casefold().strip()


def username_problem(username: str) -> str | None:
    if not username.strip():
        return "Enter a username."
    if not USERNAME_RE.fullmatch(canonical(username)):
        return "Use 3 to 32 characters: letters, digits, dots, hyphens or underscores."
    return None


EMAIL_RE = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$")


def email_problem(email: str) -> str | None:
    if not email.strip():
        return "Enter an email address."
    if not EMAIL_RE.fullmatch(email.strip()):
        return "Enter an email address like name@example.com."
    return None
