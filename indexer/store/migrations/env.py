"""Alembic environment, configured in code by ``indexer.store.schema.alembic_config`` (no alembic.ini).

The caller passes an open connection in ``config.attributes["connection"]``, usually inside its own
transaction (stamp + upgrade then commit or roll back together); ``sqlalchemy.url`` is the fallback for
running the ``alembic`` command by hand. SQLite runs in batch mode (tables rebuilt by copy).
"""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection
from sqlmodel import SQLModel

import indexer.store.models  # noqa: F401 - registers the tables on SQLModel.metadata (for autogenerate)

config = context.config


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=SQLModel.metadata,
        render_as_batch=True,  # SQLite alters tables by rebuilding them
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    from indexer.store.schema import migration_engine

    url = config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("no connection given and no sqlalchemy.url set: use `indexer db upgrade`")
    engine = migration_engine(url)
    try:
        with engine.connect() as conn:
            _run(conn)
    finally:
        engine.dispose()


if context.is_offline_mode():
    raise RuntimeError("offline (--sql) migrations are not supported: run `indexer db upgrade` against the database")
run_migrations_online()
