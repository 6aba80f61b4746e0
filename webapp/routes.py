"""The route table: one place to see every URL the app answers."""

from __future__ import annotations

from starlette.middleware.gzip import GZipMiddleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from webapp.accounts import password_change, profile
from webapp.accounts import routes as accounts
from webapp.settings import Settings
from webapp.twofactor import login_step, manage
from webapp.verify.outbox import dev_outbox


async def healthz(request: Request) -> Response:
    return PlainTextResponse("ok", headers={"Cache-Control": "no-store"})


async def home(request: Request) -> Response:
    from webapp.htmx import redirect
    from webapp.security.sessions import load_auth

    return redirect(request, "/profile" if await load_auth(request) else "/login")


def build_routes(settings: Settings) -> list[Route | Mount]:
    routes: list[Route | Mount] = [
        Route("/", home, name="home"),
        Route("/healthz", healthz, name="healthz"),
        Route("/register", accounts.register_form, methods=["GET"], name="register_form"),
        Route("/register", accounts.register_submit, methods=["POST"], name="register_submit"),
        Route("/login", accounts.login_form, methods=["GET"], name="login_form"),
        Route("/login", accounts.login_submit, methods=["POST"], name="login_submit"),
        Route("/logout", accounts.logout_submit, methods=["POST"], name="logout_submit"),
        Route("/profile", profile.profile_show, methods=["GET"], name="profile_show"),
        Route("/account/password", password_change.password_form, methods=["GET"], name="password_form"),
        Route("/account/password", password_change.password_submit, methods=["POST"], name="password_submit"),
        Route("/sessions/end-all", profile.sessions_end_all, methods=["POST"], name="sessions_end_all"),
        Route("/login/verify", login_step.verify_form, methods=["GET"], name="verify_form"),
        Route("/login/verify", login_step.verify_submit, methods=["POST"], name="verify_submit"),
        Route("/login/resend", login_step.resend_submit, methods=["POST"], name="verify_resend"),
        Route("/login/call", login_step.call_submit, methods=["POST"], name="verify_call"),
        Route("/login/recovery", login_step.recovery_form, methods=["GET"], name="recovery_form"),
        Route("/login/recovery", login_step.recovery_submit, methods=["POST"], name="recovery_submit"),
        Route("/login/cancel", login_step.cancel_submit, methods=["POST"], name="verify_cancel"),
        Route("/2fa", manage.current_step, methods=["GET"], name="twofa_step"),
        Route("/2fa/phone-number", manage.phone_submit, methods=["POST"], name="twofa_phone"),
        Route("/2fa/verify", manage.verify_submit, methods=["POST"], name="twofa_verify"),
        Route("/2fa/recovery", manage.recovery_submit, methods=["POST"], name="twofa_recovery"),
        Route("/2fa/resend", manage.resend_submit, methods=["POST"], name="twofa_resend"),
        Route("/2fa/call", manage.call_submit, methods=["POST"], name="twofa_call"),
        Route("/2fa/cancel", manage.cancel_submit, methods=["POST"], name="twofa_cancel"),
        Route("/2fa/recovery-used", manage.recovery_used, methods=["GET"], name="twofa_recovery_used"),
        Route("/2fa/{action:str}", manage.stepup_form, methods=["GET"], name="twofa_stepup_form"),
        Route("/2fa/{action:str}", manage.stepup_submit, methods=["POST"], name="twofa_stepup_submit"),
        # Compress only static files: HTML pages carry CSRF tokens, and compressing secrets invites BREACH.
        Mount("/static", GZipMiddleware(StaticFiles(directory=settings.static_dir), minimum_size=500), name="static"),
    ]
    if not settings.production:
        routes.insert(0, Route("/dev/outbox", dev_outbox, methods=["GET"], name="dev_outbox"))
    return routes
