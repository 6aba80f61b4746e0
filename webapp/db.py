"""The store: each unit of work is one synchronous SQLAlchemy transaction run in a worker thread.

A unit of work is a plain function `fn(session, *args)`. It cannot await, so no read-modify-write can span
bcrypt or a Twilio call, and the whole transaction costs one hop off the event loop instead of one per cursor
call (aiosqlite's model). `write` takes the database's write lock first: `BEGIN IMMEDIATE` on SQLite; on
PostgreSQL the unit of work locks the rows it decides on (`SELECT … FOR UPDATE`, see `lock_user`) or changes
them with one conditional statement.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any, Concatenate, ParamSpec, TypeVar

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session, sessionmaker

P = ParamSpec("P")
T = TypeVar("T")
WRITE_OPTION = "webapp_write"
DB_THREADS = 8
CONNECT_TIMEOUT_S = 5
SIGNALS = "webapp_signals"


def signal(s: Session, name: str) -> None:
    """Run `name`'s listeners (see `Database.on_commit`) once this unit of work commits; a rollback drops it.

    The mail outbox uses it to wake the sender the moment a row is committed, instead of at its next poll.
    """
    s.info.setdefault(SIGNALS, set()).add(name)


def utcnow() -> datetime:
    """Naive UTC: SQLite drops tzinfo, so every stored timestamp is naive UTC on both databases."""
    return datetime.now(UTC).replace(tzinfo=None)


def sync_url(url: str) -> str:
    """Accept the async driver names older configurations used; the store runs synchronous drivers."""
    return url.replace("sqlite+aiosqlite://", "sqlite://").replace("postgresql+asyncpg://", "postgresql+psycopg://")


def _sqlite_engine(url: str) -> Engine:
    engine = create_engine(url, connect_args={"timeout": 15, "check_same_thread": False},
                           pool_size=DB_THREADS, max_overflow=4)

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_conn: Any, _record: Any) -> None:
        # pysqlite would open transactions lazily, at the first write, so a read-then-write unit of work could
        # lose a race; with its own handling off, "begin" below decides how each transaction starts.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA busy_timeout=15000")
        cur.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get(WRITE_OPTION) else "BEGIN")

    return engine


def make_engine(url: str) -> Engine:
    url = sync_url(url)
    if url.startswith("sqlite"):
        return _sqlite_engine(url)
    # A bounded connect: a database that stopped answering fails requests (and /readyz) instead of hanging them.
    return create_engine(url, pool_size=DB_THREADS, max_overflow=4, pool_pre_ping=True,
                         connect_args={"connect_timeout": CONNECT_TIMEOUT_S})


class Database:
    """Owns the engine and the worker threads; `await db.read(fn, …)` / `await db.write(fn, …)`."""

    def __init__(self, url: str) -> None:
        self.url = sync_url(url)
        self.engine = make_engine(url)
        self.dialect = self.engine.dialect.name
        self._reader = sessionmaker(self.engine, expire_on_commit=False)
        self._writer = sessionmaker(self.engine.execution_options(**{WRITE_OPTION: True}), expire_on_commit=False)
        self._pool = ThreadPoolExecutor(max_workers=DB_THREADS, thread_name_prefix="db")
        self._listeners: dict[str, list[Callable[[], None]]] = {}
        for maker in (self._reader, self._writer):
            event.listen(maker, "after_commit", self._after_commit)
            event.listen(maker, "after_rollback", self._after_rollback)

    def on_commit(self, name: str, callback: Callable[[], None]) -> None:
        """Call `callback` (in the committing thread: keep it short and thread-safe) after a unit of work that
        called `signal(s, name)` commits."""
        self._listeners.setdefault(name, []).append(callback)

    def _after_commit(self, s: Session) -> None:
        for name in s.info.pop(SIGNALS, ()):
            for callback in self._listeners.get(name, ()):
                callback()

    def _after_rollback(self, s: Session) -> None:
        s.info.pop(SIGNALS, None)

    def run_read(self, fn: Callable[Concatenate[Session, P], T], *args: P.args, **kwargs: P.kwargs) -> T:
        with self._reader.begin() as s:
            return fn(s, *args, **kwargs)

    def run_write(self, fn: Callable[Concatenate[Session, P], T], *args: P.args, **kwargs: P.kwargs) -> T:
        with self._writer.begin() as s:
            return fn(s, *args, **kwargs)

    async def read(self, fn: Callable[Concatenate[Session, P], T], *args: P.args, **kwargs: P.kwargs) -> T:
        """One read transaction in a worker thread."""
        return await self._off_loop(functools.partial(self.run_read, fn, *args, **kwargs))

    async def write(self, fn: Callable[Concatenate[Session, P], T], *args: P.args, **kwargs: P.kwargs) -> T:
        """One write transaction in a worker thread, holding the write lock from its first statement."""
        return await self._off_loop(functools.partial(self.run_write, fn, *args, **kwargs))

    async def _off_loop(self, call: Callable[[], T]) -> T:
        ctx = contextvars.copy_context()  # log lines written in the thread keep the request's context
        return await asyncio.get_running_loop().run_in_executor(self._pool, ctx.run, call)

    def dispose(self) -> None:
        self._pool.shutdown(wait=True)
        self.engine.dispose()
