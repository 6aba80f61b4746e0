"""The fake's HTTP plumbing: a threaded stdlib server on 127.0.0.1:0 plus the test-only /_fake control endpoints."""

from __future__ import annotations

import json
import os
import secrets
import threading
from dataclasses import fields
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.fakeverify.emulator import Emulator, Fault, Reply


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # handlers may be sleeping out an injected delay for a client that gave up
    request_queue_size = 128  # the default 5 drops connections when dozens of clients connect at once
    emulator: Emulator


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"  # keep-alive, as aiohttp's pool expects
    disable_nagle_algorithm = True  # headers and body are written separately; Nagle adds ~40 ms per response

    def log_message(self, format: str, *args: Any) -> None:  # the default writes every request to stderr
        pass

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def _dispatch(self, method: str) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        url = urlsplit(self.path)
        try:
            if url.path.startswith("/_fake/"):
                reply = self._control(method, url.path, parse_qs(url.query), body)
            else:
                headers = {k.lower(): v for k, v in self.headers.items()}
                reply = self.server.emulator.handle(method, url.path, headers, body)
            self._send(reply)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client timed out and left

    def _send(self, reply: Reply) -> None:
        if reply.status == 0:
            self.close_connection = True
            return
        if reply.raw is not None:
            payload = reply.raw.encode()
        else:
            payload = json.dumps(reply.body).encode()
            reply.headers.setdefault("Content-Type", "application/json")
        self.send_response(reply.status)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def _control(self, method: str, path: str, query: dict[str, list[str]], body: bytes) -> Reply:
        emulator = self.server.emulator
        data: dict[str, Any] = json.loads(body) if body else {}
        with emulator.lock:
            if (method, path) == ("GET", "/_fake/code"):
                code = emulator.store.code_for(query.get("sid", [""])[0])
                return Reply(200, {"code": code}) if code else Reply(404, {"error": "unknown sid"})
            if (method, path) == ("GET", "/_fake/requests"):
                return Reply(200, emulator.requests)
            if (method, path) == ("GET", "/_fake/violations"):
                return Reply(200, emulator.violations)
            if (method, path) == ("POST", "/_fake/clock"):
                emulator.offset += float(data.get("advance", 0))
                return Reply(200, {"now": emulator.now()})
            if (method, path) == ("POST", "/_fake/latency"):
                emulator.latency_s = float(data["ms"]) / 1000
                return Reply(200, {"latency_ms": data["ms"]})
            if (method, path) == ("POST", "/_fake/faults"):
                known = {f.name for f in fields(Fault)}
                unknown = set(data) - known
                if unknown:
                    return Reply(400, {"error": f"unknown fault keys {sorted(unknown)}"})
                emulator.faults.append(Fault(**data))
                return Reply(201, data)
        if (method, path) == ("POST", "/_fake/reset"):
            emulator.reset()
            return Reply(200, {})
        return Reply(404, {"error": "unknown control endpoint"})


class FakeVerifyServer:
    """Start with `start()`, stop with `stop()`; credentials and service SID are random per server."""

    def __init__(self) -> None:
        self.account_sid = "AC" + secrets.token_hex(16)
        self.auth_token = secrets.token_hex(16)
        self.api_key_sid = "SK" + secrets.token_hex(16)
        self.api_key_secret = secrets.token_hex(16)
        self.service_sid = "VA" + secrets.token_hex(16)
        self._httpd = _Server(("127.0.0.1", 0), _Handler)
        self.base_url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        credentials = {self.account_sid: self.auth_token, self.api_key_sid: self.api_key_secret}
        latency_s = float(os.environ.get("FAKE_LATENCY_MS", "0")) / 1000
        self._httpd.emulator = Emulator(self.account_sid, credentials, self.service_sid, self.base_url, latency_s)
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="fake-verify", daemon=True)

    def settings(self) -> dict[str, str]:
        """Everything a client needs: base URL, account, auth token, service, API key pair."""
        return {
            "base_url": self.base_url,
            "account_sid": self.account_sid,
            "auth_token": self.auth_token,
            "service_sid": self.service_sid,
            "api_key_sid": self.api_key_sid,
            "api_key_secret": self.api_key_secret,
        }

    def start(self) -> FakeVerifyServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)
