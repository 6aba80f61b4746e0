"""GET /dev/outbox: the codes the development backend "sent", so sign-in can be tried without a phone."""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from webapp.verify.dev import DevVerifyBackend


async def dev_outbox(request: Request) -> Response:
    backend = getattr(request.app.state, "verify", None)
    settings = getattr(request.app.state, "settings", None)
    # The backend check alone suffices today; the production check keeps it that way if wiring changes.
    if not isinstance(backend, DevVerifyBackend) or getattr(settings, "production", False):
        raise HTTPException(status_code=404)
    response: Response = request.app.state.templates.TemplateResponse(
        request, "verify/dev_outbox.html", {"messages": backend.outbox}, headers={"Cache-Control": "no-store"}
    )
    return response
