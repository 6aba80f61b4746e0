"""The container deployment files describe what docs/deploy.md promises. Docker is not needed (nor used in CI):
compose.yaml is parsed and interpolated here as Compose would; `docker compose config` and `caddy adapt` run too
when those tools are installed."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from webapp.settings import load_settings

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = yaml.safe_load((ROOT / "compose.yaml").read_text())
SERVICES: dict[str, Any] = COMPOSE["services"]
DOCKERFILE = (ROOT / "Dockerfile").read_text()
CADDYFILE = (ROOT / "deploy" / "Caddyfile").read_text()
VARIABLE = re.compile(r"\$\{(\w+)(?::([-?])([^}]*))?\}")
# What an operator's .env beside compose.yaml holds (dummy values of the right shape).
OPERATOR_ENV = {
    "POSTGRES_PASSWORD": "0123456789abcdef0123456789abcdef",
    "SECRET_KEY": "s" * 48,
    "PASSWORD_PEPPER": "p" * 48,
    "TWILIO_ACCOUNT_SID": "AC" + "0" * 32,
    "TWILIO_API_KEY_SID": "SK" + "0" * 32,
    "TWILIO_API_KEY_SECRET": "k" * 32,
    "TWILIO_VERIFY_SERVICE_SID": "VA" + "0" * 32,
    "SITE_HOST": "accounts.example.com",
    "SMTP_HOST": "smtp.example.com",
    "MAIL_FROM": "Accounts <no-reply@accounts.example.com>",
}


def interpolate(value: Any, env: dict[str, str]) -> str:
    """Compose's rules: ${X:-default} when X is unset or empty, ${X:?message} refuses to start without X."""
    def one(match: re.Match[str]) -> str:
        name, op, arg = match.groups()
        if env.get(name):
            return env[name]
        if op == "?":
            raise LookupError(f"{name}: {arg}")
        return arg if op == "-" else ""
    return VARIABLE.sub(one, str(value))


def resolved_env(service: str, env: dict[str, str]) -> dict[str, str]:
    return {key: interpolate(value, env) for key, value in SERVICES[service]["environment"].items()}


def test_two_app_replicas_start_after_the_one_shot_migration() -> None:
    app, migrate = SERVICES["app"], SERVICES["migrate"]
    assert app["deploy"]["replicas"] == 2
    assert app["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert migrate["command"] == ["python", "-m", "webapp.migrate"] and migrate["restart"] == "no"
    assert migrate["healthcheck"] == {"disable": True}  # no server in it: the image's health check would fail
    assert migrate["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert app["image"] == migrate["image"]  # the migrations that ran are the ones the app expects


def test_postgres_keeps_its_data_in_a_volume_and_reports_health() -> None:
    postgres = SERVICES["postgres"]
    assert "pgdata:/var/lib/postgresql/data" in postgres["volumes"] and "pgdata" in COMPOSE["volumes"]
    assert "pg_isready" in " ".join(postgres["healthcheck"]["test"])
    assert postgres["networks"] == ["backend"] and COMPOSE["networks"]["backend"]["internal"] is True


def test_the_app_runs_read_only_and_unprivileged_with_only_instance_writable() -> None:
    app = SERVICES["app"]
    assert app["read_only"] is True and app["tmpfs"] == ["/tmp"]
    assert app["cap_drop"] == ["ALL"] and "no-new-privileges:true" in app["security_opt"]
    assert app["volumes"] == ["instance:/app/instance"]


def test_the_app_environment_is_a_valid_production_configuration(tmp_path: Path) -> None:
    env = resolved_env("app", OPERATOR_ENV)
    settings = load_settings(environ=env, dotenv=tmp_path / "none.env")
    assert settings.production and settings.twilio_configured
    assert settings.database_url.startswith("postgresql+psycopg://app:")
    assert settings.database_url.endswith("@postgres:5432/app")
    edge = interpolate(COMPOSE["networks"]["edge"]["ipam"]["config"][0]["subnet"], OPERATOR_ENV)
    assert settings.forwarded_allow_ips == (edge,)  # client IPs pass through Caddy, and only through Caddy
    assert SERVICES["caddy"]["networks"] == ["edge"] and "edge" in SERVICES["app"]["networks"]


@pytest.mark.parametrize("missing", ["POSTGRES_PASSWORD", "SECRET_KEY", "PASSWORD_PEPPER", "TWILIO_ACCOUNT_SID",
                                     "TWILIO_VERIFY_SERVICE_SID"])
def test_compose_refuses_to_start_without_a_required_secret(missing: str) -> None:
    env = {k: v for k, v in OPERATOR_ENV.items() if k != missing}
    with pytest.raises(LookupError, match=missing):
        resolved_env("app", env)


def test_every_variable_the_compose_file_reads_is_documented() -> None:
    used = set(VARIABLE.findall((ROOT / "compose.yaml").read_text()))
    documented = (ROOT / "docs" / "deploy.md").read_text()
    assert sorted(name for name, _, _ in used if f"`{name}`" not in documented) == []


def test_caddy_serves_tls_for_the_configured_host_and_balances_over_the_replicas() -> None:
    caddy = SERVICES["caddy"]
    assert "443:443" in caddy["ports"] and "./deploy/Caddyfile:/etc/caddy/Caddyfile:ro" in caddy["volumes"]
    assert caddy["depends_on"]["app"]["condition"] == "service_healthy"
    assert CADDYFILE.count("{$SITE_HOST}") == 1
    assert re.search(r"dynamic a \{\s+name app\s+port 8000", CADDYFILE)
    assert re.search(r"@internal path /metrics /readyz\s+respond @internal 404", CADDYFILE)


@pytest.mark.skipif(shutil.which("caddy") is None, reason="caddy is not installed (apt-get install caddy)")
def test_the_caddyfile_is_valid_caddy_configuration() -> None:
    done = subprocess.run(["caddy", "adapt", "--config", str(ROOT / "deploy" / "Caddyfile"), "--adapter", "caddyfile"],
                          env={**os.environ, "SITE_HOST": "accounts.example.com"}, capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert '"accounts.example.com"' in done.stdout and '"dynamic_upstreams"' in done.stdout


def _compose_available() -> bool:
    if shutil.which("docker") is None:
        return False
    found = subprocess.run(["docker", "compose", "version"], capture_output=True, timeout=30, check=False)
    return found.returncode == 0


@pytest.mark.skipif(not _compose_available(), reason="`docker compose` is not available on this machine")
def test_docker_compose_accepts_the_file() -> None:
    done = subprocess.run(["docker", "compose", "-f", str(ROOT / "compose.yaml"), "config", "--quiet"],
                          env={**os.environ, **OPERATOR_ENV}, capture_output=True, text=True, timeout=60,
                          check=False)
    assert done.returncode == 0, done.stderr


def test_the_image_is_multi_stage_slim_non_root_and_checks_its_health() -> None:
    stages = re.findall(r"^FROM (\S+)(?: AS (\w+))?", DOCKERFILE, re.M)
    assert len(stages) == 3 and stages[-1][1] == ""  # htmx, deps, then the image itself
    final = DOCKERFILE.split("\nFROM ")[-1]
    assert re.search(r"^USER app$", final, re.M) and "useradd --system --uid 10001" in final
    assert "HEALTHCHECK" in final and "/healthz" in final
    assert "./scripts/fetch-htmx.sh" in DOCKERFILE and "COPY --from=htmx /src/static/vendor" in final
    assert "--require-hashes" in DOCKERFILE and "requirements-prod.lock" in DOCKERFILE
    assert "chown app:app instance" in final and "COPY tests" not in DOCKERFILE and "COPY . " not in DOCKERFILE
    assert '"webapp.asgi:app"' in final and '"--no-proxy-headers"' in final
