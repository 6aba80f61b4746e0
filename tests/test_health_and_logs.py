"""/healthz is liveness, /readyz readiness (database + schema head); every log line carries its request id."""

from __future__ import annotations

import contextlib
import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from starlette.testclient import TestClient

from tests.operators.kit import schema_behind
from tests.support import events, signed_in_client, start_enroll
from webapp import create_app
from webapp.health import migration_heads
from webapp.settings import Settings
from webapp.verify.dev import DevVerifyBackend


def serve(settings: Settings) -> TestClient:
    return TestClient(create_app(settings, verify=DevVerifyBackend()), base_url="https://testserver",
                      follow_redirects=False)


def test_readyz_reports_the_schema_at_the_migration_head(client: TestClient) -> None:
    r = client.get("/readyz")
    assert r.status_code == 200
    assert r.json() == {"ready": True, "schema": list(migration_heads())}
    assert r.headers["cache-control"] == "no-store"


def test_readyz_answers_503_while_the_schema_is_behind(client: TestClient, settings: Settings) -> None:
    with schema_behind(settings):
        r = client.get("/readyz")
    assert r.status_code == 503
    reason = r.json()["reason"]
    assert "0001" in reason and migration_heads()[0] in reason and "migrat" in reason
    assert client.get("/healthz").status_code == 200  # alive, just not ready


def test_readyz_answers_503_on_a_database_never_migrated(settings: Settings, tmp_path: Path) -> None:
    with serve(settings.with_overrides(database_url=f"sqlite:///{tmp_path / 'empty.db'}")) as c:
        r = c.get("/readyz")
    assert r.status_code == 503
    assert "no schema" in r.json()["reason"]


def test_readyz_answers_503_when_the_database_is_unreachable(settings: Settings, tmp_path: Path) -> None:
    unreachable = f"sqlite:///{tmp_path / 'no-such-dir' / 'app.db'}"
    with serve(settings.with_overrides(database_url=unreachable)) as c:
        r = c.get("/readyz")
        assert c.get("/healthz").status_code == 200
    assert r.status_code == 503
    assert r.json() == {"ready": False, "reason": "the database is unreachable (OperationalError)"}


# --- logs ------------------------------------------------------------------------------------------------------

@contextlib.contextmanager
def app_log() -> Iterator[list[dict[str, Any]]]:
    """What the app's own JSON handler writes, captured by pointing its stream at a buffer; filled on exit."""
    handler = next(h for h in logging.getLogger().handlers if getattr(h, "_webapp", False))
    assert isinstance(handler, logging.StreamHandler)
    buffer = io.StringIO()
    previous = handler.setStream(buffer)
    lines: list[dict[str, Any]] = []
    try:
        yield lines
    finally:
        handler.setStream(previous)
        lines.extend(json.loads(line) for line in buffer.getvalue().splitlines())


def test_every_line_of_a_request_carries_its_request_id_provider_errors_included(
        client: TestClient, settings: Settings) -> None:
    signed_in_client(client)
    with app_log() as lines:
        r = start_enroll(client, "+15005550010")  # Fraud Guard: a provider error, logged and audited
    assert r.status_code == 422, r.text
    app_lines = [line for line in lines if line["logger"] != "httpx2"]  # httpx2: the test's own client
    [failed] = events(settings, "mfa_code_send_failed")
    provider = [line for line in app_lines if line.get("event") == "provider_error"]
    assert provider, app_lines
    assert all(line.get("request_id") for line in app_lines), [x for x in app_lines if not x.get("request_id")]
    assert {line["request_id"] for line in provider} == {failed["request_id"]}


def test_uvicorns_lines_join_the_json_stream(client: TestClient) -> None:
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        assert logger.handlers == [] and logger.propagate


def test_log_level_setting_drops_lines_below_it(settings: Settings) -> None:
    with app_log() as lines:
        with serve(settings.with_overrides(log_level="WARNING")) as c:
            c.get("/login")
            logging.getLogger("webapp.test").info("below the level")
            logging.getLogger("webapp.test").warning("at the level")
        with serve(settings):  # back to INFO for the tests that follow
            pass
    messages = [line["msg"] for line in lines]
    assert "at the level" in messages and "below the level" not in messages
