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

    # Starlette's url_for is absolute; behind a proxy it can say http:// and htmx's same-origin fetch refuses it.
    @jinja2.pass_context
    def url_for(ctx: dict[str, Any], name: str, /, **params: Any) -> str:
        request: Request = ctx["request"]
        return str(request.app.url_path_for(name, **params))

    env.globals["url_for"] = url_for  # static files too: url_for('static', path='app.css')
    return templates
