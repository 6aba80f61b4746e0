"""Configuration is validated once at startup and refuses unsafe values (R-P1, R-P5, R-S4, R-S6, R-S10, K16)."""

from __future__ import annotations

from pathlib import Path

import pytest

from webapp.settings import ConfigError, Settings, load_settings

GOOD_SECRET = "s" * 48
GOOD_PEPPER = "p" * 48


def prod_env(tmp_path: Path, **overrides: str) -> dict[str, str]:
    env = {
        "APP_ENV": "production",
        "SECRET_KEY": GOOD_SECRET,
        "PASSWORD_PEPPER": GOOD_PEPPER,
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'x.db'}",
        "INSTANCE_DIR": str(tmp_path / "instance"),
        "TWILIO_ACCOUNT_SID": "AC" + "0" * 32,
        "TWILIO_AUTH_TOKEN": "t" * 32,
        "TWILIO_VERIFY_SERVICE_SID": "VA" + "0" * 32,
        "APP_BASE_URL": "https://accounts.example.com",
        "SMTP_HOST": "smtp.example.com",
        "MAIL_FROM": "Accounts <no-reply@accounts.example.com>",
    }
    env.update(overrides)
    return env


def dev_env(tmp_path: Path, **overrides: str) -> dict[str, str]:
    env = {"INSTANCE_DIR": str(tmp_path / "instance"), "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'x.db'}"}
    env.update(overrides)
    return env


def load(env: dict[str, str], tmp_path: Path) -> Settings:
    return load_settings(environ=env, dotenv=tmp_path / "no-such.env")


def test_production_settings_load_when_complete(tmp_path: Path) -> None:
    s = load(prod_env(tmp_path), tmp_path)
    assert s.production
    assert s.session_cookie == "__Host-session"
    assert s.secret_key == GOOD_SECRET
    assert s.pepper == GOOD_PEPPER.encode()


def test_defaults_match_the_requirements(tmp_path: Path) -> None:
    s = load(dev_env(tmp_path), tmp_path)
    assert s.password_min_length == 15
    assert s.password_max_length == 128
    assert s.bcrypt_rounds == 12
    assert s.session_idle_s == 30 * 60
    assert s.session_absolute_s == 12 * 3600
    assert s.login_max_failures == 10
    assert s.login_lock_s == 15 * 60
    assert s.ip_requests_per_minute == 30
    assert s.session_cookie == "session"


# --- R-P1 -----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["7", "0", "1"])
def test_r_p1_password_minimum_below_eight_is_a_config_error(tmp_path: Path, value: str) -> None:
    with pytest.raises(ConfigError, match="PASSWORD_MIN_LENGTH must be at least 8"):
        load(dev_env(tmp_path, PASSWORD_MIN_LENGTH=value), tmp_path)


def test_r_p1_password_minimum_of_eight_is_accepted(tmp_path: Path) -> None:
    assert load(dev_env(tmp_path, PASSWORD_MIN_LENGTH="8"), tmp_path).password_min_length == 8


def test_r_p1_password_minimum_must_be_a_number(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="whole number"):
        load(dev_env(tmp_path, PASSWORD_MIN_LENGTH="fifteen"), tmp_path)


# --- R-P5 -----------------------------------------------------------------------------------------------------------


def test_r_p5_production_refuses_bcrypt_cost_below_ten(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="BCRYPT_ROUNDS must be at least 10"):
        load(prod_env(tmp_path, BCRYPT_ROUNDS="9"), tmp_path)
    assert load(prod_env(tmp_path, BCRYPT_ROUNDS="10"), tmp_path).bcrypt_rounds == 10


def test_r_p5_bcrypt_cost_below_four_is_refused_everywhere(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="BCRYPT_ROUNDS must be at least 4"):
        load(dev_env(tmp_path, BCRYPT_ROUNDS="3"), tmp_path)


# --- R-S10 / K16 secrets ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["", "you-will-never-guess", "changeme", "secret", "  YOU-WILL-NEVER-GUESS  "])
@pytest.mark.parametrize("key", ["SECRET_KEY", "PASSWORD_PEPPER"])
def test_r_s10_production_refuses_missing_or_known_default_secrets(tmp_path: Path, key: str, value: str) -> None:
    with pytest.raises(ConfigError, match=f"{key} is missing or a known default"):
        load(prod_env(tmp_path, **{key: value}), tmp_path)


@pytest.mark.parametrize("key", ["SECRET_KEY", "PASSWORD_PEPPER"])
def test_r_s10_production_refuses_secrets_under_32_bytes(tmp_path: Path, key: str) -> None:
    with pytest.raises(ConfigError, match=f"{key} is too short"):
        load(prod_env(tmp_path, **{key: "x" * 31}), tmp_path)
    assert load(prod_env(tmp_path, **{key: "y" * 32}), tmp_path).production


def test_r_p6_production_refuses_pepper_equal_to_secret_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="PASSWORD_PEPPER must differ from SECRET_KEY"):
        load(prod_env(tmp_path, PASSWORD_PEPPER=GOOD_SECRET), tmp_path)


def test_r_s10_development_replaces_a_default_secret_with_a_random_instance_secret(tmp_path: Path) -> None:
    s = load(dev_env(tmp_path, SECRET_KEY="you-will-never-guess", PASSWORD_PEPPER="dev"), tmp_path)
    assert s.secret_key != "you-will-never-guess"
    assert len(s.secret_key) >= 32
    assert len(s.pepper) >= 32
    assert s.pepper.decode() != s.secret_key
    secret_file = tmp_path / "instance" / "secret_key"
    assert secret_file.read_text().strip() == s.secret_key
    assert secret_file.stat().st_mode & 0o077 == 0
    again = load(dev_env(tmp_path), tmp_path)
    assert again.secret_key == s.secret_key


def test_production_requires_twilio_credentials(tmp_path: Path) -> None:
    env = prod_env(tmp_path)
    del env["TWILIO_AUTH_TOKEN"]
    with pytest.raises(ConfigError, match="production needs Twilio Verify"):
        load(env, tmp_path)


def test_app_env_must_be_known(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="APP_ENV must be"):
        load(dev_env(tmp_path, APP_ENV="staging"), tmp_path)


# --- R-S6 session limits from the environment -----------------------------------------------------------------------


def test_r_s6_session_limits_are_read_in_minutes_and_hours(tmp_path: Path) -> None:
    s = load(dev_env(tmp_path, SESSION_IDLE_MINUTES="10", SESSION_ABSOLUTE_HOURS="2"), tmp_path)
    assert (s.session_idle_s, s.session_absolute_s) == (600, 7200)


def test_r_s6_zero_idle_minutes_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="SESSION_IDLE_MINUTES must be at least 1"):
        load(dev_env(tmp_path, SESSION_IDLE_MINUTES="0"), tmp_path)


# --- .env layering --------------------------------------------------------------------------------------------------


def test_dotenv_is_read_and_the_environment_wins(tmp_path: Path) -> None:
    dotenv = tmp_path / ".env"
    dotenv.write_text(
        "# comment\nexport PASSWORD_MIN_LENGTH=20\nAPP_NAME=\"From Dotenv\"\nLOGIN_MAX_FAILURES='7'\n\nnot a line\n",
        encoding="utf-8")
    s = load_settings(environ=dev_env(tmp_path, LOGIN_MAX_FAILURES="5"), dotenv=dotenv)
    assert s.password_min_length == 20
    assert s.app_name == "From Dotenv"
    assert s.login_max_failures == 5


def test_with_overrides_returns_a_new_frozen_settings(settings: Settings) -> None:
    prod = settings.with_overrides(env="production")
    assert prod.production and not settings.production
    assert prod.session_cookie == "__Host-session"
    with pytest.raises(AttributeError):
        prod.env = "development"  # type: ignore[misc]


def test_secrets_are_not_in_settings_repr(tmp_path: Path) -> None:
    s = load(prod_env(tmp_path), tmp_path)
    assert "t" * 32 not in repr(s)


def test_r_pr2_secret_key_and_pepper_are_not_in_settings_repr(tmp_path: Path) -> None:
    s = load(prod_env(tmp_path), tmp_path)
    assert GOOD_SECRET not in repr(s)
    assert GOOD_PEPPER not in repr(s)


# --- mail and APP_BASE_URL (R-E3, R-E8) ----------------------------------------------------------------------------

@pytest.mark.parametrize(("host", "port", "expected"), [
    ("127.0.0.1", "8000", "http://localhost:8000"), ("0.0.0.0", "9000", "http://localhost:9000"),  # noqa: S104
    ("::1", "8000", "http://localhost:8000"), ("", "8000", "http://localhost:8000"),
    ("192.168.1.20", "8080", "http://192.168.1.20:8080"),
])
def test_r_e3_development_base_url_is_what_make_run_serves_named_localhost(tmp_path: Path, host: str, port: str,
                                                                         expected: str) -> None:
    assert load(dev_env(tmp_path, HOST=host, PORT=port), tmp_path).app_base_url == expected


def test_r_e3_production_requires_app_base_url(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="APP_BASE_URL is required in production"):
        load(prod_env(tmp_path, APP_BASE_URL=""), tmp_path)


@pytest.mark.parametrize("bad", ["accounts.example.com", "ftp://x.example", "https://x.example/app",
                                 "https://x.example/?a=1", "https://x.example/#f", "https://"])
def test_r_e3_app_base_url_must_be_an_http_origin(tmp_path: Path, bad: str) -> None:
    with pytest.raises(ConfigError, match="APP_BASE_URL"):
        load(dev_env(tmp_path, APP_BASE_URL=bad), tmp_path)


def test_r_e3_production_base_url_needs_https_except_on_loopback(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="https"):
        load(prod_env(tmp_path, APP_BASE_URL="http://accounts.example.com"), tmp_path)
    assert load(prod_env(tmp_path, APP_BASE_URL="http://localhost:8000/"), tmp_path).app_base_url == \
        "http://localhost:8000"


def test_r_e8_production_refuses_to_start_without_smtp(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="SMTP_HOST"):
        load(prod_env(tmp_path, SMTP_HOST=""), tmp_path)
    with pytest.raises(ConfigError, match="MAIL_FROM"):
        load(prod_env(tmp_path, MAIL_FROM=""), tmp_path)


def test_r_e8_production_refuses_plain_smtp_unless_the_relay_is_loopback(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="SMTP_SECURITY=none"):
        load(prod_env(tmp_path, SMTP_SECURITY="none"), tmp_path)
    relay = load(prod_env(tmp_path, SMTP_SECURITY="none", SMTP_HOST="127.0.0.1"), tmp_path)
    assert relay.smtp_security == "none" and relay.smtp_port == 25


def test_smtp_defaults_and_ports_follow_the_security_mode(tmp_path: Path) -> None:
    dev = load(dev_env(tmp_path), tmp_path)
    assert (dev.smtp_host, dev.smtp_security, dev.smtp_port) == ("", "starttls", 587)
    assert load(dev_env(tmp_path, SMTP_SECURITY="tls"), tmp_path).smtp_port == 465
    assert load(dev_env(tmp_path, SMTP_SECURITY="TLS", SMTP_PORT="2465"), tmp_path).smtp_port == 2465
    with pytest.raises(ConfigError, match="SMTP_SECURITY"):
        load(dev_env(tmp_path, SMTP_SECURITY="ssl"), tmp_path)


def test_r_pr2_the_smtp_password_is_not_in_the_settings_repr(tmp_path: Path) -> None:
    s = load(dev_env(tmp_path, SMTP_HOST="smtp.example.com", SMTP_PASSWORD="hunter2-smtp-secret"), tmp_path)
    assert s.smtp_password == "hunter2-smtp-secret" and "hunter2-smtp-secret" not in repr(s)
