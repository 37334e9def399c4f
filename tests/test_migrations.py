"""Schema migrations, on SQLite and PostgreSQL: an empty database reaches exactly the models' schema; a
database of an earlier release is refused untouched until `indexer db upgrade` (the real command, in a
subprocess) migrates it keeping every row; database URL precedence for the commands."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, inspect, text
from sqlalchemy.engine import make_url
from sqlmodel import SQLModel

from indexer.config import load_settings
from indexer.devnet.anvil import free_port
from indexer.domain import AccountKey, PriceReading
from indexer.errors import StoreError
from indexer.store import schema
from indexer.store.db import account_positions, at_risk, known_accounts, list_runs, make_engine, write_snapshot
from tests.conftest import FreshDatabase, fresh_database, indexer
from tests.test_store import MAX, TABLES, WAD, block, position, snapshot

HEAD = "0006_reliability"
REVISIONS = ("0001_initial", "0002_markets", "0003_scale_out", "0004_risk_state", "0005_watchlist_alerts", HEAD)
SECRET = "s3cr3t-db-password"
OLD_BLOCK = block(100)
NEG_NLV = -(2**255) + 3


# --- helpers ---------------------------------------------------------------------------------------
def schema_diff(url: str) -> list[object]:
    """What autogenerate would change to make the database equal ``SQLModel.metadata`` (types included)."""
    engine = schema.inspection_engine(url)
    try:
        with engine.connect() as conn:
            return list(compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), SQLModel.metadata))
    finally:
        engine.dispose()


def primary_keys(url: str) -> dict[str, list[str]]:
    engine = schema.inspection_engine(url)
    try:
        with engine.connect() as conn:
            insp = inspect(conn)
            return {t: insp.get_pk_constraint(t)["constrained_columns"] for t in SQLModel.metadata.tables}
    finally:
        engine.dispose()


def version(db: FreshDatabase) -> list[str]:
    return [r[0] for r in db.rows("SELECT version_num FROM alembic_version")]


def dump(db: FreshDatabase) -> dict[str, list[tuple[object, ...]]]:
    """Every row of the indexer's tables, as the driver returns them (order-independent)."""
    present = db.tables()
    return {t: sorted(db.rows(f"SELECT * FROM {t}"), key=repr) for t in TABLES if t in present}


def fingerprint(db: FreshDatabase) -> tuple[object, ...]:
    """Tables, their columns, every row, and for SQLite the file's bytes."""
    file_hash = hashlib.sha256(db.path.read_bytes()).hexdigest() if db.path is not None else None
    return (sorted(db.tables()), {t: db.columns(t) for t in sorted(db.tables())}, dump(db), file_hash)


def to_revision(db: FreshDatabase, revision: str) -> None:
    """Build the schema of ``revision`` with the shipped migrations (what that release had)."""
    before, after = schema.upgrade(db.url, revision)
    assert (before.revision, after.revision) == (None, revision)


# The DDL the releases before migrations ran (SQLModel create_all of their models), per backend.
_TYPES = {
    "sqlite": {"serial": "INTEGER NOT NULL", "big": "VARCHAR(80)", "ts": "DATETIME"},
    "postgresql": {"serial": "SERIAL NOT NULL", "big": "NUMERIC(78, 0)", "ts": "TIMESTAMP WITH TIME ZONE"},
}


def release_ddl(backend: str, *, markets: bool) -> list[str]:
    t = _TYPES[backend]
    m, mk = ("market VARCHAR NOT NULL, ", ", market") if markets else ("", "")
    uq_pos, uq_price = ("uq_position_run_account_market", "uq_price_run_asset_market") if markets else ("uq_position_run_account", "uq_price_run_asset")
    return [
        f"CREATE TABLE snapshot_runs (id {t['serial']}, chain VARCHAR NOT NULL, chain_id INTEGER NOT NULL, protocol VARCHAR NOT NULL, "
        "kind VARCHAR NOT NULL, block_number INTEGER NOT NULL, block_hash VARCHAR NOT NULL, block_timestamp INTEGER NOT NULL, "
        "status VARCHAR NOT NULL, accounts_read INTEGER NOT NULL, positions INTEGER NOT NULL, liquidatable INTEGER NOT NULL, "
        f"rpc_requests INTEGER NOT NULL, duration_seconds FLOAT NOT NULL, created_at {t['ts']} NOT NULL, PRIMARY KEY (id), "
        "CONSTRAINT uq_run_block UNIQUE (chain_id, protocol, block_hash))",
        "CREATE INDEX ix_snapshot_runs_protocol ON snapshot_runs (protocol)",
        "CREATE INDEX ix_snapshot_runs_chain ON snapshot_runs (chain)",
        "CREATE TABLE checkpoints (chain VARCHAR NOT NULL, protocol VARCHAR NOT NULL, block_number INTEGER NOT NULL, "
        f"block_hash VARCHAR NOT NULL, updated_at {t['ts']} NOT NULL, PRIMARY KEY (chain, protocol))",
        f"CREATE TABLE known_accounts (protocol VARCHAR NOT NULL, account VARCHAR NOT NULL, {m}first_seen_block INTEGER NOT NULL, "
        f"PRIMARY KEY (protocol, account{mk}))",
        f"CREATE TABLE position_snapshots (id {t['serial']}, run_id INTEGER NOT NULL, protocol VARCHAR NOT NULL, chain_id INTEGER NOT NULL, "
        f"account VARCHAR NOT NULL, {m}block_number INTEGER NOT NULL, health_factor {t['big']} NOT NULL, health_factor_float FLOAT NOT NULL, "
        f"liquidatable BOOLEAN NOT NULL, collateral_usd {t['big']} NOT NULL, debt_usd {t['big']} NOT NULL, nlv_usd {t['big']} NOT NULL, "
        "liquidation_threshold_bps INTEGER NOT NULL, price_drop_to_liquidation FLOAT, legs TEXT NOT NULL, details TEXT NOT NULL, "
        f"PRIMARY KEY (id), CONSTRAINT {uq_pos} UNIQUE (run_id, account{mk}), FOREIGN KEY(run_id) REFERENCES snapshot_runs (id))",
        "CREATE INDEX ix_position_run_hf ON position_snapshots (run_id, health_factor_float)",
        "CREATE INDEX ix_position_snapshots_account ON position_snapshots (account)",
        f"CREATE TABLE price_snapshots (id {t['serial']}, run_id INTEGER NOT NULL, asset VARCHAR NOT NULL, {m}symbol VARCHAR NOT NULL, "
        f"price {t['big']} NOT NULL, price_decimals INTEGER NOT NULL, source VARCHAR NOT NULL, feed_answer {t['big']}, feed_updated_at INTEGER, "
        f"PRIMARY KEY (id), CONSTRAINT {uq_price} UNIQUE (run_id, asset{mk}), FOREIGN KEY(run_id) REFERENCES snapshot_runs (id))",
        "CREATE INDEX ix_price_snapshots_run_id ON price_snapshots (run_id)",
    ]


LEGS = json.dumps([{"asset": "0xWETH", "symbol": "WETH", "side": "collateral", "amount": "5", "decimals": 18, "value_usd": "3", "liquidation_threshold_bps": 8000}])


def seed_old_rows(db: FreshDatabase, *, markets: bool) -> None:
    """One run as an earlier release wrote it: a no-debt position (HF 2**256-1), an underwater one with a
    negative int256 NLV, a price, a checkpoint and known accounts. Ids come from the database."""
    inf = "9e999" if db.backend == "sqlite" else "'Infinity'"
    mcol, mval = (", market", ", ''") if markets else ("", "")
    run = "(SELECT MAX(id) FROM snapshot_runs)"
    db.execute(
        "INSERT INTO snapshot_runs (chain, chain_id, protocol, kind, block_number, block_hash, block_timestamp, status, accounts_read, "
        "positions, liquidatable, rpc_requests, duration_seconds, created_at) VALUES ('ethereum', 1, 'aave-main', 'aave_v3', "
        f"{OLD_BLOCK.number}, '{OLD_BLOCK.hash}', {OLD_BLOCK.timestamp}, 'canonical', 3, 2, 1, 7, 0.5, CURRENT_TIMESTAMP)",
        *(
            "INSERT INTO position_snapshots (run_id, protocol, chain_id, account, block_number, health_factor, health_factor_float, "
            f"liquidatable, collateral_usd, debt_usd, nlv_usd, liquidation_threshold_bps, price_drop_to_liquidation, legs, details{mcol}) "
            f"VALUES ({run}, 'aave-main', 1, '{account}', {OLD_BLOCK.number}, '{hf}', {hf_float}, {liq}, '{coll}', '{debt}', '{nlv}', 8000, "
            f"NULL, '{LEGS}', '{{\"emode\": \"0\"}}'{mval})"
            for account, hf, hf_float, liq, coll, debt, nlv in (
                ("0xNODEBT", MAX, inf, "FALSE", 10**21, 0, 10**21),
                ("0xNEG", 0, "0.0", "TRUE", 3, 2**255, NEG_NLV),
            )
        ),
        f"INSERT INTO price_snapshots (run_id, asset, symbol, price, price_decimals, source, feed_answer, feed_updated_at{mcol}) "
        f"VALUES ({run}, '0xWETH', 'WETH', '{2000 * 10**8}', 8, '0xFEED1', '{2000 * 10**8}', {OLD_BLOCK.timestamp - 60}{mval})",
        f"INSERT INTO checkpoints VALUES ('ethereum', 'aave-main', {OLD_BLOCK.number}, '{OLD_BLOCK.hash}', CURRENT_TIMESTAMP)",
        f"INSERT INTO known_accounts (protocol, account, first_seen_block{mcol}) VALUES ('aave-main', '0xNODEBT', 90{mval})",
        f"INSERT INTO known_accounts (protocol, account, first_seen_block{mcol}) VALUES ('aave-main', '0xNEG', 95{mval})",
    )


def make_release_database(db: FreshDatabase, revision: str, how: str) -> None:
    """A database as the release of ``revision`` left it: no alembic_version, rows in the old columns."""
    markets = revision == "0002_markets"
    if how == "release_ddl":
        db.execute(*release_ddl(db.backend, markets=markets))
    else:
        to_revision(db, revision)
        db.execute("DROP TABLE alembic_version")
    seed_old_rows(db, markets=markets)


def old_columns(db: FreshDatabase) -> dict[str, list[tuple[object, ...]]]:
    """The rows restricted to the columns of the first release (what a migration must carry over)."""
    cols = {
        "snapshot_runs": "id, chain, chain_id, protocol, kind, block_number, block_hash, block_timestamp, status, accounts_read, positions, "
        "liquidatable, rpc_requests, duration_seconds",
        "position_snapshots": "id, run_id, account, CAST(health_factor AS TEXT), health_factor_float, liquidatable, CAST(collateral_usd AS TEXT), "
        "CAST(debt_usd AS TEXT), CAST(nlv_usd AS TEXT), legs, details",
        "price_snapshots": "id, run_id, asset, CAST(price AS TEXT), CAST(feed_answer AS TEXT), feed_updated_at",
        "checkpoints": "chain, protocol, block_number, block_hash",
        "known_accounts": "protocol, account, first_seen_block",
    }
    return {t: sorted(db.rows(f"SELECT {c} FROM {t}"), key=repr) for t, c in cols.items()}


# --- an empty database ---------------------------------------------------------------------------------
def test_empty_database_is_migrated_to_head_and_equals_the_models(any_db: FreshDatabase) -> None:
    engine = make_engine(any_db.url)
    engine.dispose()
    assert version(any_db) == [HEAD]
    assert any_db.tables() == {"alembic_version", *SQLModel.metadata.tables}
    assert schema_diff(any_db.url) == []
    # compare_metadata does not look at primary keys: check them too (known_accounts' changed in 0002).
    assert primary_keys(any_db.url) == {name: [c.name for c in t.primary_key.columns] for name, t in SQLModel.metadata.tables.items()}
    # Reopening changes nothing.
    before = fingerprint(any_db)
    make_engine(any_db.url).dispose()
    make_engine(any_db.url, create=False).dispose()
    assert fingerprint(any_db) == before


def _changes(url: str) -> set[tuple[str, str]]:
    changes = set()
    for op in schema_diff(url):
        if isinstance(op, tuple) and op[0] in ("add_table", "add_constraint", "remove_constraint", "add_index"):
            changes.add((op[0], op[1].name))
        elif isinstance(op, tuple) and op[0] == "add_column":
            changes.add((op[0], f"{op[2]}.{op[3].name}"))
    return changes


# What each revision adds, as autogenerate reports it against the revision before.
_ADDED_BY = {
    "0003_scale_out": {
        ("add_table", "job_leases"),
        ("add_index", "ix_job_leases_expires_at"),
        ("add_table", "workers"),
        ("add_index", "ix_workers_heartbeat_at"),
        ("add_column", "snapshot_runs.shard"),
        ("add_column", "snapshot_runs.shards"),
        ("remove_constraint", "uq_run_block"),
        ("add_constraint", "uq_run_shard_block"),
    },
    "0004_risk_state": {
        ("add_column", "snapshot_runs.market_state"),
        ("add_column", "snapshot_runs.head_block"),
        ("add_column", "snapshot_runs.rpc_errors"),
        ("add_column", "position_snapshots.state"),
    },
    "0005_watchlist_alerts": {
        ("add_table", "watchlist"),
        ("add_table", "alerts"),
        ("add_index", "ix_alerts_address"),
        ("add_table", "alert_states"),
    },
    "0006_reliability": {
        ("add_column", "price_snapshots.quality"),
        ("add_column", "position_snapshots.price_quality"),
        ("add_column", "snapshot_runs.orphaned_at"),
    },
}


@pytest.mark.parametrize("revision", ["0002_markets", "0003_scale_out"])
def test_the_schema_comparison_sees_an_older_schema(any_db: FreshDatabase, revision: str) -> None:
    """The check above can fail: at an older revision it reports the tables, columns and constraints the later ones add."""
    to_revision(any_db, revision)
    later = REVISIONS[REVISIONS.index(revision) + 1 :]
    assert _changes(any_db.url) == set().union(*(_ADDED_BY[r] for r in later))


def test_revisions_are_linear_and_downgrade_to_base(any_db: FreshDatabase) -> None:
    assert schema.known_revisions() == list(REVISIONS) and schema.head_revision() == HEAD
    make_engine(any_db.url).dispose()
    engine = schema.migration_engine(any_db.url)
    with engine.connect() as conn, conn.begin():
        command.downgrade(schema.alembic_config(conn), "base")
    engine.dispose()
    assert any_db.tables() == {"alembic_version"} and version(any_db) == []
    # An empty alembic_version is an empty database: migrated again.
    make_engine(any_db.url).dispose()
    assert version(any_db) == [HEAD] and schema_diff(any_db.url) == []


# --- databases of earlier releases ----------------------------------------------------------------------
@pytest.mark.parametrize("how", ["release_ddl", "migrations"])
@pytest.mark.parametrize("revision", ["0001_initial", "0002_markets"])
def test_release_database_is_refused_untouched_then_upgraded_keeping_every_row(
    any_db: FreshDatabase, revision: str, how: str, tmp_path: Path
) -> None:
    make_release_database(any_db, revision, how)
    rows_before = old_columns(any_db)
    before = fingerprint(any_db)

    for create in (True, False):
        with pytest.raises(StoreError) as info:
            make_engine(any_db.url, create=create)
        message = str(info.value)
        assert message == (
            f"database schema is at {revision} (unversioned), made by an older indexer version; this indexer needs {HEAD}: "
            f"run `indexer db upgrade --database-url {any_db.url}` (nothing was changed)"
        )
    assert fingerprint(any_db) == before, "a refused database is not modified (tables, columns, rows, file bytes)"
    assert "alembic_version" not in any_db.tables()

    proc = indexer("db", "upgrade", "--database-url", any_db.url, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == f"{any_db.url}: upgraded {revision} (unversioned) -> {HEAD}\n"
    assert version(any_db) == [HEAD]
    assert schema_diff(any_db.url) == []
    # Every row is kept, with the new columns' values for old rows.
    assert old_columns(any_db) == rows_before
    assert any_db.rows("SELECT shard, shards FROM snapshot_runs") == [(0, 1)]
    assert any_db.rows("SELECT DISTINCT market FROM position_snapshots") == [("",)]
    assert any_db.rows("SELECT DISTINCT market FROM price_snapshots") == [("",)]
    assert any_db.rows("SELECT DISTINCT market FROM known_accounts") == [("",)]
    assert any_db.rows("SELECT market_state, head_block, rpc_errors FROM snapshot_runs") == [(None, None, None)]
    assert any_db.rows("SELECT DISTINCT state FROM position_snapshots") == [(None,)]

    engine = make_engine(any_db.url)
    try:
        _old_rows_read_and_new_writes_work(engine)
    finally:
        engine.dispose()


def _old_rows_read_and_new_writes_work(engine: Engine) -> None:
    # The old rows read back exactly, through the store's queries.
    rows = {r.address: r for r in at_risk(engine, MAX + 1)}
    assert set(rows) == {"0xNEG", "0xNODEBT"}
    assert (rows["0xNODEBT"].health_factor, rows["0xNODEBT"].to_json()["health_factor"]) == (MAX, "inf")
    assert (rows["0xNEG"].nlv_usd, rows["0xNEG"].debt_usd, rows["0xNEG"].market) == (NEG_NLV, 2**255, "")
    assert rows["0xNEG"].legs[0]["symbol"] == "WETH"
    assert known_accounts(engine, "aave-main") == [AccountKey("0xNEG"), AccountKey("0xNODEBT")]
    (old_run,) = list_runs(engine)
    assert (old_run.shard, old_run.shards, old_run.block_hash) == (0, 1, OLD_BLOCK.hash)
    # The old block again (shard 0) is the stored run; another shard of it is a new run (0003's unique key).
    old_snap = snapshot(OLD_BLOCK, (position("0xNEG", WAD - 1, OLD_BLOCK),))
    assert write_snapshot(engine, old_snap) == (old_run.id, False)
    _, created = write_snapshot(engine, replace(old_snap, shard=1, shards=2, new_accounts=(), advances_checkpoint=False))
    assert created
    # A new block with one account in two markets (0002's unique keys) is written and read back.
    new = block(200)
    m1 = "0x" + "11" * 32
    snap = replace(
        snapshot(new, (position("0xNEG", WAD - 1, new), replace(position("0xNEG", 3 * WAD, new), market=m1)), new_accounts=("0xNEW",)),
        prices=(PriceReading("0xWETH", "WETH", 1, 8, "", None, None), PriceReading("0xWETH", "WETH", 2, 8, "", None, None, market=m1)),
    )
    new_id, created = write_snapshot(engine, snap)
    assert created and new_id > old_run.id  # type: ignore[operator]
    _, history = account_positions(engine, "0xNEG")
    assert sorted((r.market, r.block_number, r.health_factor) for r in history) == [("", 100, 0), ("", 100, WAD - 1), ("", 200, WAD - 1), (m1, 200, 3 * WAD)]
    assert AccountKey("0xNEW") in known_accounts(engine, "aave-main")
    # The risk state of 0004 is written beside the old rows' NULLs, big integers digit for digit.
    state_snap = replace(
        snapshot(block(300), (replace(position("0xNEG", WAD - 1, block(300)), state={"scaled": 2**250 + 1, "k": [1, "0x01"]}),)),
        market_state={"": {"price": 3 * 10**60}},
        head_block=305,
        rpc_errors={"timeout": 2},
    )
    state_id, created = write_snapshot(engine, state_snap)
    assert created
    with engine.connect() as conn:
        runs = conn.execute(text("SELECT id, market_state, head_block, rpc_errors FROM snapshot_runs ORDER BY id")).all()
        states = conn.execute(text("SELECT run_id, state FROM position_snapshots ORDER BY id")).all()
    assert [(r[1], r[2], r[3]) for r in runs if r[0] != state_id] == [(None, None, None)] + [(None, None, "{}")] * 2
    assert [(json.loads(r[1]), r[2], json.loads(r[3])) for r in runs if r[0] == state_id] == [({"": {"price": 3 * 10**60}}, 305, {"timeout": 2})]
    assert [json.loads(st) for run_id, st in states if run_id == state_id] == [{"scaled": 2**250 + 1, "k": [1, "0x01"]}]
    assert {st for run_id, st in states if run_id != state_id} == {None}


@pytest.mark.parametrize("revision", ["0002_markets", "0003_scale_out"])
def test_versioned_database_behind_head_is_refused_then_upgraded(any_db: FreshDatabase, revision: str, tmp_path: Path) -> None:
    to_revision(any_db, revision)
    seed_old_rows(any_db, markets=True)
    rows_before = old_columns(any_db)
    before = fingerprint(any_db)
    with pytest.raises(StoreError) as info:
        make_engine(any_db.url)
    assert str(info.value).startswith(f"database schema is at {revision}, made by an older indexer version; this indexer needs {HEAD}: ")
    assert f"`indexer db upgrade --database-url {any_db.url}`" in str(info.value)
    assert fingerprint(any_db) == before and version(any_db) == [revision]
    proc = indexer("db", "upgrade", "--database-url", any_db.url, cwd=tmp_path)
    assert proc.returncode == 0 and proc.stdout == f"{any_db.url}: upgraded {revision} -> {HEAD}\n", proc.stderr
    assert old_columns(any_db) == rows_before and schema_diff(any_db.url) == []
    assert any_db.rows("SELECT market_state, head_block, rpc_errors FROM snapshot_runs") == [(None, None, None)]
    assert any_db.rows("SELECT DISTINCT state FROM position_snapshots") == [(None,)]
    after = fingerprint(any_db)
    again = indexer("db", "upgrade", "--database-url", any_db.url, cwd=tmp_path)
    assert again.returncode == 0 and again.stdout == f"{any_db.url}: already at {HEAD} (head), nothing to do\n", again.stderr
    assert fingerprint(any_db) == after
    engine = make_engine(any_db.url)
    assert [r.address for r in at_risk(engine, WAD)] == ["0xNEG"]
    engine.dispose()


def test_database_of_a_newer_indexer_is_refused_by_both(any_db: FreshDatabase, tmp_path: Path) -> None:
    make_engine(any_db.url).dispose()
    any_db.execute("UPDATE alembic_version SET version_num = '0099_future'")
    before = fingerprint(any_db)
    with pytest.raises(StoreError, match="database schema is at 0099_future, which this indexer does not know") as info:
        make_engine(any_db.url)
    assert f"it needs {HEAD}" in str(info.value)
    proc = indexer("db", "upgrade", "--database-url", any_db.url, cwd=tmp_path)
    assert proc.returncode == 1 and "0099_future" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert fingerprint(any_db) == before


def test_unversioned_database_with_the_head_tables_gets_its_version_recorded(any_db: FreshDatabase, tmp_path: Path) -> None:
    """A database made by a development build between releases (create_all of today's models, no version)."""
    to_revision(any_db, HEAD)
    any_db.execute("DROP TABLE alembic_version")
    with pytest.raises(StoreError, match=f"database schema is at {HEAD} but records no version"):
        make_engine(any_db.url)
    proc = indexer("db", "upgrade", "--database-url", any_db.url, cwd=tmp_path)
    assert proc.returncode == 0 and proc.stdout == f"{any_db.url}: upgraded {HEAD} (unversioned) -> {HEAD}\n", proc.stderr
    make_engine(any_db.url).dispose()


def test_a_failed_upgrade_changes_nothing(any_db: FreshDatabase, tmp_path: Path) -> None:
    """Stamp and upgrade share one transaction: a database that cannot be migrated is left as it was."""
    any_db.execute("CREATE TABLE position_snapshots (id INTEGER PRIMARY KEY, run_id INTEGER, account TEXT)")  # half a schema
    before = fingerprint(any_db)
    proc = indexer("db", "upgrade", "--database-url", any_db.url, cwd=tmp_path)
    assert proc.returncode == 1 and proc.stderr.startswith("error: upgrading ") and "rolled back" in proc.stderr, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert fingerprint(any_db) == before


def test_two_upgrades_at_once_both_succeed(any_db: FreshDatabase, tmp_path: Path) -> None:
    """Migrations are serialized (SQLite: BEGIN IMMEDIATE; PostgreSQL: an advisory lock): the second waits, then
    finds the head."""
    exe = Path(sys.executable).with_name("indexer")
    env = {k: v for k, v in os.environ.items() if not k.startswith("INDEXER_")}
    procs = [
        subprocess.Popen([str(exe), "db", "upgrade", "--database-url", any_db.url], cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    assert sum("upgraded (empty) -> " in out for out, _ in outs) >= 1
    assert version(any_db) == [HEAD] and schema_diff(any_db.url) == []


# --- the command's errors and the URL it uses ---------------------------------------------------------------
@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (f"postgresql+psycopg://postgres:{SECRET}@127.0.0.1:{free_port()}/test", "database_url: cannot connect to postgresql+psycopg://postgres:***@127.0.0.1:"),
        (f"postgresql+nosuchdriver://postgres:{SECRET}@127.0.0.1/test", "database_url: postgresql+nosuchdriver://postgres:***@127.0.0.1/test is not usable"),
        ("not a url", "database_url: not a database URL"),
        ("sqlite:////nonexistent-dir/sub/x.db", "database_url: cannot connect to sqlite:////nonexistent-dir/sub/x.db"),
    ],
    ids=["unreachable", "unknown-driver", "unparseable", "bad-sqlite-path"],
)
def test_db_upgrade_with_a_bad_url_exits_2_with_one_line(url: str, expected: str, tmp_path: Path) -> None:
    proc = indexer("db", "upgrade", "--database-url", url, cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {expected}"), proc.stderr
    assert SECRET not in proc.stderr + proc.stdout and "Traceback" not in proc.stderr


def test_refusal_never_shows_the_password(tmp_path: Path) -> None:
    with fresh_database("postgresql", tmp_path) as db:
        to_revision(db, "0001_initial")
        url = make_url(db.url)
        with_password = url.set(password=SECRET).render_as_string(hide_password=False)  # trust auth: the server ignores it
        with pytest.raises(StoreError) as info:
            make_engine(with_password)
        assert SECRET not in str(info.value)
        assert f"`indexer db upgrade --database-url postgresql+psycopg://{url.username}:***@{url.host}:{url.port}/{url.database}`" in str(info.value)


def test_database_url_precedence_flag_env_file_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text('database_url = "sqlite:///file.db"\n')
    for key in [k for k in os.environ if k.startswith("INDEXER_")]:
        monkeypatch.delenv(key)
    # load_settings, which every command calls: flag > INDEXER_DATABASE_URL > the file's database_url > default.
    assert load_settings().database_url == "sqlite:///indexer.db"
    assert load_settings(cfg).database_url == "sqlite:///file.db"
    monkeypatch.setenv("INDEXER_DATABASE_URL", "sqlite:///env.db")
    assert load_settings(cfg).database_url == "sqlite:///env.db"
    assert load_settings(None).database_url == "sqlite:///env.db"
    assert load_settings(cfg, database_url="sqlite:///flag.db").database_url == "sqlite:///flag.db"
    # The same through the installed command, which prints the URL it migrated.
    env = {"INDEXER_DATABASE_URL": "sqlite:///env.db"}
    cases = [
        ((), None, "sqlite:///indexer.db"),
        (("--config", str(cfg)), None, "sqlite:///file.db"),
        (("--config", str(cfg)), env, "sqlite:///env.db"),
        (("--config", str(cfg), "--database-url", "sqlite:///flag.db"), env, "sqlite:///flag.db"),
    ]
    for args, case_env, expected in cases:
        proc = indexer("db", "upgrade", *args, cwd=tmp_path, env=case_env)
        assert proc.returncode == 0 and proc.stdout.startswith(f"{expected}: upgraded (empty) -> {HEAD}"), (args, proc.stdout, proc.stderr)
        assert (tmp_path / expected.removeprefix("sqlite:///")).exists()
    # A query command follows the environment too: at-risk reads env.db (migrated above), not the file's database.
    (tmp_path / "file.db").unlink()
    proc = indexer("at-risk", "--json", "--config", str(cfg), cwd=tmp_path, env=env)
    assert proc.returncode == 0 and json.loads(proc.stdout) == [], proc.stderr
    assert not (tmp_path / "file.db").exists()
