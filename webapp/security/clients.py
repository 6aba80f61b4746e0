"""Who is asking: the client IP (trusted proxies already applied by middleware), a coarse browser label."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from starlette.requests import HTTPConnection

_BROWSERS = (("Edg/", "Edge"), ("OPR/", "Opera"), ("Firefox/", "Firefox"), ("Chrome/", "Chrome"), ("Safari/", "Safari"))
_SYSTEMS = (("Android", "Android"), ("iPhone", "iOS"), ("iPad", "iPadOS"), ("Windows", "Windows"),
            ("Mac OS X", "macOS"), ("CrOS", "ChromeOS"), ("Linux", "Linux"))


@dataclass(frozen=True)
class Client:
    """The request as the domain sees it: enough for audit rows, per-IP limits and the SMS locale."""

    ip: str = "unknown"
    user_agent: str = ""
    request_id: str = ""
    accept_language: str = ""

    @property
    def browser(self) -> str:
        return browser_label(self.user_agent)

    @property
    def ua_hash(self) -> str:
        return ua_hash(self.user_agent)

    @property
    def locale(self) -> str | None:
        lang = self.accept_language.split(",")[0].split(";")[0].strip()
        return lang[:2].lower() if len(lang) >= 2 and lang[:2].isalpha() else None


def client_of(conn: HTTPConnection) -> Client:
    h = conn.headers
    return Client(ip=client_ip(conn), user_agent=h.get("user-agent", "")[:512],
                  request_id=str(getattr(conn.state, "request_id", "")),
                  accept_language=h.get("accept-language", "")[:256])


def client_ip(conn: HTTPConnection) -> str:
    """Never X-Forwarded-For directly: the proxy middleware rewrites the client only for trusted peers (R-L2)."""
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
