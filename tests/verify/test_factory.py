"""open_gateway's choice of backend and the development outbox page."""

from __future__ import annotations

import jinja2
import pytest
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.templating import Jinja2Templates

from tests.fakeverify.plugin import FakeVerify
from webapp.settings import ROOT, ConfigError, Settings
from webapp.verify import open_gateway
from webapp.verify.dev import OUTBOX_SIZE, DevVerifyBackend
from webapp.verify.outbox import dev_outbox
from webapp.verify.twilio_backend import TwilioVerifyBackend

pytestmark = pytest.mark.anyio
NUMBER = "+14155550123"
# The real base.html needs the app's routes and globals; the page under test only fills its two blocks.
BASE = "<title>{% block title %}{% endblock %}</title><main>{% block content %}{% endblock %}</main>"


async def test_twilio_backend_when_configured_and_session_closed_after(
    twilio_settings: Settings, fake_verify: FakeVerify
) -> None:
    async with open_gateway(twilio_settings) as gateway:
        assert isinstance(gateway, TwilioVerifyBackend) and gateway.name == "twilio"
        session = gateway._http.session
        assert not session.closed
    assert session.closed


async def test_development_backend_without_credentials() -> None:
    async with open_gateway(Settings()) as gateway:
        assert isinstance(gateway, DevVerifyBackend) and gateway.name == "development"


async def test_production_refuses_the_development_backend() -> None:
    with pytest.raises(ConfigError):
        async with open_gateway(Settings(env="production")):
            pass


def outbox_request(backend: object, settings: Settings) -> Request:
    app = Starlette()
    env = jinja2.Environment(
        loader=jinja2.ChoiceLoader(
            [jinja2.DictLoader({"base.html": BASE}), jinja2.FileSystemLoader(ROOT / "templates")]
        ),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    app.state.templates = Jinja2Templates(env=env)
    app.state.verify = backend
    app.state.settings = settings
    scope = {"type": "http", "method": "GET", "path": "/dev/outbox", "headers": [], "query_string": b"", "app": app}
    return Request(scope)


async def test_outbox_lists_codes_with_masked_numbers() -> None:
    backend = DevVerifyBackend()
    started = await backend.start(NUMBER)
    code = backend.outbox[0].code
    response = await dev_outbox(outbox_request(backend, Settings()))
    page = bytes(response.body).decode()
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    assert code in page and started.sid in page and "+1••••••••23" in page
    assert NUMBER not in page and NUMBER[2:] not in page
    assert "<caption>" in page and "Development only" in page
    assert "style=" not in page and "<script" not in page


async def test_outbox_keeps_the_last_fifty() -> None:
    backend = DevVerifyBackend()
    for n in range(OUTBOX_SIZE + 5):
        await backend.start(f"+1415555{n:04d}")
    assert len(backend.outbox) == OUTBOX_SIZE
    assert backend.outbox[0].to.endswith("54")


async def test_outbox_is_404_with_twilio(twilio_settings: Settings, fake_verify: FakeVerify) -> None:
    async with open_gateway(twilio_settings) as gateway:
        with pytest.raises(HTTPException) as raised:
            await dev_outbox(outbox_request(gateway, twilio_settings))
    assert raised.value.status_code == 404


async def test_outbox_is_404_in_production() -> None:
    with pytest.raises(HTTPException) as raised:
        await dev_outbox(outbox_request(DevVerifyBackend(), Settings(env="production")))
    assert raised.value.status_code == 404
