"""The ASGI entry point for uvicorn: `uvicorn webapp.asgi:app`. Refuses to start on unusable settings."""

from __future__ import annotations

import sys

from webapp import create_app
from webapp.settings import ConfigError, load_settings

try:
    _settings = load_settings()
except ConfigError as exc:
    print(f"Configuration error: {exc}", file=sys.stderr)
    raise SystemExit(2) from None

app = create_app(_settings)
