"""The operations settings: LOG_LEVEL, METRICS_TOKEN and AUDIT_RETENTION_DAYS are validated like the others."""

from __future__ import annotations

from pathlib import Path

import pytest

from webapp.settings import ConfigError, Settings, load_settings


def load(tmp_path: Path, **env: str) -> Settings:
    base = {"INSTANCE_DIR": str(tmp_path), "DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}"}
    return load_settings(environ={**base, **env}, dotenv=tmp_path / "none.env")


def test_defaults_log_at_info_keep_metrics_off_and_audit_rows_a_year(tmp_path: Path) -> None:
    settings = load(tmp_path)
    assert (settings.log_level, settings.metrics_token, settings.audit_retention_days) == ("INFO", "", 365)


def test_values_are_read_and_the_level_is_case_insensitive(tmp_path: Path) -> None:
    settings = load(tmp_path, LOG_LEVEL="warning", METRICS_TOKEN="t" * 24, AUDIT_RETENTION_DAYS="90")
    assert (settings.log_level, settings.metrics_token, settings.audit_retention_days) == ("WARNING", "t" * 24, 90)
    assert "t" * 24 not in repr(settings)  # a secret, like the others


@pytest.mark.parametrize(("env", "message"), [
    ({"LOG_LEVEL": "LOUD"}, "LOG_LEVEL must be one of"),
    ({"METRICS_TOKEN": "short"}, "METRICS_TOKEN is too short"),
    ({"AUDIT_RETENTION_DAYS": "0"}, "AUDIT_RETENTION_DAYS must be at least 1"),
    ({"AUDIT_RETENTION_DAYS": "a year"}, "AUDIT_RETENTION_DAYS must be a whole number"),
])
def test_unusable_values_are_refused_with_a_message(tmp_path: Path, env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load(tmp_path, **env)
