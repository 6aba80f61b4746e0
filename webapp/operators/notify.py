"""Telling a user by mail that an operator changed their account: the hook the mail outbox plugs into.

There is no mail outbox yet (it comes with the mail issue). Until then this only logs that no mail went out, and
the user still sees the change on the profile (a banner at the next sign-in and a line in the security activity).
When the outbox exists, enqueue the mail here: every operator action already calls this after its unit of work
committed, so the mail goes out at most once per action.
"""

from __future__ import annotations

import logging

from webapp.deps import Deps

log = logging.getLogger("webapp.operators")


async def tell_user(deps: Deps, user_id: int, kind: str) -> bool:
    """Queue a mail about `kind` for the user; False while there is no mail outbox to queue it in."""
    log.info("operator action: no mail sent (no mail outbox yet)",
             extra={"event": "operator_mail_skipped", "user_id": user_id, "kind": kind})
    return False
