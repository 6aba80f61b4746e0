"""Settings read once from the environment (and an optional `.env`), validated, then frozen."""

from __future__ import annotations

import ipaddress
import logging
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

log = logging.getLogger("webapp.settings")

ROOT = Path(__file__).resolve().parent.parent
KNOWN_BAD_SECRETS = frozenset(
    {"", "changeme", "change-me", "secret", "you-will-never-guess", "dev", "development", "replace-me"}
)
PASSWORD_MIN_FLOOR = 8
TWILIO_DEFAULT_BASE_URL = "https://verify.twilio.com"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
METRICS_TOKEN_MIN = 16
SMTP_SECURITY = ("none", "starttls", "tls")
SMTP_DEFAULT_PORTS = {"none": 25, "starttls": 587, "tls": 465}


class ConfigError(Exception):
    """The configuration cannot be used; the message says what to fix."""


def read_dotenv(path: Path) -> dict[str, str]:
    """Parse KEY=VALUE lines; `#` comments and blank lines are ignored, quotes stripped."""
    values: dict[str, str] = {}
    if not path.is_file():
        return values
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        values[key.strip().removeprefix("export ").strip()] = value
    return values


def _int(env: Mapping[str, str], key: str, default: int, minimum: int = 0) -> int:
    raw = env.get(key, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{key} must be a whole number, got {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{key} must be at least {minimum}, got {value}")
    return value


def _float(env: Mapping[str, str], key: str, default: float) -> float:
    raw = env.get(key, "").strip()
    try:
        return float(raw) if raw else default
    except ValueError:
        raise ConfigError(f"{key} must be a number, got {raw!r}") from None


def _log_level(env: Mapping[str, str]) -> str:
    level = (env.get("LOG_LEVEL", "").strip() or "INFO").upper()
    if level not in LOG_LEVELS:
        raise ConfigError(f"LOG_LEVEL must be one of {', '.join(LOG_LEVELS)}, got {level!r}")
    return level


def _metrics_token(env: Mapping[str, str]) -> str:
    token = env.get("METRICS_TOKEN", "").strip()
    if token and len(token) < METRICS_TOKEN_MIN:
        raise ConfigError(f"METRICS_TOKEN is too short; use at least {METRICS_TOKEN_MIN} random characters "
                          "(e.g. `openssl rand -hex 24`), or leave it empty to turn /metrics off")
    return token


def _regions(raw: str) -> frozenset[str]:
    return frozenset(part.strip().upper() for part in raw.split(",") if part.strip())


def parse_forwarded_allow_ips(raw: str) -> tuple[str, ...]:
    """Trusted proxy peers: comma-separated IP addresses and CIDR networks, or "*" alone; empty trusts none."""
    entries = [part.strip() for part in raw.split(",") if part.strip()]
    if "*" in entries:
        if len(entries) > 1:
            raise ConfigError("FORWARDED_ALLOW_IPS: '*' trusts every peer and cannot be combined with other entries")
        return ("*",)
    parsed: list[str] = []
    for entry in entries:
        try:
            parsed.append(str(ipaddress.ip_network(entry) if "/" in entry else ipaddress.ip_address(entry)))
        except ValueError as exc:
            raise ConfigError(
                f"FORWARDED_ALLOW_IPS: {exc}; list IP addresses or CIDR networks, comma-separated "
                "(e.g. 10.0.0.5,10.0.0.0/8), or '*' alone; host names are not accepted"
            ) from None
    return tuple(dict.fromkeys(parsed))


def is_loopback_host(host: str) -> bool:
    """localhost or a loopback IP literal (brackets allowed): traffic that never leaves the machine."""
    name = host.strip().strip("[]").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def _smtp_settings(env: Mapping[str, str], production: bool) -> dict[str, Any]:
    """SMTP_* and MAIL_FROM; production needs a server, and refuses plain SMTP except to a loopback relay."""
    host = env.get("SMTP_HOST", "").strip()
    security = (env.get("SMTP_SECURITY", "").strip().lower() or "starttls")
    if security not in SMTP_SECURITY:
        raise ConfigError(f"SMTP_SECURITY must be one of none, starttls, tls; got {security!r}")
    if production and not host:
        raise ConfigError("production needs SMTP_HOST (and SMTP_PORT, SMTP_SECURITY, MAIL_FROM): mail is not optional")
    if production and host and security == "none" and not is_loopback_host(host):
        raise ConfigError("SMTP_SECURITY=none sends mail in clear; production allows it only to a loopback relay")
    mail_from = env.get("MAIL_FROM", "").strip()
    if production and not mail_from:
        raise ConfigError("production needs MAIL_FROM, e.g. Accounts <no-reply@accounts.example.com>")
    if any(c in mail_from for c in "\r\n"):
        raise ConfigError("MAIL_FROM must be one line")
    return {
        "smtp_host": host,
        "smtp_port": _int(env, "SMTP_PORT", SMTP_DEFAULT_PORTS[security], minimum=1),
        "smtp_username": env.get("SMTP_USERNAME", "").strip(),
        "smtp_password": env.get("SMTP_PASSWORD", ""),
        "smtp_security": security,
        "smtp_timeout_s": _float(env, "SMTP_TIMEOUT_SECONDS", 20.0),
        "mail_from": mail_from or "Two-step Accounts <no-reply@localhost>",
        "mail_give_up_s": _int(env, "MAIL_GIVE_UP_HOURS", 24, minimum=1) * 3600,
    }


@dataclass(frozen=True)
class Settings:
    env: str = "development"
    secret_key: str = field(default="", repr=False)
    pepper: bytes = field(default=b"", repr=False)
    pepper_id: int = 1
    database_url: str = ""
    instance_dir: Path = ROOT / "instance"
    templates_dir: Path = ROOT / "templates"
    static_dir: Path = ROOT / "static"
    app_name: str = "Two-step Accounts"
    # The origin people open the app at (links, and the WebAuthn RP ID and expected origin).
    app_base_url: str = ""
    # Encrypts TOTP secrets at rest: the first key encrypts, every key decrypts (rotation); empty: derived from
    # SECRET_KEY (see webapp/twofactor/secretbox.py).
    totp_encryption_keys: tuple[str, ...] = field(default=(), repr=False)

    password_min_length: int = 15
    password_max_length: int = 128
    bcrypt_rounds: int = 12

    session_idle_s: int = 30 * 60
    session_absolute_s: int = 12 * 3600
    session_remember_s: int = 30 * 86400
    login_max_failures: int = 10
    login_lock_s: int = 15 * 60
    ip_requests_per_minute: int = 30
    registrations_per_ip_per_hour: int = 20
    # Direct peers whose X-Forwarded-For/-Proto are believed (webapp.security.proxy); empty: nobody's.
    forwarded_allow_ips: tuple[str, ...] = ()

    twilio_account_sid: str = ""
    twilio_auth_token: str = field(default="", repr=False)
    twilio_api_key_sid: str = ""
    twilio_api_key_secret: str = field(default="", repr=False)
    twilio_verify_service_sid: str = ""
    twilio_verify_base_url: str = ""
    twilio_timeout_s: float = 8.0
    verify_friendly_name: str = ""
    twilio_rate_limit_name: str = ""

    phone_default_region: str = "US"
    phone_allowed_regions: frozenset[str] = frozenset(
        {"US", "CA", "GB", "IE", "DE", "FR", "NL", "ES", "IT", "AU", "NZ"}
    )
    max_accounts_per_phone: int = 3
    mfa_challenge_ttl_s: int = 600
    mfa_max_checks: int = 5
    mfa_max_sends: int = 5
    mfa_resend_cooldown_s: int = 30
    mfa_lock_failures: int = 10
    mfa_lock_s: int = 15 * 60
    mfa_sends_per_user_per_day: int = 10
    enroll_sends_per_ip_per_hour: int = 5
    sms_global_daily_budget: int = 1000
    recovery_code_count: int = 10
    recovery_checks_per_ip_per_hour: int = 30

    log_level: str = "INFO"
    # Empty: /metrics answers 404. Set: it answers only requests bearing this token.
    metrics_token: str = field(default="", repr=False)
    audit_retention_days: int = 365
    # Without SMTP_HOST, development keeps mail in the dev outbox page; production refuses to start.
    smtp_host: str = ""
    smtp_port: int = 587
    smtp_username: str = ""
    smtp_password: str = field(default="", repr=False)
    smtp_security: str = "starttls"
    smtp_timeout_s: float = 20.0
    mail_from: str = "Two-step Accounts <no-reply@localhost>"
    # The background sender: a short poll behind the wake-up on commit, retries with backoff, then giving up.
    mail_poll_s: float = 2.0
    mail_retry_base_s: float = 15.0
    mail_retry_max_s: float = 15 * 60.0
    mail_give_up_s: int = 24 * 3600
    mail_batch: int = 20
    reset_requests_per_address_per_hour: int = 3
    reset_requests_per_ip_per_hour: int = 20
    email_links_per_user_per_hour: int = 3

    @property
    def production(self) -> bool:
        return self.env == "production"

    @property
    def twilio_configured(self) -> bool:
        has_secret = bool(self.twilio_auth_token or (self.twilio_api_key_sid and self.twilio_api_key_secret))
        return bool(self.twilio_account_sid and has_secret and self.twilio_verify_service_sid)

    @property
    def session_cookie(self) -> str:
        # __Host- requires Secure, which a browser only honours over https, so development uses a plain name.
        return "__Host-session" if self.production else "session"

    def with_overrides(self, **changes: Any) -> Settings:
        return replace(self, **changes)


def app_base_url_from(env: Mapping[str, str], production: bool) -> str:
    """The origin used in links and as the WebAuthn RP: APP_BASE_URL, never a request's Host or X-Forwarded-Host;
    in development http://localhost:PORT (browsers refuse WebAuthn on IP-address origins)."""
    base = env.get("APP_BASE_URL", "").strip().rstrip("/")
    if not base:
        if production:
            raise ConfigError(
                "APP_BASE_URL is required in production (the origin used in links, e.g. https://accounts.example.com)"
            )
        host = env.get("HOST", "127.0.0.1").strip()
        port = env.get("PORT", "8000").strip()
        name = "localhost" if host in ("127.0.0.1", "::1", "localhost", "0.0.0.0", "") else host  # noqa: S104
        base = f"http://{name}:{port}"
    try:
        parts = urlsplit(base)
        host_name = parts.hostname
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError:
        raise ConfigError(f"APP_BASE_URL is not a URL: {base!r}") from None
    if parts.scheme not in ("http", "https") or not host_name:
        raise ConfigError(f"APP_BASE_URL must be an http(s) origin such as https://accounts.example.com, got {base!r}")
    if parts.path or parts.query or parts.fragment:
        raise ConfigError(f"APP_BASE_URL must be an origin only (no path, query or fragment), got {base!r}")
    if production and parts.scheme != "https" and not is_loopback_host(host_name):
        raise ConfigError(f"APP_BASE_URL must use https in production, got {base!r}")
    return base


def _instance_secret(instance_dir: Path, name: str, nbytes: int) -> str:
    """Create a random secret once under instance/ so development needs no configuration."""
    instance_dir.mkdir(parents=True, exist_ok=True)
    path = instance_dir / name
    if path.is_file():
        return path.read_text(encoding="utf-8").strip()
    value = secrets.token_urlsafe(nbytes)
    path.write_text(value + "\n", encoding="utf-8")
    path.chmod(0o600)
    log.warning("development: created a random %s at %s", name, path)
    return value


def load_settings(environ: Mapping[str, str] | None = None, dotenv: Path | None = None) -> Settings:
    """Build Settings from `environ` (default os.environ) layered over `.env`; raise ConfigError when unusable."""
    env: dict[str, str] = read_dotenv(dotenv if dotenv is not None else ROOT / ".env")
    env.update(os.environ if environ is None else environ)

    app_env = env.get("APP_ENV", "development").strip().lower() or "development"
    if app_env not in {"development", "production"}:
        raise ConfigError(f"APP_ENV must be 'development' or 'production', got {app_env!r}")
    production = app_env == "production"
    instance_dir = Path(env.get("INSTANCE_DIR") or ROOT / "instance")

    secret_key = env.get("SECRET_KEY", "")
    pepper = env.get("PASSWORD_PEPPER", "")
    if production:
        for key, value in (("SECRET_KEY", secret_key), ("PASSWORD_PEPPER", pepper)):
            if value.strip().lower() in KNOWN_BAD_SECRETS:
                raise ConfigError(f"{key} is missing or a known default; set a random value of 32+ bytes")
            if len(value.encode()) < 32:
                raise ConfigError(f"{key} is too short; use at least 32 random bytes (e.g. `openssl rand -base64 48`)")
        if secret_key == pepper:
            raise ConfigError("PASSWORD_PEPPER must differ from SECRET_KEY")
    else:
        if len(secret_key.encode()) < 32 or secret_key.strip().lower() in KNOWN_BAD_SECRETS:
            secret_key = _instance_secret(instance_dir, "secret_key", 48)
        if len(pepper.encode()) < 32 or pepper.strip().lower() in KNOWN_BAD_SECRETS:
            pepper = _instance_secret(instance_dir, "password_pepper", 48)

    min_length = _int(env, "PASSWORD_MIN_LENGTH", 15)
    if min_length < PASSWORD_MIN_FLOOR:
        raise ConfigError(f"PASSWORD_MIN_LENGTH must be at least {PASSWORD_MIN_FLOOR}, got {min_length}")
    rounds = _int(env, "BCRYPT_ROUNDS", 12, minimum=4)
    if production and rounds < 10:
        raise ConfigError("BCRYPT_ROUNDS must be at least 10 in production")

    database_url = env.get("DATABASE_URL", "").strip()
    if not database_url:
        instance_dir.mkdir(parents=True, exist_ok=True)
        database_url = f"sqlite+aiosqlite:///{instance_dir / 'app.db'}"

    service_sid = env.get("TWILIO_VERIFY_SERVICE_SID") or env.get("TWILIO_VERIFY_SERVICE_ID", "")
    base_url = env.get("TWILIO_VERIFY_BASE_URL", "").strip().rstrip("/")
    if production and base_url and base_url != TWILIO_DEFAULT_BASE_URL and env.get("ALLOW_VERIFY_BASE_URL") != "1":
        raise ConfigError(
            "TWILIO_VERIFY_BASE_URL points away from Twilio in production; set ALLOW_VERIFY_BASE_URL=1 for a proxy"
        )
    allowed = _regions(env.get("PHONE_ALLOWED_REGIONS", "")) or Settings.phone_allowed_regions
    default_region = (env.get("PHONE_DEFAULT_REGION", "US").strip() or "US").upper()

    settings = Settings(
        env=app_env,
        secret_key=secret_key,
        pepper=pepper.encode(),
        pepper_id=_int(env, "PASSWORD_PEPPER_ID", 1, minimum=1),
        database_url=database_url,
        instance_dir=instance_dir,
        app_name=env.get("APP_NAME", Settings.app_name),
        app_base_url=app_base_url_from(env, production),
        totp_encryption_keys=tuple(k.strip() for k in env.get("TOTP_ENCRYPTION_KEYS", "").split(",") if k.strip()),
        password_min_length=min_length,
        bcrypt_rounds=rounds,
        session_idle_s=_int(env, "SESSION_IDLE_MINUTES", 30, minimum=1) * 60,
        session_absolute_s=_int(env, "SESSION_ABSOLUTE_HOURS", 12, minimum=1) * 3600,
        session_remember_s=_int(env, "SESSION_REMEMBER_DAYS", 30, minimum=1) * 86400,
        login_max_failures=_int(env, "LOGIN_MAX_FAILURES", 10, minimum=1),
        login_lock_s=_int(env, "LOGIN_LOCK_MINUTES", 15, minimum=1) * 60,
        ip_requests_per_minute=_int(env, "IP_REQUESTS_PER_MINUTE", 30, minimum=1),
        registrations_per_ip_per_hour=_int(env, "REGISTRATIONS_PER_IP_PER_HOUR", 20, minimum=1),
        forwarded_allow_ips=parse_forwarded_allow_ips(env.get("FORWARDED_ALLOW_IPS", "")),
        twilio_account_sid=env.get("TWILIO_ACCOUNT_SID", ""),
        twilio_auth_token=env.get("TWILIO_AUTH_TOKEN", ""),
        twilio_api_key_sid=env.get("TWILIO_API_KEY_SID", ""),
        twilio_api_key_secret=env.get("TWILIO_API_KEY_SECRET", ""),
        twilio_verify_service_sid=service_sid,
        twilio_verify_base_url=base_url,
        twilio_timeout_s=_float(env, "TWILIO_TIMEOUT_SECONDS", 8.0),
        verify_friendly_name=env.get("VERIFY_FRIENDLY_NAME", ""),
        twilio_rate_limit_name=env.get("TWILIO_VERIFY_RATE_LIMIT_NAME", "").strip(),
        phone_default_region=default_region,
        phone_allowed_regions=allowed,
        max_accounts_per_phone=_int(env, "MAX_ACCOUNTS_PER_PHONE", 3, minimum=1),
        mfa_sends_per_user_per_day=_int(env, "MFA_SENDS_PER_USER_PER_DAY", 10, minimum=1),
        enroll_sends_per_ip_per_hour=_int(env, "ENROLL_SENDS_PER_IP_PER_HOUR", 5, minimum=1),
        sms_global_daily_budget=_int(env, "SMS_GLOBAL_DAILY_BUDGET", 1000, minimum=1),
        recovery_checks_per_ip_per_hour=_int(env, "RECOVERY_CHECKS_PER_IP_PER_HOUR", 30, minimum=1),
        log_level=_log_level(env),
        metrics_token=_metrics_token(env),
        audit_retention_days=_int(env, "AUDIT_RETENTION_DAYS", 365, minimum=1),
        reset_requests_per_address_per_hour=_int(env, "RESET_REQUESTS_PER_ADDRESS_PER_HOUR", 3, minimum=1),
        reset_requests_per_ip_per_hour=_int(env, "RESET_REQUESTS_PER_IP_PER_HOUR", 20, minimum=1),
        email_links_per_user_per_hour=_int(env, "EMAIL_LINKS_PER_USER_PER_HOUR", 3, minimum=1),
        **_smtp_settings(env, production),
    )
    if not 1 <= settings.smtp_timeout_s <= 60:
        raise ConfigError("SMTP_TIMEOUT_SECONDS must be between 1 and 60")
    if not 1 <= settings.twilio_timeout_s <= 10:
        raise ConfigError("TWILIO_TIMEOUT_SECONDS must be between 1 and 10")
    if production and not settings.twilio_configured:
        raise ConfigError(
            "production needs Twilio Verify: set TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN (or an API key) "
            "and TWILIO_VERIFY_SERVICE_SID; the development code backend is refused in production"
        )
    return settings
