"""The ceiling: a bare Starlette + Jinja app serving a fixed fragment, run by the same launcher and load generator.

Everything the app does is reported as a fraction of what this does on the same machine in the same run.
"""

from __future__ import annotations

import secrets

import jinja2
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.templating import Jinja2Templates

# About the size and shape of the login form fragment: one form, a token, a few fields.
FRAGMENT = """<section id="auth-step" aria-labelledby="auth-step-heading">
  <h1 id="auth-step-heading">{{ title }}</h1>
  <form method="post" action="/login" hx-post="/login" hx-target="#auth-step" hx-swap="outerHTML">
    <input type="hidden" name="csrf_token" value="{{ token }}">
    {% for name, label in fields %}
    <div class="field"><label for="{{ name }}">{{ label }}</label>
      <input id="{{ name }}" name="{{ name }}" type="text" required></div>
    {% endfor %}
    <button type="submit">Sign in</button>
  </form>
</section>
"""


def create_ceiling_app() -> Starlette:
    env = jinja2.Environment(loader=jinja2.DictLoader({"fragment.html": FRAGMENT}), autoescape=True)
    templates = Jinja2Templates(env=env)
    token = secrets.token_urlsafe(32)
    fields = [("username", "Username"), ("password", "Password")]

    async def fragment(request: Request) -> Response:
        return templates.TemplateResponse(request, "fragment.html", {"title": "Sign in", "token": token,
                                                                     "fields": fields})

    async def healthz(request: Request) -> Response:
        return Response("ok", media_type="text/plain")

    return Starlette(routes=[Route("/fragment", fragment), Route("/healthz", healthz)])
