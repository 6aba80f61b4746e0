"""Mail from Jinja templates under templates/mail/: a text part and an HTML part, a clear subject, no tracking.

Links in the context are app paths, made absolute here with APP_BASE_URL, never with a request's Host. The HTML
part has no images, no remote resources and no inline styles: nothing that reports an open.
"""

from __future__ import annotations

import email.utils
from email.message import EmailMessage
from typing import Any

import jinja2

from webapp.mail.outbox import Claimed
from webapp.settings import Settings

SUBJECTS = {
    "verify_email": "Confirm your email address",
    "reset_password": "Reset your password",
    "confirm_email_change": "Confirm your new email address",
    "second_step": "Someone entered your password but not the code",
}
NOTICE_SUBJECTS = {
    "password_changed": "Your password was changed",
    "password_reset": "Your password was reset",
    "mfa_enabled": "Two-step verification was turned on",
    "mfa_disabled": "Two-step verification was turned off",
    "phone_changed": "Your two-step verification phone number was changed",
    "codes_regenerated": "New recovery codes were created",
    "recovery_used": "A recovery code was used",
    "email_change_requested": "Your email address is being changed",
    "email_changed": "Your email address was changed",
    # For operations (`users reset-2fa`): notices.notify(s, user, "mfa_reset") in the unit of work that resets it.
    "mfa_reset": "Two-step verification was reset",
}


def subject_for(template: str, context: dict[str, Any]) -> str:
    if template == "notice":
        return NOTICE_SUBJECTS.get(str(context.get("kind")), "Security notice")
    return SUBJECTS[template]


class MailRenderer:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        loader = jinja2.FileSystemLoader(settings.templates_dir / "mail")
        common = {"undefined": jinja2.StrictUndefined, "trim_blocks": True, "lstrip_blocks": True}
        self.html = jinja2.Environment(loader=loader, autoescape=True, **common)  # type: ignore[arg-type]
        # Plain text is not HTML: escaping would turn "&" into "&amp;" in the mail.
        self.text = jinja2.Environment(loader=loader, autoescape=False, **common)  # type: ignore[arg-type]  # noqa: S701

    def link(self, path: str) -> str:
        assert path.startswith("/") and not path.startswith("//"), path
        return self.settings.app_base_url + path

    def render(self, row: Claimed) -> EmailMessage:
        context = {**row.context, "app_name": self.settings.app_name, "link": self.link,
                   "home": self.settings.app_base_url + "/"}
        message = EmailMessage()
        message["From"] = self.settings.mail_from
        message["To"] = row.to_addr
        message["Subject"] = subject_for(row.template, row.context)
        message["Date"] = email.utils.formatdate(usegmt=True)
        message["Message-ID"] = f"<{row.message_key}@{self._domain()}>"
        message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation replies to a security mail
        message.set_content(self.text.get_template(f"{row.template}.txt").render(context))
        message.add_alternative(self.html.get_template(f"{row.template}.html").render(context), subtype="html")
        return message

    def _domain(self) -> str:
        address = email.utils.parseaddr(self.settings.mail_from)[1]
        return address.rpartition("@")[2] or "localhost"
