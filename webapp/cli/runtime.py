"""What every CLI command shares: settings, the domain's Deps built without a web app, the operator's Client."""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import logging
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

import click
from sqlalchemy.exc import SQLAlchemyError

from webapp.db import Database
from webapp.deps import Deps
from webapp.logging_setup import configure_logging, request_id
from webapp.operators.accounts import UnknownUser
from webapp.security.clients import Client
from webapp.settings import ConfigError, Settings, load_settings
from webapp.verify import Channel, CheckResult, ServiceUnavailable, Verification, VerifyGateway, open_gateway

T = TypeVar("T")
log = logging.getLogger("webapp.cli")


class NoVerify:
    """For commands that never talk to Verify: any call is a ServiceUnavailable, as when Twilio is down."""

    name = "none"

    async def start(self, to: str, channel: Channel = "sms", *, locale: str | None = None,
                    rate_limit_key: str | None = None) -> Verification:
        raise ServiceUnavailable()

    async def check(self, verification_sid: str, code: str) -> CheckResult:
        raise ServiceUnavailable()

    async def cancel(self, verification_sid: str) -> None:
        raise ServiceUnavailable()


def default_operator() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no login name in a bare container
        return "unknown"


@dataclass
class Runtime:
    """The click context object: who is operating, and the settings, loaded on first use so --help needs none."""

    operator: str
    client: Client = field(init=False)
    _settings: Settings | None = None

    def __post_init__(self) -> None:
        # The audit rows name the operator; "cli" in the IP column says where the action came from.
        self.client = Client(ip="cli", user_agent="webapp-cli", request_id=secrets.token_hex(8))

    def settings(self) -> Settings:
        if self._settings is None:
            try:
                self._settings = load_settings()
            except ConfigError as exc:
                click.echo(f"Configuration error: {exc}", err=True)
                raise SystemExit(2) from None
            configure_logging(self._settings.log_level)
        return self._settings

    def run(self, work: Callable[[Deps], Awaitable[T]], *, verify: bool = False) -> T:
        """Run one domain call to completion; unknown users and database failures become clear messages."""
        try:
            return asyncio.run(self._with_deps(work, verify))
        except UnknownUser as exc:
            raise click.ClickException(str(exc)) from None
        except SQLAlchemyError as exc:
            raise click.ClickException(f"the database failed: {type(exc).__name__}: {exc}".splitlines()[0]) from None

    async def _with_deps(self, work: Callable[[Deps], Awaitable[T]], verify: bool) -> T:
        request_id.set(self.client.request_id)  # in this run's context: its log lines carry its audit rows' id
        async with domain(self.settings(), verify=verify) as deps:
            return await work(deps)


@contextlib.asynccontextmanager
async def domain(settings: Settings, *, verify: bool) -> AsyncIterator[Deps]:
    """Deps for one command. Verify only when asked: it is used to cancel open verifications, best effort.

    Only Twilio's verifications can be cancelled from here: the development backend keeps its own inside the app.
    """
    db = Database(settings.database_url)
    try:
        async with contextlib.AsyncExitStack() as stack:
            gateway: VerifyGateway = NoVerify()
            if verify and settings.twilio_configured:
                gateway = await stack.enter_async_context(open_gateway(settings))
            # The dummy hash evens out sign-in timing; no operator action checks a password.
            yield Deps(settings=settings, db=db, verify=gateway, dummy_hash="")
    finally:
        db.dispose()


def runtime(ctx: click.Context) -> Runtime:
    found = ctx.find_object(Runtime)
    assert found is not None, "the top-level group sets the Runtime"
    return found
