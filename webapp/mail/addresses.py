"""A change of address, requested: the link goes to the new address, a notice with "This wasn't me" to the old.

Here, not in identity/, because the code-step engine (twofactor/completion) calls it after a step-up, and the
engine doesn't import the identity package.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from webapp.mail import links, tokens
from webapp.mail.notices import notify
from webapp.mail.outbox import enqueue
from webapp.models import User
from webapp.security import audit
from webapp.security.clients import Client


def masked(address: str) -> str:
    """`alice@example.com` → `a•••@example.com`: enough to recognise, not to harvest."""
    local, _, domain = address.partition("@")
    return f"{local[:1]}•••@{domain}" if domain else "•••"


def change_requested(s: Session, client: Client, user: User, new_email: str) -> None:
    """After the step-up (inside its unit of work, `user` locked): link to the new address, notice to the old."""
    tokens.retire(s, user.id, {tokens.CHANGE})  # one pending change at a time
    token = tokens.issue(s, user, tokens.CHANGE, new_email)
    enqueue(s, to=new_email, template="confirm_email_change", user_id=user.id,
            context={"username": user.display_name, "confirm_path": links.CONFIRM + token})
    notify(s, user, "email_change_requested", new_address=masked(new_email))
    audit.record(s, client, "email_change_requested", "success", user_id=user.id)
