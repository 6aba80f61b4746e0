"""Readiness: the database answers and its schema is at the migration head this code was written for. No HTTP here.

Shared by GET /readyz and `webapp check-config`, so the two can't disagree about what "ready" means.
"""

from __future__ import annotations

import asyncio
import functools
from dataclasses import dataclass

from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from webapp.db import Database
from webapp.settings import ROOT

ANSWER_WITHIN_S = 3.0


@dataclass(frozen=True)
class Readiness:
    ready: bool
    reason: str = ""
    schema: tuple[str, ...] = ()
    head: tuple[str, ...] = ()


@functools.cache
def migration_heads() -> tuple[str, ...]:
    """The head revision(s) of the migration scripts shipped with this code."""
    script = ScriptDirectory.from_config(Config(str(ROOT / "alembic.ini")))
    return tuple(sorted(script.get_heads()))


def applied_revisions(s: Session) -> tuple[str, ...]:
    """The revision(s) recorded in the database; empty when it was never migrated."""
    if not inspect(s.connection()).has_table("alembic_version"):
        return ()
    return tuple(sorted(s.execute(text("SELECT version_num FROM alembic_version")).scalars()))


def judge(applied: tuple[str, ...], heads: tuple[str, ...]) -> Readiness:
    if applied == heads:
        return Readiness(True, schema=applied, head=heads)
    if not applied:
        reason = f"the database has no schema; run the migrations (head {', '.join(heads)})"
    else:
        reason = (f"schema at {', '.join(applied)} but this version needs {', '.join(heads)}; "
                  "run the migrations (`python -m webapp.migrate`)")
    return Readiness(False, reason, applied, heads)


async def check(db: Database, timeout_s: float = ANSWER_WITHIN_S) -> Readiness:
    """Never raises: a database that fails or does not answer in time is a reason, not an exception."""
    heads = migration_heads()
    try:
        applied = await asyncio.wait_for(db.read(applied_revisions), timeout_s)
    except TimeoutError:
        return Readiness(False, f"the database did not answer within {timeout_s:g} s", head=heads)
    except SQLAlchemyError as exc:
        return Readiness(False, f"the database is unreachable ({type(exc).__name__})", head=heads)
    return judge(applied, heads)
