"""The route table: one place to see every URL the app answers."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from webapp.accounts import profile
from webapp.accounts import routes as accounts
from webapp.settings import Settings


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
        Route("/sessions/end-all", profile.sessions_end_all, methods=["POST"], name="sessions_end_all"),
        Mount("/static", StaticFiles(directory=settings.static_dir), name="static"),
    ]
    return routes
