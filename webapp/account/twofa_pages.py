"""The #twofa region's page wrapper and the states more than one module renders (recovery codes, a new app, a
new passkey); every state is a partial whose root is #twofa."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from webapp.htmx import redirect, render, wants_fragment
from webapp.models import MfaChallenge, User
from webapp.twofactor import secretbox, totp
from webapp.web import deps_of

STATUS_PARTIAL = "account/_twofa_status.html"
STEPUP_PARTIAL = "account/_twofa_password.html"
PHONE_PARTIAL = "account/_twofa_phone.html"
CODES_PARTIAL = "account/_twofa_codes.html"
APP_PARTIAL = "account/_twofa_app.html"
PASSKEY_PARTIAL = "account/_twofa_passkey.html"
METHOD_PARTIAL = "account/_twofa_method.html"


def page(request: Request, partial: str, context: dict[str, Any], status: int = 200) -> Response:
    """The state's partial for htmx, else the two-step page around it (which includes `partial`)."""
    return render(request, "account/twofa.html", partial, {"flash": "", "partial": partial, **context}, status)


def next_step(request: Request, shown: Response, *, notice: str | None = None) -> Response:
    """htmx swaps the step in place; a plain form post goes on with a 303 to the step's own page (PRG)."""
    if wants_fragment(request) or shown.status_code >= 400:  # errors are shown where they happened
        return shown
    return redirect(request, "/2fa", notice=notice)


def codes_page(request: Request, codes: list[str], flash: str) -> Response:
    """Shown once, never stored in clear (R-RC1). htmx swaps the whole page body: the session and its CSRF token
    were just re-issued, so every form on the page must be re-rendered with the new token."""
    context = {"partial": CODES_PARTIAL, "codes": codes, "codes_text": "\n".join(codes) + "\n", "flash": flash}
    headers = {"HX-Retarget": "body", "HX-Reswap": "innerHTML"} if wants_fragment(request) else None
    return render(request, "account/twofa.html", None, context, headers=headers)


def app_setup(request: Request, ch: MfaChallenge, user: User, *, error: str = "", status: int = 200,
              label: str = "") -> Response:
    """QR code, the key as text and the first code: shown only while the app is being set up, from the step's row."""
    settings = deps_of(request).settings
    secret = secretbox.unseal(settings, ch.payload or "", user.id) or ""
    uri = totp.provisioning_uri(secret, user.username, settings.app_name)
    context = {"qr": totp.qr_svg(uri, f"QR code to add {settings.app_name} to your authenticator app"),
               "setup_key": totp.grouped(secret), "error": error, "label": label}
    return page(request, APP_PARTIAL, context, status)


def passkey_add(request: Request, *, error: str = "", status: int = 200, label: str = "") -> Response:
    return page(request, PASSKEY_PARTIAL, {"error": error, "label": label}, status)
