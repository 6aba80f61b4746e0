"""APP_BASE_URL: required in production, http://localhost:PORT in development, an origin and nothing more."""

from __future__ import annotations

import pytest

from webapp.settings import ConfigError, app_base_url_from


def test_development_defaults_to_localhost_and_the_port() -> None:
    assert app_base_url_from({}, production=False) == "http://localhost:8000"
    assert app_base_url_from({"HOST": "0.0.0.0", "PORT": "9000"}, production=False) == "http://localhost:9000"  # noqa: S104
    assert app_base_url_from({"HOST": "dev.example.test"}, production=False) == "http://dev.example.test:8000"


def test_production_requires_it() -> None:
    with pytest.raises(ConfigError, match="APP_BASE_URL is required in production"):
        app_base_url_from({}, production=True)


def test_trailing_slash_is_dropped() -> None:
    assert app_base_url_from({"APP_BASE_URL": "https://accounts.example.com/"}, True) == "https://accounts.example.com"


@pytest.mark.parametrize("value", ["accounts.example.com", "ftp://example.com", "https://example.com/app",
                                   "https://example.com?x=1", "https://example.com#top", "https://:443"])
def test_anything_but_an_origin_is_refused(value: str) -> None:
    with pytest.raises(ConfigError):
        app_base_url_from({"APP_BASE_URL": value}, production=False)


def test_production_needs_https_except_on_loopback() -> None:
    with pytest.raises(ConfigError, match="https"):
        app_base_url_from({"APP_BASE_URL": "http://accounts.example.com"}, production=True)
    assert app_base_url_from({"APP_BASE_URL": "http://localhost:8000"}, production=True) == "http://localhost:8000"
