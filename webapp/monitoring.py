"""What operators poll: GET /readyz, GET /metrics (bearer token), and the middleware that times every request."""

from __future__ import annotations

import hmac
import logging
import time
from collections.abc import Iterator
from datetime import timedelta

from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from sqlalchemy.pool import QueuePool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from webapp import health, metrics, rows
from webapp.db import Database, utcnow
from webapp.models import MailOutbox, Throttle
from webapp.security import throttle
from webapp.settings import Settings
from webapp.web import deps_of

log = logging.getLogger("webapp.monitoring")
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
NO_STORE = {"Cache-Control": "no-store"}


def route_label(scope: Scope) -> str:
    """The matched route's template (`/2fa/{action:str}`), never the raw path, so labels stay few."""
    path = getattr(scope.get("route"), "path", None)
    return path if isinstance(path, str) and path else "unmatched"


class MetricsMiddleware:
    """Pure-ASGI: count and time each HTTP request by route template, method and final status."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        began = time.perf_counter()
        status = 500  # an exception that escapes everything below becomes uvicorn's 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route = route_label(scope)
            method = scope["method"] if scope["method"] in METHODS else "other"
            metrics.HTTP_REQUESTS.labels(route, method, str(status)).inc()
            metrics.HTTP_LATENCY.labels(route, method).observe(time.perf_counter() - began)


async def readyz(request: Request) -> Response:
    """200 when the database answers and its schema is at this code's migration head; 503 with the reason."""
    ready = await health.check(deps_of(request).db)
    if ready.ready:
        return JSONResponse({"ready": True, "schema": list(ready.schema)}, headers=NO_STORE)
    log.warning("not ready", extra={"event": "not_ready", "reason": ready.reason})
    return JSONResponse({"ready": False, "reason": ready.reason}, status_code=503, headers=NO_STORE)


def bearer_matches(request: Request, token: str) -> bool:
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    # Constant-time, so the response time says nothing about how much of a guess was right.
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode())


async def metrics_scrape(request: Request) -> Response:
    deps = deps_of(request)
    if not deps.settings.metrics_token:
        raise HTTPException(404)  # off: indistinguishable from a route that does not exist
    if not bearer_matches(request, deps.settings.metrics_token):
        return PlainTextResponse("A bearer token is required.\n", 401,
                                 headers={"WWW-Authenticate": 'Bearer realm="metrics"', **NO_STORE})
    gauges = CollectorRegistry(auto_describe=False)
    gauges.register(ScrapeGauges(deps.db, await _budget_left(deps.db, deps.settings), await _outbox(deps.db)))
    body = generate_latest(REGISTRY) + generate_latest(gauges)
    return Response(body, media_type=CONTENT_TYPE, headers=NO_STORE)


async def _budget_left(db: Database, settings: Settings) -> int | None:
    try:
        return await db.read(sms_budget_left, settings)
    except Exception:  # a scrape still reports everything else while the database is down
        log.warning("metrics: the SMS budget could not be read", exc_info=True)
        return None


async def _outbox(db: Database) -> tuple[int, float] | None:
    try:
        return await db.read(outbox_backlog)
    except Exception:
        log.warning("metrics: the mail outbox could not be read", exc_info=True)
        return None


def outbox_backlog(s: Session) -> tuple[int, float]:
    """Mails not yet delivered (pending or being sent), and the age in seconds of the oldest of them."""
    count, oldest = s.execute(select(func.count(), func.min(MailOutbox.created_at))
                              .where(MailOutbox.status.in_(("pending", "sending")))).one()
    return int(count), (utcnow() - rows.as_datetime(oldest)).total_seconds() if oldest else 0.0


def sms_budget_left(s: Session, settings: Settings) -> int:
    """Codes the global daily budget still allows: the same row `sending` counts against (R-O9)."""
    key = throttle.throttle_key(settings.secret_key, "sends-global", "all")
    row = s.execute(select(Throttle.count, Throttle.window_started_at).where(Throttle.key == key)).first()
    budget = settings.sms_global_daily_budget
    if row is None or row[1] <= utcnow() - timedelta(days=1):
        return budget  # no window open: the next send starts a fresh day
    return max(0, budget - int(row[0]))


class ScrapeGauges(Collector):
    """Values computed at scrape time: the SMS budget left, the mail outbox backlog and the database pool."""

    def __init__(self, db: Database, budget_left: int | None, outbox: tuple[int, float] | None) -> None:
        self.db = db
        self.budget_left = budget_left
        self.outbox = outbox

    def collect(self) -> Iterator[Metric]:
        if self.budget_left is not None:
            yield GaugeMetricFamily("webapp_sms_budget_left", "Codes the global daily SMS budget still allows",
                                    value=self.budget_left)
        if self.outbox is not None:
            yield GaugeMetricFamily("webapp_mail_outbox_depth", "Mails written but not yet delivered",
                                    value=self.outbox[0])
            yield GaugeMetricFamily("webapp_mail_outbox_oldest_seconds", "Age of the oldest undelivered mail",
                                    value=self.outbox[1])
        pool = self.db.engine.pool
        if not isinstance(pool, QueuePool):
            return
        connections = GaugeMetricFamily("webapp_db_pool_connections", "Database connections of this process",
                                        labels=["state"])
        connections.add_metric(["in_use"], pool.checkedout())
        connections.add_metric(["idle"], pool.checkedin())
        yield connections
        yield GaugeMetricFamily("webapp_db_pool_size", "Configured pool size; overflow connections come on top",
                                value=pool.size())
        yield GaugeMetricFamily("webapp_db_pool_overflow", "Connections open beyond the pool size (negative while "
                                "fewer than the pool size are open)", value=pool.overflow())
