"""Endpoint glue shared by every passkey ceremony: options as JSON for static/webauthn.js, bound to the step's row."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import Response

from webapp.htmx import VARY
from webapp.models import Authenticator, User
from webapp.twofactor import challenges, passkeys
from webapp.twofactor.challenges import ADD_PASSKEY, Found
from webapp.twofactor.methods import WEBAUTHN
from webapp.web import deps_of


def json_response(data: dict[str, Any], status: int = 200) -> Response:
    return Response(json.dumps(data), status_code=status, media_type="application/json",
                    headers={"Cache-Control": "no-store", "Vary": VARY})


def credential_ids(s: Session, user_id: int) -> list[str]:
    return [c for c in s.execute(select(Authenticator.credential_id).where(
        Authenticator.user_id == user_id, Authenticator.kind == WEBAUTHN)).scalars().all() if c]


def _options(s: Session, ch_id: str, user: User, purpose: str, challenge: str) -> dict[str, Any] | None:
    if not challenges.set_payload(s, ch_id, challenge):
        return None
    return {"ids": credential_ids(s, user.id), "registration": purpose == ADD_PASSKEY}


async def ceremony_options(request: Request, found: Found) -> Response:
    """A fresh WebAuthn challenge on the step's row (replacing any earlier one), and the options that carry it."""
    deps = deps_of(request)
    ch, user = found.challenge, found.user
    challenge = passkeys.new_challenge()
    known = await deps.db.write(_options, ch.id_hash, user, ch.purpose, challenge)
    if known is None:
        return json_response({"error": "This step has ended. Please start again."}, 409)
    if known["registration"]:
        options = passkeys.registration_options(deps.settings, user, known["ids"], challenge)
    else:
        options = passkeys.authentication_options(deps.settings, challenge, known["ids"])
    return json_response({"publicKey": json.loads(options)})
