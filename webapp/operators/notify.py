"""Telling a user by mail that an operator changed their account.

Resetting two-step verification mails the owner from inside its own unit of work (`notices.notify`), so the mail
exists exactly when the change does. The other actions (unlock, sign out everywhere, disable, enable) show up on the
profile's security activity; they send no mail, since each is what the owner asked support for.
"""

from __future__ import annotations

import logging

from webapp.deps import Deps

log = logging.getLogger("webapp.operators")
MAILED_WITH_THE_CHANGE = frozenset({"mfa_reset"})


async def tell_user(deps: Deps, user_id: int, kind: str) -> bool:
    """Whether the owner was mailed about `kind` (queued in the action's own unit of work)."""
    if kind in MAILED_WITH_THE_CHANGE:
        return True
    log.info("operator action: no mail for this kind", extra={"event": "operator_mail_skipped", "user_id": user_id,
                                                               "kind": kind})
    return False
