"""The profile's list of methods: add a passkey, rename and remove a method (each behind the password).

Removing the last method is turning two-step verification off, so it goes through that flow (password and a
code), like the profile's "Disable" button.
"""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import Response

from webapp.account.twofa_pages import METHOD_PARTIAL, codes_page, page, passkey_add
from webapp.codestep import discard
from webapp.deps import Deps
from webapp.forms import read_form
from webapp.htmx import redirect
from webapp.identity.users import confirm_password
from webapp.models import Authenticator
from webapp.passkeystep import ceremony_options, json_response
from webapp.security import sessions
from webapp.security.clients import Client
from webapp.security.cookies import cookie_state
from webapp.twofactor import adding, challenges, methods, passkeys, recovery
from webapp.twofactor.adding import Added
from webapp.twofactor.challenges import ADD_PASSKEY, STEP_UP, Found
from webapp.twofactor.methods import WEBAUTHN
from webapp.web import client, deps_of, require_auth, use_session

GONE = "This step has ended. Please start again from your profile."


async def _found(request: Request, auth: sessions.Auth) -> Found | None:
    token = cookie_state(request).get("challenge_id")
    return await deps_of(request).db.read(challenges.find, token, STEP_UP, session_hash=auth.session.id_hash)


async def twofa_passkey_options(request: Request) -> Response:
    """Options for the ceremony of the step in progress: creating a passkey, or using one to prove it's you."""
    await read_form(request, {})
    auth = await require_auth(request)
    found = await _found(request, auth)
    if found is None or found.challenge.method != WEBAUTHN:
        return json_response({"error": GONE}, 409)
    return await ceremony_options(request, found)


async def twofa_passkey_register(request: Request) -> Response:
    form = await read_form(request, {"credential": passkeys.MAX_CREDENTIAL_JSON, "label": 64})
    auth = await require_auth(request)
    found = await _found(request, auth)
    if found is None or found.challenge.purpose != ADD_PASSKEY:
        return redirect(request, "/profile")
    deps = deps_of(request)
    expected = await deps.db.write(challenges.take_payload, found.challenge.id_hash)
    row = passkeys.new_row(deps.settings, auth.user.id, form["credential"], expected, form["label"])
    if row is None:
        return passkey_add(request, error="That passkey wasn't saved. Try again.", status=422, label=form["label"])
    added = await _store(deps, client(request), found, auth, row)
    if isinstance(added, str):
        return passkey_add(request, error=added, status=409, label=form["label"])
    cookie_state(request).set("challenge_id", None)
    use_session(request, added.session)
    if added.codes:
        return codes_page(request, added.codes, "Two-step verification is on.")
    return redirect(request, "/profile", notice=added.notice)


async def _store(deps: Deps, client: Client, found: Found, auth: sessions.Auth, row: Authenticator) -> Added | str:
    batch = None if found.user.mfa_enabled else await recovery.make_batch(
        deps.settings.secret_key, deps.settings.recovery_code_count, deps.settings.bcrypt_rounds)
    try:
        return await deps.db.write(_add_passkey, client, found.challenge.id_hash, auth, row, batch)
    except IntegrityError:
        return "This passkey is already saved."


def _add_passkey(s: Session, client: Client, ch_id: str, auth: sessions.Auth, row: Authenticator,
                 batch: recovery.Batch | None) -> Added | str:
    user = sessions.lock_user(s, auth.user.id)
    if user is None or not challenges.consume(s, ch_id):
        return GONE
    return adding.add_passkey(s, client, user, auth.session, row, batch)


async def _method(request: Request) -> tuple[sessions.Auth, methods.Method, int] | None:
    auth = await require_auth(request)
    method_id = int(request.path_params["method_id"])
    found = await deps_of(request).db.read(_method_and_count, auth.user.id, method_id)
    return (auth, *found) if found else None


def _method_and_count(s: Session, user_id: int, method_id: int) -> tuple[methods.Method, int] | None:
    row = methods.owned(s, user_id, method_id)
    return (methods.shown(row), methods.count(s, user_id)) if row else None


def _method_page(request: Request, action: str, method: methods.Method, count: int, *, error: str = "",
                 status: int = 200, label: str | None = None) -> Response:
    context = {"action": action, "method": method, "last": count <= 1, "error": error,
               "label": method.label if label is None else label}
    return page(request, METHOD_PARTIAL, context, status)


async def method_rename_form(request: Request) -> Response:
    found = await _method(request)
    return _method_page(request, "rename", found[1], found[2]) if found else redirect(request, "/profile")


async def method_remove_form(request: Request) -> Response:
    found = await _method(request)
    return _method_page(request, "remove", found[1], found[2]) if found else redirect(request, "/profile")


async def _password_ok(request: Request, auth: sessions.Auth, password: str) -> str | None:
    problem = await confirm_password(deps_of(request), client(request), auth.user, password, event="step_up")
    if problem is None:
        return None
    return "That password isn't right." if problem == "wrong" else problem


async def method_rename_submit(request: Request) -> Response:
    form = await read_form(request, {"password": 1024, "label": 64})
    found = await _method(request)
    if found is None:
        return redirect(request, "/profile")
    auth, method, count = found
    if problem := await _password_ok(request, auth, form["password"]):
        return _method_page(request, "rename", method, count, error=problem, status=422, label=form["label"])
    await deps_of(request).db.write(adding.rename, client(request), auth.user.id, method.id, form["label"])
    return redirect(request, "/profile", notice="method-renamed")


async def method_remove_submit(request: Request) -> Response:
    form = await read_form(request, {"password": 1024})
    found = await _method(request)
    if found is None:
        return redirect(request, "/profile")
    auth, method, count = found
    if count <= 1:  # the last one: that is turning two-step verification off, password and a code
        return redirect(request, "/2fa/disable")
    if problem := await _password_ok(request, auth, form["password"]):
        return _method_page(request, "remove", method, count, error=problem, status=422)
    await discard(request)
    result = await deps_of(request).db.write(adding.remove, client(request), auth, method.id)
    if result == "last":
        return redirect(request, "/2fa/disable")
    if isinstance(result, str):
        return redirect(request, "/profile")
    use_session(request, result)
    return redirect(request, "/profile", notice="method-removed")
