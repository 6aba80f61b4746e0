"""Three uvicorn processes of the app on one PostgreSQL database and one (fake) Verify service.

No proxy in front: each process has its own port and the tests spread requests over them round-robin. The
processes trust 127.0.0.1 as a proxy (FORWARDED_ALLOW_IPS), so each test gives its browsers a client address of its
own through X-Forwarded-For and per-IP limits never leak from one test into another.

Without PostgreSQL (TEST_DATABASE_URL) these tests are skipped with the reason; REQUIRE_POSTGRES=1 (CI) makes that a
failure. The processes die with the fixture, with the test run (atexit), and with this process (PDEATHSIG).
"""

from __future__ import annotations

import atexit
import ctypes
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakeverify.server import FakeVerifyServer
from tests.multi.kit import Cluster

ROOT = Path(__file__).resolve().parents[2]
PROCESSES = 3
PG_URL = os.environ.get("TEST_DATABASE_URL", "")
LIMITS = {
    "LOGIN_MAX_FAILURES": "5",
    "IP_REQUESTS_PER_MINUTE": "20",
    "MFA_SENDS_PER_USER_PER_DAY": "3",
    "REGISTRATIONS_PER_IP_PER_HOUR": "1000",
    "ENROLL_SENDS_PER_IP_PER_HOUR": "1000",
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# Resolved now, not in the forked child: other threads (the fake Verify server's) may hold the loader's lock.
_PRCTL = ctypes.CDLL(None, use_errno=True).prctl if sys.platform == "linux" else None


def _die_with_parent() -> None:
    """In the child before exec: Linux sends SIGTERM when the test process goes away, however it goes."""
    if _PRCTL is not None:
        _PRCTL(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG


def _env(tmp: Path, fake: FakeVerifyServer) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TWILIO_", "TEST_"))}
    env.update(LIMITS)
    env.update({
        "APP_ENV": "development",
        "DATABASE_URL": PG_URL,
        "SECRET_KEY": secrets.token_urlsafe(48),
        "PASSWORD_PEPPER": secrets.token_urlsafe(48),
        "INSTANCE_DIR": str(tmp),
        "BCRYPT_ROUNDS": "4",
        "FORWARDED_ALLOW_IPS": "127.0.0.1",
        "TWILIO_ACCOUNT_SID": fake.account_sid,
        "TWILIO_AUTH_TOKEN": fake.auth_token,
        "TWILIO_VERIFY_SERVICE_SID": fake.service_sid,
        "TWILIO_VERIFY_BASE_URL": fake.base_url,
        "TWILIO_TIMEOUT_SECONDS": "5",
        "LOG_LEVEL": "WARNING",
        "PYTHONUNBUFFERED": "1",
    })
    return env


def _stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
    for proc in procs:
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def _wait_ready(url: str, proc: subprocess.Popen[bytes], log: Path, deadline: float) -> None:
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{url}: uvicorn exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url + "/readyz", timeout=2) as r:  # noqa: S310 - our own server
                if r.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            time.sleep(0.1)
    raise RuntimeError(f"{url} was not ready within the deadline:\n{log.read_text()[-3000:]}")


@pytest.fixture(scope="module")
def cluster(migrated_template: str, _fake_verify_server: FakeVerifyServer,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    if not PG_URL.startswith("postgresql"):
        reason = "the multi-instance suite needs PostgreSQL: set TEST_DATABASE_URL=postgresql+psycopg://…"
        if os.environ.get("REQUIRE_POSTGRES") == "1":
            pytest.fail(f"REQUIRE_POSTGRES=1 but {reason}", pytrace=False)
        pytest.skip(reason)
    tmp = tmp_path_factory.mktemp("multi")
    env = _env(tmp, _fake_verify_server)
    procs: list[subprocess.Popen[bytes]] = []
    atexit.register(_stop, procs)
    urls = []
    try:
        for n in range(PROCESSES):
            port = _free_port()
            log = tmp / f"app-{n}.log"
            with log.open("wb") as out:
                procs.append(subprocess.Popen(
                    [sys.executable, "-m", "uvicorn", "webapp.asgi:app", "--host", "127.0.0.1", "--port", str(port),
                     "--no-proxy-headers", "--no-server-header", "--no-access-log"],
                    cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, preexec_fn=_die_with_parent))
            urls.append(f"http://127.0.0.1:{port}")
        deadline = time.monotonic() + 60
        for url, proc, n in zip(urls, procs, range(PROCESSES), strict=True):
            _wait_ready(url, proc, tmp / f"app-{n}.log", deadline)
        yield Cluster(urls, env["SECRET_KEY"])
    finally:
        _stop(procs)
        atexit.unregister(_stop)
