"""Bench-only launcher: one uvicorn worker serving the app (or the ceiling) behind an event-loop stall probe.

`python -m bench.server app --port N` builds the app exactly as `webapp.asgi` does (create_app(load_settings())),
wraps it without touching webapp/, and serves it with the options `make run` uses. The wrapper starts a ticker
that sleeps TICK_S and records how late each wake-up is: the loop's longest stall. `GET /_bench/stall` returns it
as JSON, `?reset=1` starts a new measurement window.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from typing import Any

import uvicorn
from starlette.types import ASGIApp, Receive, Scope, Send

TICK_S = 0.005


class StallProbe:
    """Pure-ASGI wrapper: answers /_bench/* itself, passes everything else to the wrapped app."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.task: asyncio.Task[None] | None = None
        self.reset()

    def reset(self) -> None:
        self.max_lag_s = 0.0
        self.ticks = 0
        self.over_50ms = 0
        self.window_started = time.monotonic()

    async def _tick(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            before = loop.time()
            await asyncio.sleep(TICK_S)
            lag = loop.time() - before - TICK_S
            self.ticks += 1
            self.max_lag_s = max(self.max_lag_s, lag)
            if lag > 0.05:
                self.over_50ms += 1

    def report(self) -> dict[str, Any]:
        return {
            "max_stall_ms": round(self.max_lag_s * 1000, 2),
            "ticks": self.ticks,
            "stalls_over_50ms": self.over_50ms,
            "window_s": round(time.monotonic() - self.window_started, 2),
            "pid": os.getpid(),
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.task is None:
            self.task = asyncio.get_running_loop().create_task(self._tick())
        if scope["type"] == "http" and scope["path"].startswith("/_bench/"):
            if scope["path"] != "/_bench/stall":
                await _send_json(send, 404, {"error": "unknown bench endpoint"})
                return
            body = self.report()
            if b"reset=1" in scope.get("query_string", b""):
                self.reset()
            await _send_json(send, 200, body)
            return
        await self.app(scope, receive, send)


async def _send_json(send: Send, status: int, body: dict[str, Any]) -> None:
    payload = json.dumps(body).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


def build(kind: str) -> ASGIApp:
    if kind == "ceiling":
        from bench.ceiling import create_ceiling_app

        return create_ceiling_app()
    from webapp import create_app
    from webapp.settings import ConfigError, load_settings

    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"Configuration error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    return create_app(settings)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.server")
    parser.add_argument("kind", choices=["app", "ceiling"])
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    # The same options as `make run`, for the app and the ceiling alike: one worker, uvloop and httptools,
    # uvicorn's proxy headers off (the app decides which proxies it trusts), no Server header, default logging.
    config = uvicorn.Config(StallProbe(build(args.kind)), host="127.0.0.1", port=args.port, workers=1,
                            loop="uvloop", http="httptools", proxy_headers=False, server_header=False,
                            lifespan="auto" if args.kind == "ceiling" else "on")
    uvicorn.Server(config).run()


if __name__ == "__main__":
    main()
