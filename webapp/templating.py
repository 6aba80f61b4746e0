"""The Jinja environment: autoescape everywhere, path-only url_for, and the few globals every page needs."""

from __future__ import annotations

from typing import Any

import jinja2
from starlette.requests import Request
from starlette.templating import Jinja2Templates

from webapp.notices import notice_text
from webapp.security.cookies import cookie_state
from webapp.settings import Settings


def _context(request: Request) -> dict[str, Any]:
    settings: Settings = request.app.state.settings
    auth = getattr(request.state, "auth", None)
    return {
        "app_name": settings.app_name,
        "min_length": settings.password_min_length,
        "auth": auth,
        "user": auth.user if auth else None,
        # Exactly when the dev_outbox route exists and answers (never in production), so base.html can link it.
        "dev_backend": not settings.production and (
            getattr(request.app.state, "verify_name", "") == "development"
            or getattr(getattr(request.app.state, "mail", None), "name", "") == "development"),
        "notice": notice_text(request.query_params.get("notice")),
        "csrf_token": lambda: cookie_state(request).csrf(),
        # WebAuthn works only at the origin its RP ID belongs to: elsewhere the passkey controls explain why not.
        "app_origin": settings.app_base_url,
        "passkeys_here": bool(settings.app_base_url) and str(request.base_url).rstrip("/") == settings.app_base_url,
    }


def make_templates(settings: Settings) -> Jinja2Templates:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(settings.templates_dir),
        autoescape=True,  # every template, whatever its extension (R-C7)
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=not settings.production,  # no stat() of every template on every render in production
    )
    templates = Jinja2Templates(env=env, context_processors=[_context])

    # Routes never change after start-up, and Starlette finds a name by trying every route in turn (about a
    # twentieth of a millisecond per call, ten calls a page): each path is looked up once per app.
    paths: dict[tuple[int, str, tuple[tuple[str, str], ...]], str] = {}

    # Starlette's url_for is absolute; behind a proxy it can say http:// and htmx's same-origin fetch refuses it.
    @jinja2.pass_context
    def url_for(ctx: dict[str, Any], name: str, /, **params: Any) -> str:
        request: Request = ctx["request"]
        key = (id(request.app), name, tuple(sorted((k, str(v)) for k, v in params.items())))
        path = paths.get(key)
        if path is None:
            path = paths[key] = str(request.app.url_path_for(name, **params))
        return path

    env.globals["url_for"] = url_for  # static files too: url_for('static', path='app.css')
    return templates
