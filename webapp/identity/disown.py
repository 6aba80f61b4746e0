""""This wasn't me": the owner, signed in or not, ends everything someone else may have started.

Opening the link changes nothing; confirming it ends every session and open code step, kills reset and
change-of-address links (and a pending change with them), forgets remembered devices, and writes an audit row.
The password stays as it is: the page sends the owner to reset it, which needs the mailbox, not the password.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from webapp.deps import Deps
from webapp.mail import tokens
from webapp.models import SecurityNotice
from webapp.security import audit, sessions
from webapp.security.clients import Client
from webapp.twofactor import browsers


async def disown(deps: Deps, client: Client, token: str) -> bool:
    """False when the link is unknown, used or expired."""
    return await deps.db.write(_disown, client, token)


def _disown(s: Session, client: Client, token: str) -> bool:
    found = tokens.find(s, token, tokens.NOT_ME)
    user = sessions.lock_user(s, found.user.id) if found else None
    if found is None or user is None or not tokens.use(s, found.token.id_hash, user):
        return False
    sessions.end_all(s, user)
    tokens.retire(s, user.id, {tokens.RESET, tokens.CHANGE})
    browsers.forget_all(s, user.id)
    audit.record(s, client, "not_me_confirmed", "success", user_id=user.id, scope="all")
    s.add(SecurityNotice(user_id=user.id, kind="not_me"))
    return True
