"""Fragment or page: one decision from htmx's request headers, and the response helpers around it."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

VARY = "HX-Request, HX-Request-Type"
# RFC 3986 reserved characters and "%" stay as they are; the same set RedirectResponse uses, so it changes nothing more.
_URL_SAFE = ":/?#[]@!$&'()*+,;=%"
_LONE_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")


def is_htmx(request: Request) -> bool:
    """Any htmx request except a history restore, which must get a full page."""
    h = request.headers
    return h.get("hx-request") == "true" and h.get("hx-history-restore-request") != "true"


def wants_fragment(request: Request) -> bool:
    """True when htmx swaps the reply into a target smaller than <body>."""
    if not is_htmx(request):
        return False
    kind = request.headers.get("hx-request-type")  # htmx 4 only
    return kind == "partial" if kind else request.headers.get("hx-boosted") != "true"


def render(
    request: Request,
    page: str,
    fragment: str | None,
    context: Mapping[str, Any] | None = None,
    status_code: int = 200,
    headers: Mapping[str, str] | None = None,
) -> Response:
    """Render `fragment` for partial htmx requests, else the full `page`; both vary on the htmx headers."""
    templates = request.app.state.templates
    as_fragment = fragment is not None and wants_fragment(request)
    ctx = {"fragment": as_fragment, **(context or {})}
    response: Response = templates.TemplateResponse(
        request, fragment if as_fragment and fragment else page, ctx, status_code=status_code
    )
    for key, value in (headers or {}).items():
        response.headers[key] = value
    response.headers.add_vary_header(VARY)
    response.headers["Cache-Control"] = "no-store"
    return response


def ascii_url(url: str) -> str:
    """Percent-encode everything a header cannot carry (non-ASCII as UTF-8); existing %XX escapes are kept as-is."""
    # A "%" that starts no escape is a literal percent sign, so it becomes "%25"; "%E2%82%AC" stays one "€".
    return quote(_LONE_PERCENT.sub("%25", url), safe=_URL_SAFE, errors="surrogatepass")


def redirect(request: Request, target: str, *, notice: str | None = None) -> Response:
    """Leave the current page: 303 without htmx; HX-Redirect for every htmx request, history restores included."""
    # Targets are app paths or already passed through safe_next (R-R1, R-R3); anything else is refused here too.
    url = target if target.startswith("/") and not target.startswith(("//", "/\\")) else "/profile"
    if notice:
        url += ("&" if "?" in url else "?") + "notice=" + notice
    # Targets arrive decoded (`next=/%E2%82%AC` is "/€"); headers are Latin-1 at best, so a raw "€" would be a 500.
    url = ascii_url(url)
    h = request.headers
    # htmx 4.0.1's history restore sends HX-History-Restore-Request without HX-Request (seen in Chromium).
    if h.get("hx-request") == "true" or h.get("hx-history-restore-request") == "true":
        # HX-Redirect makes a full load, which also refreshes <body>'s hx-headers CSRF token and, for a history
        # restore, the address bar (a 303 would be followed silently and leave the old URL showing).
        response = Response(status_code=200, headers={"HX-Redirect": url, "Cache-Control": "no-store"})
    else:
        response = RedirectResponse(url, status_code=303, headers={"Cache-Control": "no-store"})
    response.headers.add_vary_header(VARY)
    return response
