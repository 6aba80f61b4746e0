"""Load generation: wrk (Debian's package) driven by a generated Lua script, or an asyncio fallback.

Both return the same shape: requests per second, status counts (so a run answered with redirects or errors is
visible, not silently counted as throughput) and latency percentiles in milliseconds.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any

from bench.http import Client

PERCENTILES = (("p50", 50.0), ("p90", 90.0), ("p99", 99.0), ("p99.9", 99.9))


@dataclass
class Spec:
    """One request shape; a load run cycles through a list of them."""

    method: str
    path: str
    headers: dict[str, str] = field(default_factory=dict)
    body: str = ""


def ensure_wrk(allow_install: bool) -> tuple[str | None, str]:
    """Path to wrk and how it was found; installs Debian's package when missing and running as root."""
    found = shutil.which("wrk")
    if found:
        return found, "wrk (found on PATH)"
    if not allow_install or os.geteuid() != 0 or not shutil.which("apt-get"):
        return None, "asyncio driver (wrk missing and not root: `apt-get install wrk` to use it)"
    print("wrk is missing: installing Debian's package (apt-get install -y wrk)…", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "wrk"]):
        if subprocess.run(cmd, env=env, capture_output=True, timeout=300, check=False).returncode != 0:
            return None, "asyncio driver (apt-get install wrk failed)"
    found = shutil.which("wrk")
    return (found, "wrk (installed by the bench from Debian)") if found else (None, "asyncio driver (no wrk)")


def _lua_str(value: str) -> str:
    if any(ord(ch) < 32 or ord(ch) > 126 for ch in value):
        raise ValueError(f"non-printable value for a wrk script: {value!r}")
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _lua_spec(spec: Spec) -> str:
    headers = ", ".join(f"[{_lua_str(k)}] = {_lua_str(v)}" for k, v in spec.headers.items())
    body = _lua_str(spec.body) if spec.body else "nil"
    return f"{{method = {_lua_str(spec.method)}, path = {_lua_str(spec.path)}, headers = {{{headers}}}, body = {body}}}"


LUA_TEMPLATE = """
local specs = {%(specs)s}
local limit = %(limit)d
local threads = {}
local reqs = {}
local i = 0
local n = 0
statuses = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  for k, s in ipairs(specs) do
    reqs[k] = wrk.format(s.method, s.path, s.headers, s.body)
  end
end

function request()
  i = i %% #reqs + 1
  return reqs[i]
end

function response(status, headers, body)
  local key = tostring(status)
  statuses[key] = (statuses[key] or 0) + 1
  n = n + 1
  if limit > 0 and n >= limit then
    wrk.thread:stop()
  end
end

function done(summary, latency, requests)
  local counts = {}
  for _, t in ipairs(threads) do
    local st = t:get("statuses")
    for k, v in pairs(st) do counts[k] = (counts[k] or 0) + v end
  end
  local parts = {}
  for k, v in pairs(counts) do table.insert(parts, string.format('"%%s": %%d', k, v)) end
  local pct = {}
  for _, kp in ipairs({{"p50", 50.0}, {"p90", 90.0}, {"p99", 99.0}, {"p99.9", 99.9}}) do
    table.insert(pct, string.format('"%%s": %%.3f', kp[1], latency:percentile(kp[2]) / 1000.0))
  end
  io.write(string.format(
    'BENCHJSON {"requests": %%d, "duration_us": %%d, "bytes": %%d, "statuses": {%%s}, ' ..
    '"errors": {"connect": %%d, "read": %%d, "write": %%d, "status": %%d, "timeout": %%d}, ' ..
    '"latency_ms": {%%s, "max": %%.3f, "mean": %%.3f}}\\n',
    summary.requests, summary.duration, summary.bytes, table.concat(parts, ", "),
    summary.errors.connect, summary.errors.read, summary.errors.write, summary.errors.status,
    summary.errors.timeout, table.concat(pct, ", "), latency.max / 1000.0, latency.mean / 1000.0))
end
"""


@dataclass
class LoadGen:
    wrk: str | None
    how: str
    cpus: str | None  # taskset list for the generator, e.g. "0"

    async def run(self, port: int, specs: list[Spec], *, connections: int, duration_s: float,
                  limit: int = 0, timeout_s: float = 10.0) -> dict[str, Any]:
        if self.wrk:
            return await self._run_wrk(port, specs, connections, duration_s, limit, timeout_s)
        return await run_asyncio(port, specs, connections, duration_s, limit)

    async def _run_wrk(self, port: int, specs: list[Spec], connections: int, duration_s: float, limit: int,
                       timeout_s: float) -> dict[str, Any]:
        assert self.wrk
        script = LUA_TEMPLATE % {"specs": ", ".join(_lua_spec(s) for s in specs), "limit": limit}
        with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as fh:
            fh.write(script)
        try:
            cmd = [self.wrk, "-t1", f"-c{connections}", f"-d{max(1, round(duration_s))}s",
                   f"--timeout={int(timeout_s)}s", "-s", fh.name, f"http://127.0.0.1:{port}"]
            if self.cpus:
                cmd = ["taskset", "-c", self.cpus, *cmd]
            proc = await asyncio.create_subprocess_exec(*cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            out, err = await proc.communicate()
        finally:
            os.unlink(fh.name)
        line = next((ln for ln in out.decode().splitlines() if ln.startswith("BENCHJSON ")), None)
        if proc.returncode != 0 or line is None:
            raise RuntimeError(f"wrk failed ({proc.returncode}): {err.decode()[-500:]} {out.decode()[-500:]}")
        data = json.loads(line.removeprefix("BENCHJSON "))
        duration = data.pop("duration_us") / 1e6
        data["duration_s"] = round(duration, 3)
        data["rps"] = round(data["requests"] / duration, 1) if duration else 0.0
        data["connections"] = connections
        data["generator"] = "wrk"
        return data


async def run_asyncio(port: int, specs: list[Spec], connections: int, duration_s: float,
                      limit: int = 0) -> dict[str, Any]:
    """The fallback closed-loop generator: `connections` keep-alive clients for `duration_s` (or `limit` replies)."""
    latencies: list[float] = []
    statuses: dict[str, int] = {}
    errors = {"connect": 0, "read": 0, "write": 0, "status": 0, "timeout": 0}
    started = time.perf_counter()
    deadline = started + duration_s
    counter = 0

    async def worker(offset: int) -> None:
        nonlocal counter
        client = Client("127.0.0.1", port)
        k = offset
        try:
            while time.perf_counter() < deadline and (not limit or counter < limit):
                spec = specs[k % len(specs)]
                k += 1
                t0 = time.perf_counter()
                try:
                    reply = await client.request(spec.method, spec.path, dict(spec.headers), spec.body.encode())
                except (OSError, asyncio.IncompleteReadError):
                    errors["read"] += 1
                    await client.close()
                    continue
                latencies.append(time.perf_counter() - t0)
                counter += 1
                statuses[str(reply.status)] = statuses.get(str(reply.status), 0) + 1
                if reply.status >= 400:
                    errors["status"] += 1
        finally:
            await client.close()

    await asyncio.gather(*(worker(i) for i in range(connections)))
    duration = time.perf_counter() - started
    return {
        "requests": len(latencies), "duration_s": round(duration, 3), "bytes": 0, "statuses": statuses,
        "errors": errors, "latency_ms": percentiles_ms(latencies), "connections": connections,
        "rps": round(len(latencies) / duration, 1) if duration else 0.0, "generator": "asyncio",
    }


def percentiles_ms(samples_s: list[float]) -> dict[str, float]:
    if not samples_s:
        return {**{key: 0.0 for key, _ in PERCENTILES}, "max": 0.0, "mean": 0.0}
    ordered = sorted(samples_s)
    out = {}
    for key, p in PERCENTILES:
        index = min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))
        out[key] = round(ordered[index] * 1000, 3)
    out["max"] = round(ordered[-1] * 1000, 3)
    out["mean"] = round(sum(ordered) / len(ordered) * 1000, 3)
    return out
