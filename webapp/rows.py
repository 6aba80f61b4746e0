"""Hot read paths in plain SQL: the session check runs on every signed-in request, and building an ORM query
costs about ten times the query itself (statement construction and cache keys). Rows come back as detached,
transient model instances, read but never added to a session.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import Boolean, DateTime
from sqlalchemy.orm import DeclarativeBase

M = TypeVar("M", bound=DeclarativeBase)


def columns(model: type[DeclarativeBase], alias: str) -> str:
    """`alias.col AS alias__col, …` for every column of `model`."""
    return ", ".join(f"{alias}.{c.name} AS {alias}__{c.name}" for c in model.__table__.columns)


def _value(column: Any, value: Any) -> Any:
    # SQLite hands back text and integers where PostgreSQL's driver already gives datetimes and booleans.
    if value is None:
        return None
    if isinstance(column.type, DateTime) and isinstance(value, str):
        return datetime.fromisoformat(value)
    if isinstance(column.type, Boolean):
        return bool(value)
    return value


def as_datetime(value: datetime | str) -> datetime:
    return datetime.fromisoformat(value) if isinstance(value, str) else value


def as_dict(value: dict[str, Any] | str | None) -> dict[str, Any]:
    """A JSON column read through plain SQL: text on SQLite, already decoded on PostgreSQL."""
    if isinstance(value, str):
        decoded = json.loads(value)
        return decoded if isinstance(decoded, dict) else {}
    return value or {}


def hydrate(model: type[M], row: Mapping[Any, Any], alias: str) -> M:
    table = model.__table__
    return model(**{c.key: _value(c, row[f"{alias}__{c.name}"]) for c in table.columns})
