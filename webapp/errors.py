"""Readable error pages and fragments for every status the app can answer, never a traceback (R-C8)."""

from __future__ import annotations

import logging

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from webapp.htmx import render

log = logging.getLogger("webapp.errors")

TITLES = {
    400: "Bad request",
    403: "Not allowed",
    404: "Page not found",
    405: "Method not allowed",
    413: "Too much data",
    422: "Please check the form",
    429: "Too many attempts",
    500: "Something went wrong",
    503: "Service unavailable",
}
MESSAGES = {
    400: "The request could not be understood. Go back and try again.",
    403: "This request was refused.",
    404: "There is nothing at this address.",
    405: "This address does not accept that kind of request.",
    413: "The form sent more data than this site accepts. Shorten your input and try again.",
    422: "Some of the information sent could not be used.",
    429: "Too many attempts. Please wait and try again.",
    500: "An unexpected error happened on our side. It has been logged; please try again.",
    503: "A service this page needs is not answering. Please try again in a minute.",
}
CSRF_MESSAGE = "This form has expired or came from another site. Reload the page and try again."


def error_response(
    request: Request, status: int, message: str | None = None, retry_after: int | None = None
) -> Response:
    headers = {"Retry-After": str(retry_after)} if retry_after else {}
    if status == 405 and isinstance(request.scope.get("webapp.allow"), str):
        headers["Allow"] = request.scope["webapp.allow"]
    context = {
        "status": status,
        "title": TITLES.get(status, "Error"),
        "message": message or MESSAGES.get(status, "The request failed."),
        "request_id": getattr(request.state, "request_id", ""),
    }
    return render(request, "errors/page.html", "errors/_error.html", context, status_code=status, headers=headers)


async def http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    message = exc.detail if exc.detail and exc.detail != TITLES.get(exc.status_code) else None
    if exc.status_code == 405 and exc.headers:
        request.scope["webapp.allow"] = exc.headers.get("Allow", "")
    if exc.status_code in (404, 405, 413):
        message = None  # Starlette's default details are terse phrases; ours are sentences
    retry = exc.headers.get("Retry-After") if exc.headers else None
    return error_response(request, exc.status_code, message, int(retry) if retry and retry.isdigit() else None)
