"""Same-origin relative targets only (R-R1, R-R3)."""

from __future__ import annotations

import unicodedata
from urllib.parse import urlsplit

DEFAULT_NEXT = "/profile"


def safe_next(target: str | None, default: str = DEFAULT_NEXT) -> str:
    """Return `target` if it is a relative path with one leading slash and nothing that changes the host."""
    if not target or len(target) > 512:
        return default
    if any(unicodedata.category(ch)[0] == "C" or ch.isspace() for ch in target):
        return default
    if "\\" in target or not target.startswith("/") or target.startswith("//"):
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return default
    if target.startswith(("/login", "/logout", "/register")):
        return default
    return target
