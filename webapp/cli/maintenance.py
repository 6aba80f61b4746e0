"""`webapp prune` and `webapp check-config`."""

from __future__ import annotations

import json
from dataclasses import dataclass

import click
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from webapp import health
from webapp.cli.runtime import runtime
from webapp.db import sync_url
from webapp.operators.prune import preview
from webapp.operators.prune import prune as prune_rows
from webapp.settings import ConfigError, Settings, load_settings


@click.command()
@click.option("--yes", "-y", is_flag=True, help="Don't ask for confirmation (for cron jobs).")
@click.pass_context
def prune(ctx: click.Context, yes: bool) -> None:
    """Delete expired challenges, sessions and throttle rows, and audit rows older than AUDIT_RETENTION_DAYS."""
    rt = runtime(ctx)
    settings = rt.settings()
    if not yes:
        counts = rt.run(lambda deps: deps.db.read(preview, deps.settings))
        click.echo(_counts(counts, "to delete"))
        click.confirm(f"Delete these rows (audit rows older than {settings.audit_retention_days} days)?",
                      abort=True)
    deleted = rt.run(lambda deps: prune_rows(deps, rt.client, rt.operator))
    click.echo(_counts(deleted, "deleted"))


def _counts(counts: dict[str, int], verb: str) -> str:
    return "\n".join(f"{name.replace('_', ' ')}: {count} {verb}" for name, count in counts.items())


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


@click.command("check-config")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def check_config(as_json: bool) -> None:
    """Validate the settings and the database (reachable, schema at the migration head); say what is wrong."""
    checks = run_checks()
    if as_json:
        click.echo(json.dumps([c.__dict__ for c in checks], indent=2))
    else:
        for c in checks:
            click.echo(f"{'ok  ' if c.ok else 'FAIL'}  {c.name:<10}  {c.detail}")
    if not all(c.ok for c in checks):
        raise SystemExit(1)


def run_checks() -> list[Check]:
    try:
        settings = load_settings()
    except ConfigError as exc:
        return [Check("settings", False, str(exc))]
    checks = [Check("settings", True, f"APP_ENV={settings.env}, LOG_LEVEL={settings.log_level}")]
    checks += _database(settings)
    if settings.twilio_configured:
        checks.append(Check("verify", True, "Twilio Verify " + (settings.twilio_verify_base_url or "(api)")))
    else:
        checks.append(Check("verify", True, "development backend: codes are logged, not sent (refused in production)"))
    checks.append(Check("metrics", True, "on, bearer token required" if settings.metrics_token
                        else "off (METRICS_TOKEN is empty; /metrics answers 404)"))
    proxies = ", ".join(settings.forwarded_allow_ips)
    checks.append(Check("proxies", True, f"trusted: {proxies}" if proxies
                        else "none trusted: client IPs are the direct peers' (set FORWARDED_ALLOW_IPS behind a proxy)"))
    return checks


def _database(settings: Settings) -> list[Check]:
    url = make_url(sync_url(settings.database_url))
    where = url.render_as_string(hide_password=True)
    engine = create_engine(url, connect_args={"connect_timeout": 5} if url.get_backend_name() == "postgresql" else {})
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
            with Session(conn) as s:
                applied = health.applied_revisions(s)
    except SQLAlchemyError as exc:
        # The driver's own message (host, port, database), without SQLAlchemy's statement and link lines.
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        return [Check("database", False, f"{where}: {reason}")]
    finally:
        engine.dispose()
    ready = health.judge(applied, health.migration_heads())
    schema = Check("schema", ready.ready, f"at {', '.join(ready.schema)}" if ready.ready else ready.reason)
    return [Check("database", True, f"{where} answers"), schema]
