"""A small HTTP/1.1 client on asyncio streams: keep-alive, its own cookie jar, and exact bytes on the wire.

Production cookies are `__Host-session` with `Secure`; a strict jar never sends those over http://, so this
jar keeps every cookie by name and sends it back to 127.0.0.1 regardless of `Secure` (loopback only).
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import re
import time
import zlib
from dataclasses import dataclass, field
from urllib.parse import urlencode

CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')
PARTIAL = {"HX-Request": "true", "HX-Request-Type": "partial"}
BROWSER = {
    "User-Agent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/140.0 Safari/537.36",
    "Accept-Encoding": "gzip, deflate, br, zstd",
    "Accept": "text/html,application/xhtml+xml,*/*;q=0.8",
}


@dataclass
class Reply:
    status: int
    headers: list[tuple[str, str]]
    body: bytes  # decoded (gzip/deflate undone) when possible
    wire_bytes: int  # status line + headers + body exactly as received
    elapsed_s: float
    encoding: str = ""

    def header(self, name: str) -> str | None:
        name = name.lower()
        return next((v for k, v in self.headers if k == name), None)

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def csrf(self) -> str:
        match = CSRF_RE.search(self.text)
        if not match:
            raise ValueError(f"no csrf_token field in the reply ({self.status})")
        return match.group(1)


@dataclass
class Client:
    host: str
    port: int
    cookies: dict[str, str] = field(default_factory=dict)
    _reader: asyncio.StreamReader | None = None
    _writer: asyncio.StreamWriter | None = None

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(OSError):
                await self._writer.wait_closed()
        self._reader = self._writer = None

    async def get(self, path: str, headers: dict[str, str] | None = None) -> Reply:
        return await self.request("GET", path, headers)

    async def post_form(self, path: str, data: dict[str, str], headers: dict[str, str] | None = None) -> Reply:
        body = urlencode(data).encode()
        extra = {"Content-Type": "application/x-www-form-urlencoded", "Sec-Fetch-Site": "same-origin",
                 "Origin": f"http://{self.host}:{self.port}", **(headers or {})}
        return await self.request("POST", path, extra, body)

    async def request(self, method: str, path: str, headers: dict[str, str] | None = None,
                      body: bytes = b"") -> Reply:
        for attempt in (0, 1):
            if self._writer is None:
                self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
            try:
                return await self._exchange(method, path, headers or {}, body)
            except (ConnectionError, asyncio.IncompleteReadError):
                await self.close()
                if attempt:
                    raise
        raise AssertionError("unreachable")

    async def _exchange(self, method: str, path: str, headers: dict[str, str], body: bytes) -> Reply:
        assert self._reader is not None and self._writer is not None
        lines = [f"{method} {path} HTTP/1.1", f"Host: {self.host}:{self.port}"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        if self.cookies:
            lines.append("Cookie: " + "; ".join(f"{k}={v}" for k, v in self.cookies.items()))
        if body or method == "POST":
            lines.append(f"Content-Length: {len(body)}")
        started = time.perf_counter()
        self._writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
        await self._writer.drain()
        head = await self._reader.readuntil(b"\r\n\r\n")
        wire = len(head)
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        status = int(status_line.split(" ", 2)[1])
        parsed = [(k.strip().lower(), v.strip()) for k, _, v in (h.partition(":") for h in header_lines if h)]
        hdr = dict(parsed)
        if "content-length" in hdr:
            raw = await self._reader.readexactly(int(hdr["content-length"]))
            wire += len(raw)
        elif hdr.get("transfer-encoding", "").lower() == "chunked":
            raw, wire = await self._read_chunked(wire)
        elif method == "HEAD" or status in (204, 304) or 100 <= status < 200:
            raw = b""
        else:
            raw = await self._reader.read()
            wire += len(raw)
            await self.close()
        elapsed = time.perf_counter() - started
        if hdr.get("connection", "").lower() == "close":
            await self.close()
        for key, value in parsed:
            if key == "set-cookie":
                self._store_cookie(value)
        encoding = hdr.get("content-encoding", "").lower()
        decoded = raw
        if encoding == "gzip":
            decoded = gzip.decompress(raw)
        elif encoding == "deflate":
            decoded = zlib.decompress(raw)
        return Reply(status, parsed, decoded, wire, elapsed, encoding)

    async def _read_chunked(self, wire: int) -> tuple[bytes, int]:
        assert self._reader is not None
        chunks: list[bytes] = []
        while True:
            size_line = await self._reader.readuntil(b"\r\n")
            wire += len(size_line)
            size = int(size_line.split(b";")[0].strip(), 16)
            data = await self._reader.readexactly(size + 2)
            wire += len(data)
            if size == 0:
                # Trailers are not used by uvicorn; the final CRLF was just read.
                return b"".join(chunks), wire
            chunks.append(data[:-2])

    def _store_cookie(self, value: str) -> None:
        pair, *attrs = [part.strip() for part in value.split(";")]
        name, _, val = pair.partition("=")
        expired = any(a.lower().replace(" ", "") == "max-age=0" for a in attrs)
        if expired or not val:
            self.cookies.pop(name, None)
        else:
            self.cookies[name] = val

    def cookie_header(self) -> str:
        return "; ".join(f"{k}={v}" for k, v in self.cookies.items())
