"""Every full page the app answers has exactly one <h1>; every fragment has none (partials use <h2>).

The walk requests every GET route (from the app's own route table), as a page and as an htmx fragment, for six
kinds of visitor: anonymous, signed in, choosing and then confirming a phone, with two-step verification on, and at
the sign-in code step. It adds the pages only a POST produces (recovery codes, 422 forms) and the error pages, and
checks that it reached every page template under templates/ and every state of the two-step settings page, so a
new page cannot slip past it.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from starlette.applications import Starlette
from starlette.routing import Route
from starlette.testclient import TestClient

from tests.support import (
    NO_JS,
    PARTIAL,
    PASSWORD,
    CountingVerify,
    csrf,
    follow,
    form_post,
    login,
    make_2fa_user,
    signup,
)
from webapp.account.twofa import TITLES as ACTIONS
from webapp.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
H1 = re.compile(r"<h1\b", re.I)
# Path parameters for the GET routes that have them; a new parameterised route must be added here. Mailed links
# get an unknown token here (the "link no longer works" page); the walk also opens real ones from the dev outbox.
PATH_PARAMS = {"twofa_stepup_form": [{"action": action} for action in ACTIONS],
               # alice's phone is the first method the walk adds (ids restart at 1 on both databases)
               "method_rename_form": [{"method_id": 1}], "method_remove_form": [{"method_id": 1}],
               **{name: [{"token": "no-such-token"}] for name in ("reset_form", "verify_link", "confirm_link",
                                                                   "not_me_form")}}
NOT_HTML = {"healthz"}  # plain text


@dataclass
class Seen:
    """What the walk rendered: problems found, page templates and two-step states reached, routes requested."""

    problems: list[str] = field(default_factory=list)
    pages: set[str] = field(default_factory=set)
    partials: set[str] = field(default_factory=set)
    routes: set[str] = field(default_factory=set)

    def check(self, label: str, response: object) -> None:
        text: str = response.text
        if not response.headers.get("content-type", "").startswith("text/html"):
            return
        count = len(H1.findall(text))
        full = "<html" in text
        template = getattr(response, "template", None)
        name = template.name if template is not None else "?"
        if full:
            self.pages.add(name)
            context = getattr(response, "context", None) or {}
            if "partial" in context:
                self.partials.add(context["partial"])
        if full and count != 1:
            self.problems.append(f"{label}: full page {name} has {count} <h1>")
        if not full and count:
            self.problems.append(f"{label}: fragment {name} has {count} <h1> (partials use <h2>)")


def get_routes(app: Starlette) -> Iterator[tuple[str, str]]:
    """(route name, path) for every GET route that answers HTML."""
    for route in app.routes:
        if not isinstance(route, Route) or "GET" not in (route.methods or set()) or route.name in NOT_HTML:
            continue
        if route.param_convertors:
            assert route.name in PATH_PARAMS, f"{route.path}: add its path parameters to PATH_PARAMS"
            for params in PATH_PARAMS[route.name]:
                yield route.name, route.url_path_for(route.name, **params)
        else:
            yield route.name, route.path


def walk(client: TestClient, app: Starlette, seen: Seen, who: str) -> None:
    """GET every route, as a page (following redirects to the page they end on) and as an htmx fragment."""
    for name, path in get_routes(app):
        seen.routes.add(name)
        for kind, headers in (("page", NO_JS), ("fragment", PARTIAL)):
            response = client.get(path, headers=headers, follow_redirects=kind == "page")
            seen.check(f"{who} GET {path} ({kind})", response)


def page_templates() -> set[str]:
    """Every template that is a page: not a partial (_name.html), not the layout."""
    names = {p.relative_to(ROOT / "templates").as_posix() for p in (ROOT / "templates").rglob("*.html")}
    # Mail templates (templates/mail/) are messages, not pages: tests/mail checks them.
    return {n for n in names if not n.rsplit("/", 1)[-1].startswith("_") and n != "base.html"
            and not n.startswith("mail/")}


def mailed_links(client: TestClient, count: int) -> list[str]:
    """The app paths of the links in the development outbox, once `count` mails have arrived (bounded wait)."""
    mailbox = client.app.state.mail  # type: ignore[attr-defined]
    deadline = time.monotonic() + 10
    while len(mailbox.mails) < count and time.monotonic() < deadline:
        time.sleep(0.02)
    return [link.split("://", 1)[1].split("/", 1)[1] for mail in mailbox.mails for link in mail.links]


def test_every_page_has_exactly_one_h1_and_every_fragment_none(client: TestClient, other_client: TestClient,
                                                                app: Starlette, settings: Settings,
                                                                verify: CountingVerify) -> None:
    seen = Seen()
    walk(client, app, seen, "anonymous")
    seen.check("404", client.get("/no-such-page"))
    seen.check("404 fragment", client.get("/no-such-page", headers=PARTIAL))
    r = client.post("/login", data={"csrf_token": csrf(client), "username": "nobody", "password": "wrong"})
    seen.check("wrong password", r)
    r = client.post("/register", data={"csrf_token": csrf(client, "/register"), "username": "x"})
    seen.check("register errors", r)

    signup(client)  # alice, signed in, two-step verification off
    walk(client, app, seen, "signed in")
    r = form_post(client, "/account/password", client.get("/account/password").text, {"current_password": "no"})
    seen.check("password change errors", r)
    r = form_post(client, "/2fa/enable", client.get("/2fa/enable").text, {"password": "wrong"})
    seen.check("step-up wrong password", r)
    r = follow(client, form_post(client, "/2fa/enable", client.get("/2fa/enable").text, {"password": PASSWORD}))
    walk(client, app, seen, "choosing a phone")  # GET /2fa is the phone step
    r = form_post(client, "/2fa/phone-number", r.text, {"region": "US", "phone": "12"})
    seen.check("bad phone number", r)
    r = follow(client, form_post(client, "/2fa/phone-number", r.text, {"region": "US", "phone": "(415) 555-0123"}))
    walk(client, app, seen, "confirming a phone")  # GET /2fa is the code step
    r = form_post(client, "/2fa/verify", r.text, {"code": verify.code})
    seen.check("new recovery codes", r)
    walk(client, app, seen, "signed in with two-step verification")
    for action in ("app", "passkey"):  # a new app (QR code and key) and a new passkey are states of GET /2fa
        follow(client, form_post(client, f"/2fa/{action}", client.get(f"/2fa/{action}").text, {"password": PASSWORD}))
        walk(client, app, seen, f"adding: {action}")
        form_post(client, "/2fa/cancel", client.get("/2fa").text)
    r = follow(client, form_post(client, "/2fa/disable", client.get("/2fa/disable").text, {"password": PASSWORD}))
    walk(client, app, seen, "proving it's you to turn two-step off")  # GET /2fa/another-way is a page now
    for _ in range(settings.mfa_max_checks):  # wrong codes until the step is over: the status state as a page
        r = form_post(client, "/2fa/verify", r.text, {"code": "1"})
    seen.check("too many wrong codes", r)

    # Mailed links, opened for real: verify (registration), "This wasn't me" (2FA on), reset, change of address.
    r = form_post(client, "/password/forgot", client.get("/password/forgot").text, {"email": "nope"})
    seen.check("forgot errors", r)
    seen.check("forgot sent", form_post(client, "/password/forgot", r.text, {"email": "alice@example.com"},
                                        PARTIAL))
    r = form_post(client, "/account/email", client.get("/account/email").text, {"email": "x", "password": ""})
    seen.check("email change errors", r)
    for path in {"/" + p for p in mailed_links(client, 3)}:  # verify, 2FA on (its "This wasn't me"), reset
        for kind, headers in (("page", NO_JS), ("fragment", PARTIAL)):
            seen.check(f"mailed link {path.split('/')[1]} ({kind})", client.get(path, headers=headers))
    r = form_post(client, "/account/email", client.get("/account/email").text, {"email": "new@example.com",
                                                                                 "password": PASSWORD})
    seen.check("email change code step", follow(client, r))

    make_2fa_user(other_client, settings, "bob", phone="+14155550199")
    login(other_client, "bob")  # password right: the code step is pending
    walk(other_client, app, seen, "at the code step")
    r = other_client.post("/login/verify", data={"csrf_token": csrf(other_client, "/login/verify"), "code": "1"})
    seen.check("wrong code", r)

    assert not seen.problems, "\n".join(seen.problems)
    assert seen.routes == {name for name, _ in get_routes(app)}
    assert page_templates() <= seen.pages, f"pages never rendered: {page_templates() - seen.pages}"
    states = {p.relative_to(ROOT / "templates").as_posix() for p in (ROOT / "templates").glob("account/_twofa_*.html")}
    assert states <= seen.partials, f"two-step states never rendered as a page: {states - seen.partials}"


@dataclass
class Canned:
    text: str
    headers: dict[str, str]


def test_the_check_fails_on_a_page_without_h1_or_with_two(client: TestClient) -> None:
    """The check itself: a page with no <h1>, one with two, and a fragment with one are all reported."""
    seen = Seen()
    html = {"content-type": "text/html; charset=utf-8"}
    page = client.get("/login").text
    assert len(H1.findall(page)) == 1
    seen.check("no h1", Canned(page.replace("<h1", "<h2"), html))
    seen.check("two h1", Canned(page + "<h1>Again</h1>", html))
    seen.check("fragment with h1", Canned(client.get("/login", headers=PARTIAL).text + "<h1>x</h1>", html))
    assert len(seen.problems) == 3, seen.problems
