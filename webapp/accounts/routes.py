"""Register, sign in (password step) and sign out."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from starlette.requests import Request
from starlette.responses import Response

from webapp.accounts.passwords import check_password, hash_password, password_problem
from webapp.accounts.usernames import canonical, email_problem, username_problem
from webapp.forms import Form, read_form
from webapp.htmx import redirect, render
from webapp.models import User
from webapp.security import throttle
from webapp.security.audit import audit
from webapp.security.clients import client_ip
from webapp.security.cookies import cookie_state
from webapp.security.redirects import safe_next
from webapp.security.sessions import hash_token, load_auth, revoke_session, start_session
from webapp.settings import Settings
from webapp.twofactor import login_step
from webapp.twofactor.checking import lock_left, locked_message

REGISTER_FIELDS = {"username": 64, "email": 254, "password": 1024, "password_confirm": 1024}
LOGIN_FIELDS = {"username": 64, "password": 1024, "remember": 8, "next": 512}
LOGIN_ERROR = "Incorrect username or password."


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def _register_page(request: Request, form: Form, status: int = 200, retry_after: int = 0) -> Response:
    headers = {"Retry-After": str(retry_after)} if retry_after else None
    return render(request, "account/register.html", "account/_register_form.html", {"form": form}, status, headers)


async def register_form(request: Request) -> Response:
    if await load_auth(request):
        return redirect(request, "/profile")
    return _register_page(request, Form(values={}))


async def register_submit(request: Request) -> Response:
    settings = _settings(request)
    form = await read_form(request, REGISTER_FIELDS, {"password_confirm": "Confirmation"})
    async with request.app.state.db.session() as s:
        ip_key = throttle.throttle_key(settings.secret_key, "register-ip", client_ip(request))
        verdict = await throttle.hit(s, ip_key, settings.registrations_per_ip_per_hour, 3600)
    if not verdict.allowed:
        await audit(request, "excess_rate_limit_exceeded", "failure", limit="register-ip")
        minutes = verdict.retry_after // 60 + 1
        form.error("username", f"Too many new accounts from this network. Try again in {minutes} minutes.")
        return _register_page(request, _cleared(form), 429, verdict.retry_after)
    username = canonical(form["username"])
    if problem := username_problem(form["username"]):
        form.error("username", problem)
    if problem := email_problem(form["email"]):
        form.error("email", problem)
    if "password" not in form.errors:
        if problem := await password_problem(settings, form["password"], username):
            form.error("password", problem)
        elif form["password"] != form["password_confirm"]:
            form.error("password_confirm", "The two passwords don't match.")
    if form.ok:
        async with request.app.state.db.session() as s:
            taken = (await s.execute(select(User.id).where(User.username == username))).first()
        if taken:
            form.error("username", "That username is taken; choose another.")
    if not form.ok:
        return _register_page(request, _cleared(form), 422)
    password_hash = await hash_password(settings, form["password"])
    try:
        async with request.app.state.db.session() as s:
            user = User(username=username, display_name=form["username"].strip()[:32], email=form["email"].strip(),
                        password_hash=password_hash, pepper_id=settings.pepper_id)
            s.add(user)
            await s.flush()
            await audit(request, "user_created", "success", user_id=user.id, session=s)
    except IntegrityError:
        form.error("username", "That username is taken; choose another.")
        return _register_page(request, _cleared(form), 422)
    return redirect(request, "/login", notice="registered")


def _cleared(form: Form) -> Form:
    """Keep what the user typed, except secrets (htmx style guide §2.5)."""
    for name in ("password", "password_confirm"):
        form.values.pop(name, None)
    return form


def _login_page(request: Request, form: Form, status: int = 200, error: str | None = None,
                retry_after: int = 0) -> Response:
    headers = {"Retry-After": str(retry_after)} if retry_after else None
    context = {"form": form, "error": error, "next": safe_next(form["next"] or request.query_params.get("next"))}
    return render(request, "signin/login.html", "signin/_password_step.html", context, status, headers)


async def login_form(request: Request) -> Response:
    if await load_auth(request):
        return redirect(request, safe_next(request.query_params.get("next")))
    return _login_page(request, Form(values={"next": request.query_params.get("next", "")}))


async def login_submit(request: Request) -> Response:
    settings = _settings(request)
    form = await read_form(request, LOGIN_FIELDS)
    # An unusable password field (too long, control characters) is an ordinary failed sign-in (R-P4).
    password = form.values.pop("password", "")
    form.errors.clear()
    form.values["next"] = safe_next(form["next"] or request.query_params.get("next"))
    return await _authenticate(request, settings, form, password)


async def _authenticate(request: Request, settings: Settings, form: Form, password: str) -> Response:
    username = canonical(form["username"])
    user_key = throttle.throttle_key(settings.secret_key, "login-user", username)
    subject = user_key.split(":", 1)[1][:16]
    async with request.app.state.db.session() as s:
        ip_key = throttle.throttle_key(settings.secret_key, "login-ip", client_ip(request))
        ip_verdict = await throttle.hit(s, ip_key, settings.ip_requests_per_minute, 60)
        locked = await throttle.locked_for(s, user_key) if ip_verdict.allowed else 0
    if not ip_verdict.allowed or locked:
        wait = ip_verdict.retry_after or locked
        await audit(request, "excess_rate_limit_exceeded" if not ip_verdict.allowed else "authn_login_fail", "failure",
                    subject_hash=subject, reason="ip-limit" if not ip_verdict.allowed else "locked")
        minutes = (wait + 59) // 60
        message = f"Too many sign-in attempts. Try again in {minutes} minute{'s' if minutes != 1 else ''}."
        return _login_page(request, form, 429, message, wait)

    async with request.app.state.db.session() as s:
        user = (await s.execute(select(User).where(User.username == username))).scalar_one_or_none()
    # Equal bcrypt work whether or not the account exists (R-L4).
    hashed = user.password_hash if user else request.app.state.dummy_hash
    valid = await check_password(settings, password, hashed) and user is not None
    async with request.app.state.db.session() as s:
        if not valid or user is None:
            just_locked = await throttle.record_failure(s, user_key, settings.login_max_failures, settings.login_lock_s)
            await audit(request, "authn_login_fail", "failure", user_id=user.id if user else None,
                        subject_hash=subject, factor="password", session=s)
            if just_locked:
                await audit(request, "authn_login_lock", "failure", user_id=user.id if user else None,
                            subject_hash=subject, session=s)
            return _login_page(request, form, 422, LOGIN_ERROR)
        earlier_failures = await throttle.failures(s, user_key)
        await throttle.reset(s, user_key)
        user = await s.merge(user)
        remember = form["remember"] in ("1", "on", "true")
        event = "authn_login_successafterfail" if earlier_failures else "authn_login_success"
        if user.mfa_enabled:
            if wait := lock_left(user):
                # Locked second step: no code is sent until the cooldown ends (R-O6).
                return _login_page(request, form, 429, locked_message(wait), wait)
            await audit(request, event, "success", user_id=user.id, factor="password",
                        outcome_detail="second_step_required", session=s)
            ch_id, stale = await login_step.create(request, s, user, remember=remember, next_path=form["next"])
        else:
            await start_session(request, s, user, remember=remember, mfa_passed=False)
            await audit(request, event, "success", user_id=user.id, factor="password", session=s)
            return redirect(request, form["next"])
    return await login_step.after_password(request, ch_id, stale)


async def logout_submit(request: Request) -> Response:
    await read_form(request, {})
    state = cookie_state(request)
    auth = await load_auth(request)
    async with request.app.state.db.session() as s:
        if sid := state.get("sid"):
            await revoke_session(s, hash_token(sid))
        stale = await login_step.discard(request, s)
        if auth:
            await audit(request, "session_logout", "success", user_id=auth.user.id, session=s)
    await login_step.cancel_verifications(request, stale)
    state.clear()
    response = redirect(request, "/login", notice="signed-out")
    response.headers["Clear-Site-Data"] = '"cache", "cookies", "storage"'
    return response
