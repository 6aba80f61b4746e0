"""The system under test: a scratch database, seeded users, the fake Verify server and the two uvicorn workers."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import bcrypt

from bench.http import Client

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "violet-harbour-lantern-47"  # noqa: S105 - a password the app's policy accepts; users are seeded, not registered
PG_DEFAULT = "postgresql+psycopg://postgres@127.0.0.1:5432/webapp_bench"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def set_affinity(pid: int, cpus: set[int]) -> None:
    """Move every thread of `pid` (threads started later inherit from the one that starts them)."""
    for tid in os.listdir(f"/proc/{pid}/task"):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.sched_setaffinity(int(tid), cpus)


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


@dataclass
class Users:
    password_users: list[str] = field(default_factory=list)
    profile_user: str = "bprofile"
    weight_user: str = "bweight"
    mfa_rounds: list[list[str]] = field(default_factory=list)  # one fresh batch of 2FA users per round
    mfa_probe: str = "bmfaprobe"
    mfa_weight: str = "bmfaweight"


@dataclass
class Stack:
    workdir: Path
    postgres_url: str | None
    bcrypt_rounds: int
    verify_latency_ms: int
    server_cpus: set[int] | None
    procs: list[tuple[str, subprocess.Popen[bytes], IO[bytes]]] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    fake: dict[str, str] = field(default_factory=dict)
    app_port: int = 0
    ceiling_port: int = 0
    app_pid: int = 0
    ceiling_pid: int = 0
    database_url: str = ""
    users: Users = field(default_factory=Users)
    password_hash: str = ""
    pepper: bytes = b""

    # ---- processes -------------------------------------------------------------------------------------------
    def _spawn(self, name: str, cmd: list[str], env: dict[str, str], stdout: int | IO[bytes] | None = None,
               stdin: int | None = None) -> subprocess.Popen[bytes]:
        log = (self.workdir / f"{name}.log").open("wb")
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=stdout or log, stderr=log, stdin=stdin)
        self.procs.append((name, proc, log))
        return proc

    def start_fake(self) -> None:
        env = {**os.environ, "FAKE_LATENCY_MS": "0", "PYTHONPATH": str(ROOT)}
        proc = self._spawn("fakeverify", [sys.executable, "-m", "tests.fakeverify"], env,
                           stdout=subprocess.PIPE, stdin=subprocess.PIPE)
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the fake Verify server did not start; see {self.workdir / 'fakeverify.log'}")
        self.fake = json.loads(line)

    def configure(self) -> None:
        if self.postgres_url:
            self.database_url = self.postgres_url
            _recreate_pg(self.postgres_url)
        else:
            self.database_url = f"sqlite+aiosqlite:///{self.workdir / 'bench.db'}"
        self.env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "APP_ENV": "production",
            "SECRET_KEY": secrets.token_urlsafe(48),
            "PASSWORD_PEPPER": secrets.token_urlsafe(48),
            "DATABASE_URL": self.database_url,
            "INSTANCE_DIR": str(self.workdir / "instance"),
            "BCRYPT_ROUNDS": str(self.bcrypt_rounds),
            "TWILIO_ACCOUNT_SID": self.fake["account_sid"],
            "TWILIO_AUTH_TOKEN": self.fake["auth_token"],
            "TWILIO_VERIFY_SERVICE_SID": self.fake["service_sid"],
            "TWILIO_VERIFY_BASE_URL": self.fake["base_url"],
            "ALLOW_VERIFY_BASE_URL": "1",
            # Every bench client is 127.0.0.1: the per-IP sign-in limit (30/min) would refuse the load itself.
            "IP_REQUESTS_PER_MINUTE": "100000000",
            "SMS_GLOBAL_DAILY_BUDGET": "100000",
            # Production needs mail settings; nothing listens on this loopback port, so the outbox only retries
            # in the background (requests never wait on SMTP).
            "APP_BASE_URL": "http://localhost:8000",
            "SMTP_HOST": "127.0.0.1",
            "SMTP_PORT": "9",
            "SMTP_SECURITY": "none",
            "MAIL_FROM": "bench@localhost",
        }
        self.pepper = self.env["PASSWORD_PEPPER"].encode()

    def migrate_and_seed(self, password_users: int, mfa_users: int, rounds: int) -> None:
        subprocess.run([sys.executable, "-m", "webapp.migrate"], cwd=ROOT, env=self.env, check=True,
                       capture_output=True)
        from sqlalchemy import create_engine, insert

        from webapp.db import sync_url
        from webapp.identity.passwords import prehash
        from webapp.models import User

        self.password_hash = bcrypt.hashpw(prehash(self.pepper, PASSWORD),
                                           bcrypt.gensalt(self.bcrypt_rounds)).decode()
        u = self.users
        u.password_users = [f"bpw{i}" for i in range(password_users)]
        u.mfa_rounds = [[f"bmfa{r}x{i}" for i in range(mfa_users)] for r in range(rounds)]
        now = datetime.now(UTC).replace(tzinfo=None)
        rows: list[dict[str, Any]] = []
        # One executemany takes its columns from the first row: every row names the same keys.
        for name in [*u.password_users, u.profile_user, u.weight_user]:
            rows.append({"username": name, "display_name": name, "email": f"{name}@example.com",
                         "password_hash": self.password_hash, "pepper_id": 1, "mfa_enabled": False,
                         "phone_e164": None, "phone_verified_at": None})
        mfa_names = [n for batch in u.mfa_rounds for n in batch] + [u.mfa_probe, u.mfa_weight]
        for index, name in enumerate(mfa_names):
            rows.append({"username": name, "display_name": name, "email": f"{name}@example.com",
                         "password_hash": self.password_hash, "pepper_id": 1, "mfa_enabled": True,
                         "phone_e164": f"+1415{5550100 + index:07d}", "phone_verified_at": now})
        engine = create_engine(sync_url(self.database_url))
        with engine.begin() as conn:
            conn.execute(insert(User), rows)
        engine.dispose()

    def start_servers(self) -> None:
        self.app_port, self.ceiling_port = free_port(), free_port()
        for kind, port in (("app", self.app_port), ("ceiling", self.ceiling_port)):
            cmd = [sys.executable, "-m", "bench.server", kind, "--port", str(port)]
            if self.server_cpus is not None:
                cmd = ["taskset", "-c", ",".join(map(str, sorted(self.server_cpus))), *cmd]
            proc = self._spawn(kind, cmd, self.env)
            if kind == "app":
                self.app_pid = proc.pid
            else:
                self.ceiling_pid = proc.pid
        asyncio.run(self._wait_ready())

    async def _wait_ready(self) -> None:
        for port, path in ((self.app_port, "/healthz"), (self.ceiling_port, "/healthz")):
            deadline = time.monotonic() + 60
            while True:
                for name, proc, _ in self.procs:
                    if proc.poll() is not None:
                        raise RuntimeError(f"{name} exited ({proc.returncode}); see {self.workdir / (name + '.log')}")
                client = Client("127.0.0.1", port)
                try:
                    if (await client.get(path)).status == 200:
                        break
                except OSError:
                    pass
                finally:
                    await client.close()
                if time.monotonic() > deadline:
                    raise RuntimeError(f"server on port {port} did not answer {path} within 60 s")
                await asyncio.sleep(0.1)

    def stop(self) -> None:
        for _name, proc, log in reversed(self.procs):
            if proc.poll() is None:
                if proc.stdin:
                    proc.stdin.close()  # the fake serves until its stdin closes
                proc.terminate()
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            log.close()
        self.procs.clear()

    # ---- database look-ups the driver needs -------------------------------------------------------------------
    def verification_sid(self, username: str) -> str | None:
        """The latest challenge's Verify SID: how the bench reads the code the fake 'sent' to a seeded user."""
        from sqlalchemy import create_engine, select

        from webapp.db import sync_url
        from webapp.models import MfaChallenge, User

        engine = self._sync_engine(create_engine, sync_url)
        with engine.connect() as conn:
            row = conn.execute(
                select(MfaChallenge.verification_sid).join(User, User.id == MfaChallenge.user_id)
                .where(User.username == username).order_by(MfaChallenge.created_at.desc()).limit(1)
            ).first()
        return row[0] if row else None

    _engine: Any = None

    def _sync_engine(self, create_engine: Any, sync_url: Any) -> Any:
        if self._engine is None:
            self._engine = create_engine(sync_url(self.database_url), pool_size=10)
        return self._engine


def _recreate_pg(url: str) -> None:
    import psycopg
    from psycopg import sql
    from sqlalchemy.engine import make_url

    target = make_url(url)
    admin = target.set(drivername="postgresql", database="postgres").render_as_string(hide_password=False)
    try:
        with psycopg.connect(admin, autocommit=True, connect_timeout=3) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(target.database)))
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(target.database)))
    except psycopg.OperationalError as exc:
        raise SystemExit(f"--postgres: PostgreSQL not reachable at {admin}: {exc}".strip()) from None
