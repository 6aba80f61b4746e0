"""GET /metrics: off without METRICS_TOKEN, bearer-only with it, and counting what operators need at low cardinality.

Counters are process-wide (Prometheus' default registry), so each test compares before and after.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families
from starlette.testclient import TestClient

from tests.support import (
    CountingVerify,
    execute,
    form_post,
    login,
    make_2fa_user,
    register,
    signed_in_client,
    start_enroll,
)
from webapp import create_app
from webapp.db import utcnow
from webapp.settings import Settings

TOKEN = "metrics-token-" + "m" * 24
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def counting() -> CountingVerify:
    return CountingVerify()


@pytest.fixture
def mclient(settings: Settings, counting: CountingVerify) -> Iterator[TestClient]:
    app = create_app(settings.with_overrides(metrics_token=TOKEN), verify=counting)
    with TestClient(app, base_url="https://testserver", follow_redirects=False) as c:
        yield c


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def scrape(client: TestClient) -> dict[str, list[tuple[dict[str, str], float]]]:
    r = client.get("/metrics", headers=AUTH)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain; version=0.0.4")
    found: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(r.text):
        for s in family.samples:
            found.setdefault(s.name, []).append((s.labels, s.value))
    return found


def test_metrics_answer_404_when_no_token_is_configured(client: TestClient) -> None:
    assert client.get("/metrics").status_code == 404
    assert client.get("/metrics", headers=AUTH).status_code == 404


@pytest.mark.parametrize("header", [None, "Bearer wrong-token-wrong-token", f"Basic {TOKEN}", f"Bearer {TOKEN}x",
                                    "Bearer"])
def test_metrics_refuse_a_missing_or_wrong_bearer_token(mclient: TestClient, header: str | None) -> None:
    r = mclient.get("/metrics", headers={"Authorization": header} if header else {})
    assert r.status_code == 401
    assert r.headers["www-authenticate"].startswith("Bearer")
    assert "webapp_http_requests_total" not in r.text


def test_requests_are_counted_by_route_template_never_by_raw_path(mclient: TestClient) -> None:
    before = sample("webapp_http_requests_total", route="/2fa/{action:str}", method="GET", status="303")
    mclient.get("/2fa/raw-value-qzxv")  # not signed in: redirected to the sign-in page
    mclient.get("/no/such/page-wqzy")
    body = mclient.get("/metrics", headers=AUTH).text
    assert sample("webapp_http_requests_total", route="/2fa/{action:str}", method="GET", status="303") == before + 1
    assert sample("webapp_http_requests_total", route="unmatched", method="GET", status="404") >= 1
    assert "qzxv" not in body and "wqzy" not in body
    assert sample("webapp_http_request_duration_seconds_count", route="/no/such/page-wqzy", method="GET") == 0
    assert sample("webapp_http_request_duration_seconds_count", route="unmatched", method="GET") >= 1


def test_a_sign_in_lockout_and_the_refusals_after_it_are_counted(mclient: TestClient, settings: Settings) -> None:
    register(mclient, "alice")
    locks, refusals = sample("webapp_lockouts_total", kind="login"), sample("webapp_throttle_refusals_total",
                                                                             kind="login-locked")
    for _ in range(settings.login_max_failures):
        assert login(mclient, "alice", "wrong-password-wrong-password").status_code == 422  # type: ignore[attr-defined]
    assert login(mclient, "alice").status_code == 429  # type: ignore[attr-defined]
    assert sample("webapp_lockouts_total", kind="login") == locks + 1
    assert sample("webapp_throttle_refusals_total", kind="login-locked") == refusals + 1


def test_codes_sent_checks_and_the_sms_budget_are_reported(mclient: TestClient, settings: Settings,
                                                           counting: CountingVerify) -> None:
    make_2fa_user(mclient, settings)
    sent = sample("webapp_verify_codes_sent_total", channel="sms", outcome="sent")
    wrong = sample("webapp_code_checks_total", factor="sms", outcome="wrong")
    passed = sample("webapp_code_checks_total", factor="sms", outcome="passed")
    r = login(mclient, "alice")
    assert r.status_code == 303  # type: ignore[attr-defined]
    page = mclient.get("/login/verify").text
    wrong_code = "000000" if counting.code != "000000" else "111111"
    assert form_post(mclient, "/login/verify", page, {"code": wrong_code}).status_code == 422
    assert form_post(mclient, "/login/verify", page, {"code": counting.code}).status_code == 303
    assert sample("webapp_verify_codes_sent_total", channel="sms", outcome="sent") == sent + 1
    assert sample("webapp_code_checks_total", factor="sms", outcome="wrong") == wrong + 1
    assert sample("webapp_code_checks_total", factor="sms", outcome="passed") == passed + 1
    found = scrape(mclient)
    assert found["webapp_sms_budget_left"] == [({}, settings.sms_global_daily_budget - 1)]


def test_provider_errors_are_counted_by_twilio_code(mclient: TestClient) -> None:
    signed_in_client(mclient)
    errors = sample("webapp_verify_errors_total", operation="start", code="60410")
    failed = sample("webapp_verify_codes_sent_total", channel="sms", outcome="failed")
    r = start_enroll(mclient, "+15005550010")  # Fraud Guard blocks this number in the development backend
    assert r.status_code == 422, r.text
    assert sample("webapp_verify_errors_total", operation="start", code="60410") == errors + 1
    assert sample("webapp_verify_codes_sent_total", channel="sms", outcome="failed") == failed + 1


def test_the_database_pool_is_reported_at_scrape_time(mclient: TestClient) -> None:
    found = scrape(mclient)
    states = {labels["state"]: value for labels, value in found["webapp_db_pool_connections"]}
    assert set(states) == {"in_use", "idle"}
    assert states["in_use"] >= 0 and states["idle"] >= 0
    assert found["webapp_db_pool_size"][0][1] > 0


def test_the_mail_outbox_backlog_is_reported_at_scrape_time(mclient: TestClient, settings: Settings) -> None:
    an_hour_ago = utcnow() - timedelta(hours=1)
    for key, status in (("waiting", "pending"), ("done", "sent")):
        execute(settings, "INSERT INTO mail_outbox (to_addr, template, context, status, created_at, due_at, "
                          "attempts, last_error, message_key) VALUES ('a@example.com', 'notice', '{}', :status, :at, "
                          ":due, 0, '', :key)", status=status, at=an_hour_ago, due=utcnow() + timedelta(days=1),
                key=key)
    found = scrape(mclient)
    assert found["webapp_mail_outbox_depth"] == [({}, 1)]  # the sent one no longer counts
    assert 3500 < found["webapp_mail_outbox_oldest_seconds"][0][1] < 3700


def test_every_label_value_comes_from_a_small_fixed_set(mclient: TestClient) -> None:
    signed_in_client(mclient)
    mclient.get("/static/app.css")
    for n in range(5):
        mclient.get(f"/users/{n}/raw")
    for name, series in scrape(mclient).items():
        if not name.startswith("webapp_"):
            continue
        for labels, _ in series:
            route = labels.get("route")
            assert route is None or route == "unmatched" or route.startswith("/"), (name, labels)
            assert "/users/" not in (route or ""), (name, labels)
