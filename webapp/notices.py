"""Fixed messages passed as a code in the redirect URL, so no text ever rides in the cookie (R-S5)."""

from __future__ import annotations

NOTICES = {
    "registered": "Your account is ready. Sign in to continue.",
    "signed-out": "You have been signed out.",
    "signed-out-everywhere": "You have been signed out on every device.",
    "session-expired": "Your session has ended. Please sign in again.",
    "login-expired": "That sign-in attempt timed out. Please sign in again.",
    "too-many-attempts": "Too many wrong codes. Please sign in again.",
    "mfa-locked": "Two-step verification is locked for 15 minutes after too many wrong codes.",
    "signed-in": "You are signed in.",
    "code-sent": "We sent you a code.",
    "twofa-on": "Two-step verification is on.",
    "twofa-off": "Two-step verification is off.",
    "phone-changed": "Your phone number has been changed.",
    "codes-regenerated": "New recovery codes are ready; the old ones no longer work.",
    "password-changed": "Your password has been changed and your other sessions were signed out.",
    "method-added": "The new way to sign in is ready. Your other sessions were signed out.",
    "method-removed": "That way to sign in was removed, and remembered browsers were forgotten.",
    "method-renamed": "The name was saved.",
    "browser-forgotten": "That browser will be asked for the second step again.",
    "browsers-forgotten": "Every remembered browser will be asked for the second step again.",
    "password-reset": "Your password has been reset and every session was signed out. Sign in with the new password.",
    "email-verified": "Your email address is verified.",
    "verification-sent": "We sent a new verification link to your email address.",
    "verify-wait": "You asked for several links already. Please wait an hour before asking again.",
    "email-change-sent": "We sent a link to your new address. Your address changes when you open it.",
    "email-changed": "Your email address has been changed and your other sessions were signed out.",
}


def notice_text(code: str | None) -> str | None:
    return NOTICES.get(code or "")
