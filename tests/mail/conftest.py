"""Mail fixtures: the app wired to a real SMTP server in this process, with a fast sender."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient

from tests.mail.smtp import BASE_URL, SmtpSink
from webapp import create_app
from webapp.settings import Settings
from webapp.verify.dev import DevVerifyBackend


@pytest.fixture
def smtp() -> Iterator[SmtpSink]:
    sink = SmtpSink()
    sink.start()
    yield sink
    sink.stop()


@pytest.fixture
def mail_settings(settings: Settings, smtp: SmtpSink) -> Settings:
    return settings.with_overrides(
        smtp_host="127.0.0.1", smtp_port=smtp.port, smtp_security="none", smtp_timeout_s=5.0,
        mail_from="Two-step Accounts <no-reply@accounts.example.test>", app_base_url=BASE_URL,
        mail_poll_s=0.2, mail_retry_base_s=0.2, mail_retry_max_s=1.0,
    )


@pytest.fixture
def app(mail_settings: Settings, verify: DevVerifyBackend) -> Starlette:
    return create_app(mail_settings, verify=verify)


@pytest.fixture
def client(app: Starlette) -> Iterator[TestClient]:
    with TestClient(app, base_url="https://testserver", follow_redirects=False) as c:
        yield c
