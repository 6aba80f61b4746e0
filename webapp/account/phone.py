"""The phone step of two-step settings: the number to confirm, when adding a phone or after proving the old one."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from webapp.account.twofa_pages import PHONE_PARTIAL, next_step, page
from webapp.codestep import cancel_verifications, send_and_render
from webapp.forms import read_form
from webapp.htmx import redirect
from webapp.security.cookies import cookie_state
from webapp.twofactor import challenges, stepup
from webapp.twofactor.challenges import ENROLL, NEW_NUMBER
from webapp.twofactor.phones import MAX_PHONE_INPUT, country_options, parse_phone, region_from_language
from webapp.web import deps_of, require_auth, use_challenge


def phone_form(request: Request, *, values: dict[str, str] | None = None, error: str = "", purpose: str = ENROLL,
               status: int = 200) -> Response:
    settings = deps_of(request).settings
    values = values or {}
    region = values.get("region") or region_from_language(
        request.headers.get("accept-language", ""), settings.phone_allowed_regions, settings.phone_default_region)
    context = {"countries": country_options(settings.phone_allowed_regions), "region": region,
               "phone": values.get("phone", ""), "error": error, "purpose": purpose}
    return page(request, PHONE_PARTIAL, context, status)


async def twofa_phone(request: Request) -> Response:
    form = await read_form(request, {"region": 4, "phone": 64})
    auth = await require_auth(request)
    token = cookie_state(request).get("challenge_id")
    found = await deps_of(request).db.read(challenges.find, token, NEW_NUMBER, session_hash=auth.session.id_hash)
    if found is None:
        return redirect(request, "/profile")
    deps = deps_of(request)
    purpose = found.challenge.purpose
    e164, problem = parse_phone(form["phone"], form["region"].upper(), deps.settings.phone_allowed_regions)
    if "phone" in form.errors:  # over-long input arrives empty: say why, not "Enter a phone number" (R-V1)
        e164, problem = None, f"A phone number has at most {MAX_PHONE_INPUT} characters."
    if problem or not e164:
        return phone_form(request, values=form.values, error=problem or form.errors.get("phone", ""),
                          purpose=purpose, status=422)
    begun = await deps.db.write(stepup.choose_number, deps.settings, found, e164)
    if begun.problem == "changed" or (begun.step is None and not begun.problem):
        return redirect(request, "/2fa")
    if begun.step is None:
        return phone_form(request, values=form.values, error=begun.problem, purpose=purpose, status=422)
    use_challenge(request, begun.step.token)
    await cancel_verifications(request, begun.stale_sids)
    return next_step(request, await send_and_render(request, begun.step.id_hash), notice="code-sent")
