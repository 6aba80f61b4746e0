"""Alembic environment: the URL comes from the caller's config or the app's settings."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, pool

from webapp.db import sync_url
from webapp.models import Base

config = context.config
url = config.get_main_option("sqlalchemy.url")
if not url:
    from webapp.settings import load_settings

    url = load_settings().database_url

engine = create_engine(sync_url(url), poolclass=pool.NullPool)
with engine.connect() as connection:
    context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()
engine.dispose()
