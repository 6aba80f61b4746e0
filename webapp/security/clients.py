"""Who is asking: the client IP as uvicorn's trusted-proxy handling gives it, and a coarse browser label."""

from __future__ import annotations

import hashlib
import re

from starlette.requests import HTTPConnection

_BROWSERS = (("Edg/", "Edge"), ("OPR/", "Opera"), ("Firefox/", "Firefox"), ("Chrome/", "Chrome"), ("Safari/", "Safari"))
_SYSTEMS = (("Android", "Android"), ("iPhone", "iOS"), ("iPad", "iPadOS"), ("Windows", "Windows"),
            ("Mac OS X", "macOS"), ("CrOS", "ChromeOS"), ("Linux", "Linux"))


def client_ip(conn: HTTPConnection) -> str:
    """Never X-Forwarded-For directly: uvicorn rewrites the client only for --forwarded-allow-ips (R-L2)."""
    return conn.client.host if conn.client else "unknown"


def browser_label(user_agent: str) -> str:
    ua = user_agent[:512]
    browser = next((name for token, name in _BROWSERS if token in ua), "")
    system = next((name for token, name in _SYSTEMS if token in ua), "")
    if browser and system:
        return f"{browser} on {system}"
    return browser or system or (re.sub(r"[^\w .-]", "", ua.split("/", 1)[0])[:32] or "Unknown client")


def ua_hash(user_agent: str) -> str:
    return hashlib.sha256(user_agent.encode("utf-8", "replace")).hexdigest()[:16]
