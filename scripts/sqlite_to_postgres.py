"""Copy an existing SQLite installation into an empty, migrated PostgreSQL database (docs/deploy.md).

    python scripts/sqlite_to_postgres.py sqlite:///instance/app.db postgresql+psycopg://app:…@host:5432/app

Both databases must be at the same migration head (run `python -m webapp.migrate` against each first), the app
must be stopped, and the target must hold no accounts. Every table is copied in one transaction, in foreign-key
order, through the app's own table definitions (so booleans, timestamps and JSON convert correctly); PostgreSQL's
id sequences then continue after the copied ids. Keep SECRET_KEY and PASSWORD_PEPPER as they were.
"""

from __future__ import annotations

import sys
from pathlib import Path

from sqlalchemy import Engine, Integer, create_engine, func, select, text
from sqlalchemy.orm import Session

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from webapp.db import sync_url
from webapp.health import applied_revisions, migration_heads
from webapp.models import Base

CHUNK = 1000


class CopyRefused(Exception):
    """The copy would be unsafe; the message says why."""


def _check(engine: Engine, role: str) -> None:
    with Session(engine) as s:
        applied = applied_revisions(s)
        if applied != migration_heads():
            raise CopyRefused(f"the {role} database is at {applied or 'no schema'}, not at {migration_heads()}: "
                              "run `python -m webapp.migrate` against it first")
        if role == "target" and s.execute(select(func.count()).select_from(Base.metadata.tables["users"])).scalar():
            raise CopyRefused("the target database already holds accounts; copy only into an empty one")


def copy(source_url: str, target_url: str) -> dict[str, int]:
    source, target = create_engine(sync_url(source_url)), create_engine(sync_url(target_url))
    if target.dialect.name != "postgresql":
        raise CopyRefused("the target must be a PostgreSQL URL (postgresql+psycopg://…)")
    try:
        _check(source, "source")
        _check(target, "target")
        counts: dict[str, int] = {}
        with source.connect() as read, target.begin() as write:
            for table in Base.metadata.sorted_tables:  # parents before children
                counts[table.name] = 0
                result = read.execution_options(yield_per=CHUNK).execute(select(table))
                for rows in result.partitions():
                    write.execute(table.insert(), [dict(row._mapping) for row in rows])
                    counts[table.name] += len(rows)
                [column, *more] = table.primary_key.columns
                if not more and isinstance(column.type, Integer):  # a serial id: continue after the copied ones
                    write.execute(text(
                        f"SELECT setval(pg_get_serial_sequence('{table.name}', '{column.name}'), "  # noqa: S608
                        f"COALESCE(MAX({column.name}), 1), MAX({column.name}) IS NOT NULL) FROM {table.name}"))
        return counts
    finally:
        source.dispose()
        target.dispose()


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    try:
        counts = copy(argv[1], argv[2])
    except CopyRefused as exc:
        print(f"Refused: {exc}", file=sys.stderr)
        return 1
    for name, n in counts.items():
        print(f"{name}: {n} rows copied")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
