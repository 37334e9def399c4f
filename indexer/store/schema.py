"""Schema versions: the Alembic revisions in ``store/migrations``, where a database stands, and the upgrade.

``make_engine`` accepts only a database at the head revision (an empty one it migrates to head);
anything else is refused with the ``indexer db upgrade`` command to run, and left untouched.
Databases made by the releases before migrations have no ``alembic_version`` table: their revision is
read from their columns (``position_snapshots.market`` came with 0002, ``snapshot_runs.shard`` with
0003, ``snapshot_runs.market_state`` with 0004, the ``alert_states`` table with 0005, ``snapshot_runs.orphaned_at`` with 0006), and ``indexer db upgrade`` records it before upgrading,
in the same transaction.

    >>> head_revision()
    '0006_reliability'
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, create_engine, event, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SQLAlchemyError
from sqlalchemy.pool import NullPool

from indexer.errors import ConfigError, IndexerError, StoreError

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
VERSION_TABLE = "alembic_version"
# The tables every release had; any of them without a version table is a database of a release before migrations.
INDEXER_TABLES = ("snapshot_runs", "position_snapshots", "price_snapshots", "checkpoints", "known_accounts")
# Revision of an unversioned database, by the newest table and column it has (newest first).
_UNVERSIONED_MARKERS = (
    ("snapshot_runs", "orphaned_at", "0006_reliability"),
    ("alert_states", "tier", "0005_watchlist_alerts"),
    ("snapshot_runs", "market_state", "0004_risk_state"),
    ("snapshot_runs", "shard", "0003_scale_out"),
    ("position_snapshots", "market", "0002_markets"),
)
_UNVERSIONED_OLDEST = "0001_initial"
# pg_advisory_xact_lock key: one migration at a time per PostgreSQL database (several `indexer run` may start at once).
_PG_MIGRATION_LOCK = 0x1D3E_C0DE_0001
# Seconds to wait for a database server to accept the connection before calling it unreachable.
CONNECT_TIMEOUT_SECONDS = 10
# Seconds SQLite waits for another writer (a migration holds the write lock while it runs).
SQLITE_BUSY_TIMEOUT_SECONDS = 30


def redact(url: str) -> str:
    """``url`` for messages and logs: the password is never shown."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<unparseable URL>"


def alembic_config(connection: Connection | None = None) -> Config:
    """The Alembic configuration of the shipped migrations; ``connection`` is the one they run on."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


@cache
def _script() -> ScriptDirectory:
    return ScriptDirectory.from_config(alembic_config())


def head_revision() -> str:
    """The revision this indexer's models correspond to."""
    head = _script().get_current_head()
    if head is None:
        raise StoreError(f"no migrations found in {MIGRATIONS_DIR}: the installation is incomplete")
    return head


def known_revisions() -> list[str]:
    """Every revision id, oldest first."""
    return [rev.revision for rev in reversed(list(_script().walk_revisions()))]


@dataclass(frozen=True, slots=True)
class SchemaState:
    """Where a database's schema stands."""

    revision: str | None  # its revision; None when it has none of the indexer's tables (empty)
    versioned: bool  # recorded in alembic_version (False: empty, or made by a release before migrations)

    @property
    def empty(self) -> bool:
        return self.revision is None

    def describe(self) -> str:
        if self.revision is None:
            return "(empty)"
        return self.revision if self.versioned else f"{self.revision} (unversioned)"


def read_state(conn: Connection) -> SchemaState:
    """The schema state of the database behind ``conn`` (reads the catalog and alembic_version only)."""
    inspector = inspect(conn)
    tables = set(inspector.get_table_names())
    if VERSION_TABLE in tables:
        versions = sorted(str(v) for v in conn.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalars())
        if versions:
            return SchemaState(",".join(versions), versioned=True)
    if not tables & set(INDEXER_TABLES):
        return SchemaState(None, versioned=False)
    for table, column, revision in _UNVERSIONED_MARKERS:
        if table in tables and column in {c["name"] for c in inspector.get_columns(table)}:
            return SchemaState(revision, versioned=False)
    return SchemaState(_UNVERSIONED_OLDEST, versioned=False)


def refusal(state: SchemaState, url: str) -> StoreError | None:
    """Why this indexer must not use a database in ``state`` (None: at head, or empty)."""
    head, shown = head_revision(), redact(url)
    if state.revision is None or (state.revision == head and state.versioned):
        return None
    if state.revision not in known_revisions():
        return StoreError(
            f"database schema is at {state.revision}, which this indexer does not know (it needs {head}): "
            "it was upgraded by a newer indexer version; run that version, or point --database-url at another database"
        )
    upgrade_cmd = f"run `indexer db upgrade --database-url {shown}`"
    if state.revision == head:
        return StoreError(f"database schema is at {head} but records no version (made before migrations): {upgrade_cmd} to record it")
    return StoreError(
        f"database schema is at {state.describe()}, made by an older indexer version; this indexer needs {head}: "
        f"{upgrade_cmd} (nothing was changed)"
    )


# SQLite page size of a new database file, set before its first table is created (a file that has tables keeps
# its own): a position row is ~1.3 KB, and 16 KB pages write a 10k-row snapshot ~40 % faster than the default
# 4 KB (bench/refresh.py, row (s)).
SQLITE_PAGE_SIZE = 16_384


def _engine_args(url: str) -> dict[str, Any]:
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "postgresql" and parsed.get_driver_name() in ("psycopg", "psycopg2"):  # libpq's parameter
        return {"connect_args": {"connect_timeout": CONNECT_TIMEOUT_SECONDS}}
    if backend == "sqlite":
        return {"connect_args": {"timeout": SQLITE_BUSY_TIMEOUT_SECONDS}}
    return {}


def _create(url: str) -> Engine:
    """A pool-less engine for one schema check or migration; a bad URL or missing driver is a ConfigError."""
    try:
        make_url(url)
    except ArgumentError:  # not echoed: it may hold a password that could not be located
        raise ConfigError(
            "database_url: not a database URL (e.g. sqlite:///indexer.db or postgresql+psycopg://user@host:5432/db)", key="database_url"
        ) from None
    try:
        return create_engine(url, poolclass=NullPool, **_engine_args(url))
    except (ArgumentError, NoSuchModuleError, ImportError) as exc:
        raise ConfigError(f"database_url: {redact(url)} is not usable: {_first_line(exc)}", key="database_url") from None


def inspection_engine(url: str) -> Engine:
    """An engine that only reads the schema: no pragma, nothing written (a refused database stays byte-identical)."""
    return _create(url)


def migration_engine(url: str) -> Engine:
    """An engine for migrations. On SQLite: foreign keys off while tables are rebuilt by copy, and every
    transaction ``BEGIN IMMEDIATE`` so that the DDL is transactional and migrations are serialized. (The
    journal mode is left alone: the store's engine sets WAL, and a failed upgrade leaves the file as it was.)"""
    engine = _create(url)
    if engine.dialect.name == "sqlite":

        @event.listens_for(engine, "connect")
        def _connect(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.isolation_level = None  # the driver's own transaction handling would commit DDL early
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA foreign_keys=OFF")
            cur.execute(f"PRAGMA page_size={SQLITE_PAGE_SIZE}")  # a new file's first migration; a no-op after
            cur.close()

        @event.listens_for(engine, "begin")
        def _begin(conn: Connection) -> None:
            conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def _first_line(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None)
    lines = str(orig if orig is not None else exc).strip().splitlines()
    return " ".join(lines[0].split()) if lines else type(exc).__name__


def _connect(engine: Engine, url: str) -> Connection:
    try:
        return engine.connect()
    except SQLAlchemyError as exc:
        raise ConfigError(f"database_url: cannot connect to {redact(url)}: {_first_line(exc)}", key="database_url") from None


def current_state(url: str, engine: Engine | None = None) -> SchemaState:
    """The schema state of ``url`` (through ``engine`` when given, else a read-only inspection engine)."""
    own = engine is None
    eng = inspection_engine(url) if engine is None else engine
    try:
        with _connect(eng, url) as conn:
            return read_state(conn)
    except SQLAlchemyError as exc:
        raise StoreError(f"cannot read the schema of {redact(url)}: {_first_line(exc)}") from None
    finally:
        if own:
            eng.dispose()


def upgrade(url: str, target: str = "head", *, engine: Engine | None = None) -> tuple[SchemaState, SchemaState]:
    """Migrate ``url`` to ``target``; returns (before, after). One transaction: an unversioned database is
    stamped with its detected revision and upgraded, or nothing changes. Idempotent at ``target``."""
    own = engine is None
    eng = migration_engine(url) if engine is None else engine
    try:
        with _connect(eng, url) as conn, conn.begin():
            if conn.dialect.name == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_MIGRATION_LOCK})
            before = read_state(conn)  # read under the lock: another process may just have migrated it
            if before.revision is not None and before.revision not in known_revisions():
                raise refusal(before, url) or StoreError(f"unknown schema revision {before.revision}")
            cfg = alembic_config(conn)
            if before.revision is not None and not before.versioned:
                command.stamp(cfg, before.revision)
            command.upgrade(cfg, target)
            after = read_state(conn)
    except IndexerError:
        raise
    except Exception as exc:  # SQLAlchemy, Alembic (CommandError) and batch-mode errors (ValueError, KeyError) alike
        raise StoreError(f"upgrading {redact(url)} failed and was rolled back: {type(exc).__name__}: {_first_line(exc)}") from None
    finally:
        if own:
            eng.dispose()
    if before != after:
        log.info("database %s migrated: %s -> %s", redact(url), before.describe(), after.describe())
    return before, after
