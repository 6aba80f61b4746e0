"""Choose and own the Verify backend for the lifetime of the app."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from webapp.settings import ConfigError, Settings
from webapp.verify.dev import DevVerifyBackend
from webapp.verify.gateway import VerifyGateway
from webapp.verify.twilio_backend import TwilioVerifyBackend

log = logging.getLogger("webapp.verify")


@asynccontextmanager
async def open_gateway(settings: Settings, *, clock: Callable[[], float] | None = None) -> AsyncIterator[VerifyGateway]:
    """Twilio when configured; the development backend otherwise, which production refuses.

    Enter it from the Starlette lifespan: the Twilio backend's aiohttp session needs a running loop.
    `clock` drives the development backend's expiry, so tests can move time.
    """
    if settings.twilio_configured:
        backend = TwilioVerifyBackend(settings)
        log.info("verify backend: twilio", extra={"event": "verify_backend", "backend": "twilio"})
        try:
            yield backend
        finally:
            await backend.close()
        return
    if settings.production:
        # Settings already refuses this; the guard stays so a hand-built Settings cannot print codes to the log.
        raise ConfigError("production needs Twilio Verify credentials; the development code backend is refused")
    log.warning(
        "verify backend: development; codes are written to the log, not sent",
        extra={"event": "verify_backend", "backend": "development"},
    )
    yield DevVerifyBackend(clock=clock)
