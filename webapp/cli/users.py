"""`webapp users …`: list and show accounts; reset two-step verification, end sessions, unlock, disable, enable."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

import click
from sqlalchemy.orm import Session

from webapp.cli.runtime import runtime
from webapp.deps import Deps
from webapp.operators import actions
from webapp.operators.accounts import Detail, Locks, Summary, find_user, list_users, show_user
from webapp.security.clients import Client

Action = Callable[[Deps, Client, int, str], Awaitable[actions.Done]]


@click.group()
def users() -> None:
    """Accounts: USER is a username (as typed at sign-in) or #ID."""


def when(value: datetime | None) -> str:
    return f"{value:%Y-%m-%d %H:%M} UTC" if value else "never"


def duration(seconds: int) -> str:
    return f"{(seconds + 59) // 60} min" if seconds >= 60 else f"{seconds} s"


def lock_text(locked_s: int, failures: int) -> str:
    return f"locked for {duration(locked_s)}" if locked_s else f"none ({failures} failures counted)"


def as_json(value: Any) -> str:
    def plain(item: Any) -> Any:
        return item.isoformat() + "Z" if isinstance(item, datetime) else str(item)
    return json.dumps(value, default=plain, ensure_ascii=False, indent=2)


def summary_json(row: Summary) -> dict[str, Any]:
    fields = dataclasses.asdict(row)
    if isinstance(row, Detail):
        fields["methods"] = row.methods
        fields["recent_events"] = [{"ts": ts, "event": event, "outcome": outcome}
                                   for ts, event, outcome in row.recent_events]
    return fields


@users.command("list")
@click.option("--limit", default=200, show_default=True, type=click.IntRange(1), help="At most this many, by id.")
@click.option("--json", "as_json_", is_flag=True, help="Machine-readable output.")
@click.pass_context
def list_command(ctx: click.Context, limit: int, as_json_: bool) -> None:
    """Every account with its status, two-step verification, last sign-in and locks."""
    rt = runtime(ctx)
    rows = rt.run(lambda deps: deps.db.read(list_users, deps.settings, limit=limit))
    if as_json_:
        click.echo(as_json([summary_json(row) for row in rows]))
        return
    click.echo(f"{'ID':>6}  {'USERNAME':<32}  {'STATUS':<8}  {'2FA':<3}  {'LAST SIGN-IN':<20}  LOCKED")
    for row in rows:
        locked = ", ".join(name for name, on in (("sign-in", row.locks.login_locked_s),
                                                 ("two-step", row.locks.mfa_locked_s)) if on) or "-"
        click.echo(f"{row.id:>6}  {row.username:<32}  {row.status:<8}  {'on' if row.two_step else 'off':<3}  "
                   f"{when(row.last_sign_in):<20}  {locked}")


@users.command("show")
@click.argument("user")
@click.option("--json", "as_json_", is_flag=True, help="Machine-readable output.")
@click.pass_context
def show_command(ctx: click.Context, user: str, as_json_: bool) -> None:
    """One account: status, methods, last sign-in, sessions, locks, recent security events. No secrets."""
    rt = runtime(ctx)
    detail = rt.run(lambda deps: deps.db.read(show_user, deps.settings, user))
    if as_json_:
        click.echo(as_json(summary_json(detail)))
        return
    locks: Locks = detail.locks
    lines = [
        f"{detail.username} (#{detail.id})",
        f"  status:         {detail.status}" + (f" since {when(detail.disabled_at)}" if detail.disabled_at else ""),
        f"  email:          {detail.email}",
        f"  created:        {when(detail.created_at)}",
        f"  last sign-in:   {when(detail.last_sign_in)}",
        f"  methods:        {', '.join(detail.methods)}",
        f"  sessions:       {detail.sessions_active} active",
        f"  open steps:     {detail.challenges_open}",
        f"  sign-in lock:   {lock_text(locks.login_locked_s, locks.login_failures)}",
        f"  two-step lock:  {lock_text(locks.mfa_locked_s, locks.mfa_failures)}",
        "  recent events:",
        *(f"    {when(ts)}  {event}  {outcome}" for ts, event, outcome in detail.recent_events),
    ]
    click.echo("\n".join(lines))


def _ident(s: Session, ref: str) -> tuple[int, str]:
    user = find_user(s, ref)
    return user.id, user.username


def state_change(name: str, action: Action, question: str, *, verify: bool = False) -> None:
    """Register `users NAME USER [--yes]`: look the user up, confirm, act, say what happened."""

    @click.argument("user")
    @click.option("--yes", "-y", is_flag=True, help="Don't ask for confirmation.")
    @click.pass_context
    def command(ctx: click.Context, user: str, yes: bool) -> None:
        rt = runtime(ctx)
        user_id, username = rt.run(lambda deps: deps.db.read(_ident, user))
        if not yes:
            click.confirm(question.format(user=f"{username} (#{user_id})"), abort=True)
        done = rt.run(lambda deps: action(deps, rt.client, user_id, rt.operator), verify=verify)
        click.echo(done.message)

    command.__doc__ = question.format(user="USER").rstrip("?") + "."
    users.command(name)(command)


state_change("reset-2fa", actions.reset_2fa,
             "Turn off two-step verification for {user}: delete the number and recovery codes, end every session "
             "(remembered browsers too) and close open sign-in steps?", verify=True)
state_change("revoke-sessions", actions.revoke_sessions,
             "End every session of {user}, remembered browsers too, and close open sign-in steps?", verify=True)
state_change("unlock", actions.unlock,
             "Lift the sign-in and two-step locks of {user} and clear their failure counts?")
state_change("disable", actions.disable,
             "Disable {user}: refuse every sign-in and end every session?", verify=True)
state_change("enable", actions.enable, "Enable {user} again, so they can sign in?")
