"""Authenticator apps (RFC 6238 TOTP, SHA-1, 6 digits, 30 s) with pyotp, and the setup QR code with segno."""

from __future__ import annotations

import hmac
import time

import pyotp
import segno
from markupsafe import Markup, escape

STEP_S = 30
DIGITS = 6
DRIFT_STEPS = 1  # ±1 step: a phone clock up to 30 s off still works


def new_secret() -> str:
    """160 random bits, base32 (RFC 4226 recommends 160)."""
    return pyotp.random_base32(32)


def grouped(secret: str) -> str:
    """`ABCD EFGH …`: easier to type into an app by hand."""
    return " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))


def provisioning_uri(secret: str, account: str, issuer: str) -> str:
    return pyotp.TOTP(secret, digits=DIGITS, interval=STEP_S).provisioning_uri(name=account, issuer_name=issuer)


def qr_svg(uri: str, label: str) -> Markup:
    """Inline SVG (no style attribute, so the CSP holds) with `label` as its accessible name."""
    svg = segno.make(uri, error="m").svg_inline(scale=4, border=4, title=label, svgclass="qr-code", lineclass=None)
    named = svg.replace("<svg ", f'<svg role="img" aria-label="{escape(label)}" ', 1)
    return Markup(named)  # noqa: S704 - segno's own markup, the label escaped


def matching_step(secret: str, code: str, now: float | None = None) -> int | None:
    """The time step whose code equals `code`, within ±DRIFT_STEPS of now; None when none does."""
    totp = pyotp.TOTP(secret, digits=DIGITS, interval=STEP_S)
    current = int((time.time() if now is None else now) // STEP_S)
    for step in (current, current - DRIFT_STEPS, current + DRIFT_STEPS):
        if hmac.compare_digest(totp.generate_otp(step), code):
            return step
    return None
