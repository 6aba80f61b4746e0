"""GET /dev/outbox: the codes the development Verify backend "sent" and the mail the dev mailbox kept, so every
flow can be tried without a phone or a mail server. 404 in production, and when neither stand-in is in use."""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from webapp.mail.transport import DevMailbox
from webapp.verify.dev import DevVerifyBackend


def dev_stand_ins(request: Request) -> tuple[DevVerifyBackend | None, DevMailbox | None]:
    """The development stand-ins in use; none ever in production."""
    settings = getattr(request.app.state, "settings", None)
    if getattr(settings, "production", True):
        return None, None
    backend = getattr(request.app.state, "verify", None)
    mailbox = getattr(request.app.state, "mail", None)
    return (backend if isinstance(backend, DevVerifyBackend) else None,
            mailbox if isinstance(mailbox, DevMailbox) else None)


async def dev_outbox(request: Request) -> Response:
    backend, mailbox = dev_stand_ins(request)
    if backend is None and mailbox is None:
        raise HTTPException(status_code=404)
    context = {"messages": backend.outbox if backend else [], "sms_dev": backend is not None,
               "mails": mailbox.mails if mailbox else [], "mail_dev": mailbox is not None}
    response: Response = request.app.state.templates.TemplateResponse(
        request, "verify/dev_outbox.html", context, headers={"Cache-Control": "no-store"}
    )
    return response
