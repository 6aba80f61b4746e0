"""The route table: one place to see every URL the app answers. Route names match handler names."""

from __future__ import annotations

from starlette.middleware.gzip import GZipMiddleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from webapp.account import another_way as another_way_2fa
from webapp.account import email, methods, not_me, password, phone, profile, register, remembered, twofa
from webapp.htmx import redirect
from webapp.mail import links
from webapp.monitoring import metrics_scrape, readyz
from webapp.settings import Settings
from webapp.signin import another_way, code_step, forgot, passkey_signin, sign_out
from webapp.signin import password as password_step
from webapp.verify.outbox import dev_outbox
from webapp.web import load_auth


async def healthz(request: Request) -> Response:
    return PlainTextResponse("ok", headers={"Cache-Control": "no-store"})


async def home(request: Request) -> Response:
    return redirect(request, "/profile" if await load_auth(request) else "/login")


def _get(path: str, endpoint: object) -> Route:
    return Route(path, endpoint, methods=["GET"], name=endpoint.__name__)  # type: ignore[arg-type,attr-defined]


def _post(path: str, endpoint: object) -> Route:
    return Route(path, endpoint, methods=["POST"], name=endpoint.__name__)  # type: ignore[arg-type,attr-defined]


def build_routes(settings: Settings) -> list[Route | Mount]:
    routes: list[Route | Mount] = [
        _get("/", home),
        _get("/healthz", healthz),  # liveness: the process answers; nothing else is checked
        _get("/readyz", readyz),
        _get("/metrics", metrics_scrape),
        _get("/register", register.register_form),
        _post("/register", register.register_submit),
        _get("/login", password_step.login_form),
        _post("/login", password_step.login_submit),
        _get("/login/verify", code_step.verify_form),
        _post("/login/verify", code_step.verify_submit),
        _post("/login/resend", code_step.verify_resend),
        _post("/login/call", code_step.verify_call),
        _get("/login/recovery", code_step.recovery_form),
        _post("/login/recovery", code_step.recovery_submit),
        _post("/login/cancel", code_step.verify_cancel),
        _post("/login/passkey/options", code_step.passkey_options),
        _get("/login/another-way", another_way.another_way_form),
        _post("/login/another-way", another_way.another_way_submit),
        _post("/login/passkey-only/options", passkey_signin.passwordless_options),
        _post("/login/passkey-only", passkey_signin.passwordless_submit),
        _post("/logout", sign_out.logout_submit),
        _get("/password/forgot", forgot.forgot_form),
        _post("/password/forgot", forgot.forgot_submit),
        _get("/password/forgot/sent", forgot.forgot_sent),
        # Mailed links (paths from webapp.mail.links): opening one changes nothing, its form's POST does.
        _get(links.RESET + "{token:str}", forgot.reset_form),
        _post(links.RESET + "{token:str}", forgot.reset_submit),
        _get(links.VERIFY + "{token:str}", email.verify_link),
        _post(links.VERIFY + "{token:str}", email.verify_link_submit),
        _get(links.CONFIRM + "{token:str}", email.confirm_link),
        _post(links.CONFIRM + "{token:str}", email.confirm_link_submit),
        _get(links.NOT_ME + "{token:str}", not_me.not_me_form),
        _post(links.NOT_ME + "{token:str}", not_me.not_me_submit),
        _get("/account/secured", not_me.not_me_done),
        _get("/profile", profile.profile_show),
        _post("/sessions/end-all", profile.sessions_end_all),
        _get("/account/password", password.password_form),
        _post("/account/password", password.password_submit),
        _get("/account/email", email.email_form),
        _post("/account/email", email.email_submit),
        _post("/account/email/verify", email.email_resend),
        _get("/2fa", twofa.twofa_step),
        _post("/2fa/phone-number", phone.twofa_phone),
        _post("/2fa/verify", twofa.twofa_verify),
        _post("/2fa/recovery", twofa.twofa_recovery),
        _post("/2fa/resend", twofa.twofa_resend),
        _post("/2fa/call", twofa.twofa_call),
        _post("/2fa/cancel", twofa.twofa_cancel),
        _get("/2fa/recovery-used", twofa.twofa_recovery_used),
        _get("/2fa/another-way", another_way_2fa.twofa_another_way_form),
        _post("/2fa/another-way", another_way_2fa.twofa_another_way_submit),
        _post("/2fa/passkey/options", methods.twofa_passkey_options),
        _post("/2fa/passkey/register", methods.twofa_passkey_register),
        _get("/2fa/methods/{method_id:int}/rename", methods.method_rename_form),
        _post("/2fa/methods/{method_id:int}/rename", methods.method_rename_submit),
        _get("/2fa/methods/{method_id:int}/remove", methods.method_remove_form),
        _post("/2fa/methods/{method_id:int}/remove", methods.method_remove_submit),
        _post("/browsers/{browser_id:int}/forget", remembered.browser_forget),
        _post("/browsers/forget-all", remembered.browsers_forget_all),
        _get("/2fa/{action:str}", twofa.twofa_stepup_form),
        _post("/2fa/{action:str}", twofa.twofa_stepup_submit),
        # Compress only static files: HTML pages carry CSRF tokens, and compressing secrets invites BREACH.
        Mount("/static", GZipMiddleware(StaticFiles(directory=settings.static_dir), minimum_size=500), name="static"),
    ]
    if not settings.production:
        routes.insert(0, _get("/dev/outbox", dev_outbox))
    return routes
