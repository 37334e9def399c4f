"""The store: exact big integers, idempotent snapshot writes, checkpoints and the read queries.

One suite for both backends: every test that takes ``db`` (or ``engine``) runs on a real SQLite file under
tmp_path and on a fresh database of the PostgreSQL server at 127.0.0.1:5432 (skipped, with the reason, when
none answers). Stored values are checked through the driver itself, independently of the store code.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import Column, Integer, MetaData, Table, insert, select
from sqlalchemy import Engine

from indexer.domain import AccountKey, BlockRef, Position, PositionLeg, PriceReading, Snapshot
from indexer.errors import StoreError
from indexer.store.codec import BigInt
from indexer.store.db import account_positions, at_risk, get_checkpoint, known_accounts, list_runs, make_engine, write_snapshot
from tests.conftest import FreshDatabase

WAD = 10**18
MAX = 2**256 - 1
TABLES = ("snapshot_runs", "position_snapshots", "price_snapshots", "checkpoints", "known_accounts")


# --- builders ------------------------------------------------------------------------------------
def block(number: int, *, chain_id: int = 1) -> BlockRef:
    return BlockRef(chain_id=chain_id, number=number, hash=f"0x{number:064x}", timestamp=1_700_000_000 + 12 * number)


def position(account: str, hf: int, blk: BlockRef, *, protocol: str = "aave-main", nlv: int | None = None, coll: int = 10**21, debt: int = 5 * 10**20) -> Position:
    return Position(
        protocol=protocol,
        kind="aave_v3",
        account=account,
        block=blk,
        collateral_usd=coll,
        debt_usd=debt,
        nlv_usd=coll - debt if nlv is None else nlv,
        health_factor=hf,
        liquidatable=hf < WAD,
        liquidation_threshold_bps=8000,
        price_drop_to_liquidation=None if hf == MAX else 0.25,
        legs=(
            PositionLeg("0xWETH", "WETH", "collateral", 5 * 10**17, 18, coll, 8000),
            PositionLeg("0xUSDC", "USDC", "debt", 500 * 10**6, 6, debt, 0),
        ),
        details={"emode": "0"},
    )


def snapshot(
    blk: BlockRef,
    positions: tuple[Position, ...],
    *,
    protocol: str = "aave-main",
    chain: str = "ethereum",
    checkpoint: int | None = None,
    new_accounts: tuple[str, ...] = (),
) -> Snapshot:
    return Snapshot(
        chain=chain,
        protocol=protocol,
        kind="aave_v3",
        block=blk,
        positions=positions,
        prices=(
            PriceReading("0xWETH", "WETH", 2000 * 10**8, 8, "0xFEED1", 2000 * 10**8, blk.timestamp - 60),
            PriceReading("0xUSDC", "USDC", 10**8, 8, "", None, None),
        ),
        new_accounts=tuple(AccountKey(a) for a in new_accounts),
        checkpoint_block=blk.number if checkpoint is None else checkpoint,
        accounts_read=len(positions) + 1,
        rpc_requests=7,
        duration_seconds=0.5,
    )


@pytest.fixture()
def db(any_db: FreshDatabase) -> FreshDatabase:
    """A fresh empty database (SQLite file, PostgreSQL database): see conftest.fresh_database."""
    return any_db


@pytest.fixture()
def engine(db: FreshDatabase) -> Iterator[Engine]:
    eng = make_engine(db.url)
    yield eng
    eng.dispose()


def counts(db: FreshDatabase) -> dict[str, int]:
    """Row counts read through the driver (sqlite3, psycopg), independently of the store code."""
    return db.counts(TABLES)


def stored_type(db: FreshDatabase, table: str, column: str) -> tuple[object, ...]:
    """How the database itself stores ``column``: SQLite's value type, PostgreSQL's declared type."""
    if db.backend == "sqlite":
        return (db.scalar(f"SELECT typeof({column}) FROM {table}"),)
    return db.rows(f"SELECT data_type, numeric_precision, numeric_scale FROM information_schema.columns WHERE table_name = '{table}' AND column_name = '{column}'")[0]


# Exact storage of big integers: decimal text on SQLite, NUMERIC(78,0) on PostgreSQL.
EXACT_STORAGE = {"sqlite": ("text",), "postgresql": ("numeric", 78, 0)}


# --- BigInt ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("value", [MAX, 0, -(2**255), 2**255 - 1, -1, 10**77, -(10**77) + 7, WAD - 1])
def test_bigint_round_trips_exactly(db: FreshDatabase, value: int) -> None:
    eng = make_engine(db.url)
    meta = MetaData()
    table = Table("t", meta, Column("id", Integer, primary_key=True), Column("v", BigInt()))
    meta.create_all(eng)
    with eng.begin() as conn:
        conn.execute(insert(table).values(id=1, v=value))
    with eng.connect() as conn:
        got = conn.execute(select(table.c.v)).scalar_one()
    assert type(got) is int and got == value
    # Stored exactly (decimal text on SQLite, NUMERIC(78,0) on PostgreSQL), never through a float.
    assert db.scalar("SELECT CAST(v AS TEXT) FROM t") == str(value)
    assert stored_type(db, "t", "v") == EXACT_STORAGE[db.backend]
    eng.dispose()


def test_bigint_null_round_trips(db: FreshDatabase) -> None:
    eng = make_engine(db.url)
    meta = MetaData()
    table = Table("t", meta, Column("id", Integer, primary_key=True), Column("v", BigInt(), nullable=True))
    meta.create_all(eng)
    with eng.begin() as conn:
        conn.execute(insert(table).values(id=1, v=None))
    with eng.connect() as conn:
        assert conn.execute(select(table.c.v)).scalar_one() is None
    eng.dispose()


@pytest.mark.parametrize("bad", [1.5, True, "12", Decimal(12)])
def test_bigint_rejects_non_int(db: FreshDatabase, bad: object) -> None:
    eng = make_engine(db.url)
    meta = MetaData()
    table = Table("t", meta, Column("id", Integer, primary_key=True), Column("v", BigInt()))
    meta.create_all(eng)
    with pytest.raises(Exception), eng.begin() as conn:  # noqa: B017 - SQLAlchemy wraps the TypeError
        conn.execute(insert(table).values(id=1, v=bad))
    with eng.connect() as conn:
        assert conn.execute(select(table.c.v)).all() == []
    eng.dispose()


def test_position_big_integers_round_trip_through_the_store(engine: Engine, db: FreshDatabase) -> None:
    blk = block(100)
    no_debt = position("0xNODEBT", MAX, blk, coll=MAX - 5, debt=0)
    underwater = position("0xNEG", 0, blk, coll=3, debt=2**255, nlv=-(2**255) + 3)
    huge_neg = position("0xHUGE", WAD - 1, blk, nlv=-(2**255))
    write_snapshot(engine, snapshot(blk, (no_debt, underwater, huge_neg)))
    for pos in (no_debt, underwater, huge_neg):
        current, history = account_positions(engine, pos.account)
        assert len(current) == 1 and len(history) == 1
        row = current[0]
        assert (row.health_factor, row.collateral_usd, row.debt_usd, row.nlv_usd) == (
            pos.health_factor,
            pos.collateral_usd,
            pos.debt_usd,
            pos.nlv_usd,
        )
    assert db.scalar("SELECT CAST(nlv_usd AS TEXT) FROM position_snapshots WHERE account='0xHUGE'") == str(-(2**255))
    assert db.scalar("SELECT CAST(health_factor AS TEXT) FROM position_snapshots WHERE account='0xNODEBT'") == str(MAX)
    assert db.scalar("SELECT CAST(nlv_usd AS TEXT) FROM position_snapshots WHERE account='0xNEG'") == str(-(2**255) + 3)
    for column in ("health_factor", "collateral_usd", "debt_usd", "nlv_usd"):
        assert stored_type(db, "position_snapshots", column)[0] == EXACT_STORAGE[db.backend][0]
    # The JSON of the no-debt row reports "inf", not a float of 2**256-1.
    assert account_positions(engine, "0xNODEBT")[0][0].to_json()["health_factor"] == "inf"
    # at_risk returns the same exact integers: every row below a threshold above 2**256-1, riskiest first.
    rows = at_risk(engine, MAX + 1)
    assert [r.address for r in rows] == ["0xNEG", "0xHUGE", "0xNODEBT"]
    by_address = {r.address: r for r in rows}
    for pos in (no_debt, underwater, huge_neg):
        row = by_address[pos.account]
        assert (row.health_factor, row.collateral_usd, row.debt_usd, row.nlv_usd) == (pos.health_factor, pos.collateral_usd, pos.debt_usd, pos.nlv_usd)
    no_debt_json = by_address["0xNODEBT"].to_json()
    assert (no_debt_json["health_factor"], no_debt_json["health_factor_float"]) == ("inf", None)
    assert by_address["0xHUGE"].to_json()["nlv_usd"] == -(2**255) / 10**18


# --- write_snapshot -------------------------------------------------------------------------------------
def test_write_snapshot_creates_rows(engine: Engine, db: FreshDatabase) -> None:
    blk = block(100)
    snap = snapshot(blk, (position("0xA", 12 * 10**17, blk), position("0xB", 9 * 10**17, blk)), new_accounts=("0xA", "0xB", "0xA"))
    run_id, created = write_snapshot(engine, snap)
    assert created and isinstance(run_id, int)
    assert counts(db) == {"snapshot_runs": 1, "position_snapshots": 2, "price_snapshots": 2, "checkpoints": 1, "known_accounts": 2}
    (run,) = list_runs(engine)
    assert (run.id, run.block_number, run.block_hash, run.positions, run.liquidatable, run.chain_id) == (run_id, 100, blk.hash, 2, 1, 1)
    assert [k.account for k in known_accounts(engine, "aave-main")] == ["0xA", "0xB"]
    cp = get_checkpoint(engine, "ethereum", "aave-main")
    assert cp is not None and (cp.block_number, cp.block_hash) == (100, blk.hash)
    prices = db.rows("SELECT asset, CAST(price AS TEXT), CAST(feed_answer AS TEXT), feed_updated_at FROM price_snapshots ORDER BY asset")
    assert prices == [("0xUSDC", str(10**8), None, None), ("0xWETH", str(2000 * 10**8), str(2000 * 10**8), blk.timestamp - 60)]


def test_second_write_of_the_same_block_is_a_no_op(engine: Engine, db: FreshDatabase) -> None:
    blk = block(100)
    snap = snapshot(blk, (position("0xA", 12 * 10**17, blk),), new_accounts=("0xA",))
    run_id, created = write_snapshot(engine, snap)
    assert created
    before = counts(db)
    # Same (chain_id, protocol, block hash), even with different content: nothing is written.
    again = replace(snap, positions=(position("0xA", 12 * 10**17, blk), position("0xC", 2 * WAD, blk)), new_accounts=("0xC",), checkpoint_block=150)
    assert write_snapshot(engine, again) == (run_id, False)
    assert write_snapshot(engine, snap) == (run_id, False)
    assert counts(db) == before
    assert [k.account for k in known_accounts(engine, "aave-main")] == ["0xA"]
    assert get_checkpoint(engine, "ethereum", "aave-main").block_number == 100  # type: ignore[union-attr]


def test_same_block_hash_for_another_protocol_or_chain_is_a_new_run(engine: Engine, db: FreshDatabase) -> None:
    blk = block(100)
    write_snapshot(engine, snapshot(blk, (position("0xA", WAD, blk),)))
    _, created_other_protocol = write_snapshot(engine, snapshot(blk, (position("0xA", WAD, blk, protocol="aave-2"),), protocol="aave-2"))
    other_chain = block(100, chain_id=10)
    _, created_other_chain = write_snapshot(engine, snapshot(other_chain, (position("0xA", WAD, other_chain),), chain="optimism"))
    assert created_other_protocol and created_other_chain
    assert counts(db)["snapshot_runs"] == 3


def test_checkpoint_never_moves_backwards(engine: Engine) -> None:
    write_snapshot(engine, snapshot(block(200), ()))
    assert get_checkpoint(engine, "ethereum", "aave-main").block_number == 200  # type: ignore[union-attr]
    # An older block (e.g. a re-run pinned lower) is stored, but the checkpoint stays.
    _, created = write_snapshot(engine, snapshot(block(150), ()))
    assert created
    cp = get_checkpoint(engine, "ethereum", "aave-main")
    assert cp is not None and (cp.block_number, cp.block_hash) == (200, block(200).hash)
    # A newer one advances it; a checkpoint below the block has no hash.
    write_snapshot(engine, snapshot(block(300), (), checkpoint=250))
    cp = get_checkpoint(engine, "ethereum", "aave-main")
    assert cp is not None and (cp.block_number, cp.block_hash) == (250, "")


def test_known_accounts_keep_their_first_seen_block(engine: Engine, db: FreshDatabase) -> None:
    write_snapshot(engine, snapshot(block(100), (), new_accounts=("0xA",)))
    write_snapshot(engine, snapshot(block(200), (), new_accounts=("0xA", "0xB")))
    assert [k.account for k in known_accounts(engine, "aave-main")] == ["0xA", "0xB"]
    rows = dict(db.rows("SELECT account, first_seen_block FROM known_accounts"))
    assert rows == {"0xA": 100, "0xB": 200}


# --- at_risk -----------------------------------------------------------------------------------------
def test_at_risk_filters_on_the_exact_integer(engine: Engine) -> None:
    blk = block(100)
    just_below = position("0xBELOW", WAD - 1, blk)
    exactly_one = position("0xONE", WAD, blk)
    assert (WAD - 1) / WAD == WAD / WAD  # the floats cannot tell them apart
    write_snapshot(engine, snapshot(blk, (exactly_one, just_below)))
    rows = at_risk(engine, WAD)
    assert [r.address for r in rows] == ["0xBELOW"]
    assert rows[0].health_factor == WAD - 1
    assert [r.address for r in at_risk(engine, WAD + 1)] == ["0xBELOW", "0xONE"]
    assert at_risk(engine, WAD - 1) == []


def test_at_risk_orders_riskiest_first_and_limits(engine: Engine) -> None:
    blk = block(100)
    hfs = {"0xC": 105 * 10**16, "0xA": 3 * 10**17, "0xD": MAX, "0xB": 99 * 10**16, "0xE": 2 * WAD, "0xF": 0}
    write_snapshot(engine, snapshot(blk, tuple(position(a, hf, blk) for a, hf in hfs.items())))
    rows = at_risk(engine, 11 * 10**17)
    assert [r.address for r in rows] == ["0xF", "0xA", "0xB", "0xC"]
    assert [r.health_factor for r in rows] == sorted(r.health_factor for r in rows)
    assert [r.address for r in at_risk(engine, 11 * 10**17, limit=2)] == ["0xF", "0xA"]
    assert [r.address for r in at_risk(engine, MAX)] == ["0xF", "0xA", "0xB", "0xC", "0xE"]


def test_at_risk_threshold_above_uint256_max_includes_no_debt_positions(engine: Engine) -> None:
    """Edge case: at_risk promises an exact integer filter (HF < below_wad). With below_wad > 2**256-1 the
    no-debt position (HF 2**256-1) satisfies it, but the float pre-filter (+inf <= finite margin) drops it.
    Reachable from the CLI with e.g. `--below 1e60`."""
    blk = block(100)
    write_snapshot(engine, snapshot(blk, (position("0xDEBT", 2 * WAD, blk), position("0xNODEBT", MAX, blk))))
    assert [r.address for r in at_risk(engine, MAX + 1)] == ["0xDEBT", "0xNODEBT"]


def test_at_risk_on_an_empty_database(engine: Engine) -> None:
    assert at_risk(engine, 2 * WAD) == []


def test_at_risk_uses_only_the_latest_run(engine: Engine) -> None:
    b1, b2 = block(100), block(200)
    write_snapshot(engine, snapshot(b1, (position("0xA", 5 * 10**17, b1), position("0xB", 6 * 10**17, b1))))
    write_snapshot(engine, snapshot(b2, (position("0xA", 2 * WAD, b2), position("0xC", 7 * 10**17, b2))))
    rows = at_risk(engine, WAD)
    assert [(r.address, r.block_number) for r in rows] == [("0xC", 200)]


def test_at_risk_latest_run_per_protocol(engine: Engine) -> None:
    b1, b2, b3 = block(100), block(200), block(300)
    write_snapshot(engine, snapshot(b1, (position("0xA", 5 * 10**17, b1),)))
    write_snapshot(engine, snapshot(b2, (position("0xB", 6 * 10**17, b2, protocol="other"),), protocol="other"))
    write_snapshot(engine, snapshot(b3, (position("0xC", 7 * 10**17, b3),)))
    assert [(r.address, r.protocol) for r in at_risk(engine, WAD)] == [("0xB", "other"), ("0xC", "aave-main")]
    assert [r.address for r in at_risk(engine, WAD, protocol="aave-main")] == ["0xC"]
    assert [r.address for r in at_risk(engine, WAD, protocol="other")] == ["0xB"]


def test_latest_run_is_the_highest_block_not_the_last_inserted(engine: Engine) -> None:
    # Documented selection: the canonical run of the highest block (then the highest id) of each protocol; an
    # older block stored later (`--block`, or recomputed after a reorg) is history, not current.
    b1, b2 = block(300), block(200)
    write_snapshot(engine, snapshot(b1, (position("0xA", 5 * 10**17, b1),)))
    write_snapshot(engine, snapshot(b2, (position("0xB", 5 * 10**17, b2),)))
    assert [r.address for r in at_risk(engine, WAD)] == ["0xA"]


# --- account_positions ---------------------------------------------------------------------------------
def test_account_positions_current_and_history(engine: Engine) -> None:
    b1, b2, b3 = block(100), block(200), block(300)
    write_snapshot(engine, snapshot(b1, (position("0xA", 15 * 10**17, b1), position("0xB", WAD, b1))))
    write_snapshot(engine, snapshot(b2, (position("0xA", 12 * 10**17, b2),)))
    write_snapshot(engine, snapshot(b3, (position("0xA", 9 * 10**17, b3),)))
    current, history = account_positions(engine, "0xA")
    assert [(r.block_number, r.health_factor) for r in history] == [(100, 15 * 10**17), (200, 12 * 10**17), (300, 9 * 10**17)]
    assert [(r.block_number, r.health_factor, r.liquidatable) for r in current] == [(300, 9 * 10**17, True)]
    assert current[0].legs[0] == {
        "asset": "0xWETH",
        "symbol": "WETH",
        "side": "collateral",
        "amount": str(5 * 10**17),
        "decimals": 18,
        "value_usd": str(10**21),
        "liquidation_threshold_bps": 8000,
    }
    assert current[0].chain == "ethereum" and current[0].block_timestamp == b3.timestamp
    # 0xB is not in the latest run: history only.
    current_b, history_b = account_positions(engine, "0xB")
    assert current_b == [] and [r.block_number for r in history_b] == [100]
    assert account_positions(engine, "0xNOBODY") == ([], [])


# --- errors --------------------------------------------------------------------------------------------
def test_make_engine_without_create_on_a_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope" / "missing.db"
    with pytest.raises(StoreError) as info:
        make_engine(f"sqlite:///{missing}", create=False)
    assert str(missing) in str(info.value)
    assert not missing.exists()


def test_make_engine_without_create_on_an_existing_file(engine: Engine, db: FreshDatabase) -> None:
    write_snapshot(engine, snapshot(block(100), (position("0xA", WAD - 1, block(100)),)))
    reopened = make_engine(db.url, create=False)
    assert [r.address for r in at_risk(reopened, WAD)] == ["0xA"]
    reopened.dispose()


@pytest.mark.parametrize("bad_hf", [1.5 * WAD, "999999999999999999", None], ids=["float", "str", "none"])
def test_failing_write_raises_store_error_and_rolls_back(engine: Engine, db: FreshDatabase, bad_hf: object) -> None:
    write_snapshot(engine, snapshot(block(100), (position("0xA", WAD, block(100)),), new_accounts=("0xA",)))
    before = counts(db)
    b2 = block(200)
    bad = replace(position("0xB", WAD, b2), health_factor=bad_hf)
    snap = snapshot(b2, (position("0xC", WAD, b2), bad), new_accounts=("0xB", "0xC"))
    raised: Exception | None = None
    try:
        write_snapshot(engine, snap)
    except Exception as exc:  # checked below, after the rollback check
        raised = exc
    assert raised is not None, "writing a non-integer health factor must fail"
    # Nothing of the failed run is left: no run row, positions, prices, accounts, and the checkpoint stays.
    assert counts(db) == before
    assert get_checkpoint(engine, "ethereum", "aave-main").block_number == 100  # type: ignore[union-attr]
    assert [r.block_number for r in list_runs(engine)] == [100]
    assert isinstance(raised, StoreError), f"store boundary leaked {type(raised).__name__}: {raised}"


# --- instances with several markets (Morpho Blue) -----------------------------------------------------
def test_one_account_in_two_markets_is_two_positions_and_two_known_keys(engine: Engine, db: FreshDatabase) -> None:
    blk = block(100)
    m1, m2 = "0x" + "11" * 32, "0x" + "22" * 32
    a = replace(position("0xA", WAD - 1, blk, protocol="morpho"), market=m1)
    b = replace(position("0xA", 3 * WAD, blk, protocol="morpho"), market=m2)
    snap = replace(
        snapshot(blk, (a, b), protocol="morpho"),
        new_accounts=(AccountKey("0xA", m1), AccountKey("0xA", m2)),
        prices=(
            PriceReading("0xWETH", "WETH/USDC", 3 * 10**38, 36, "0xOR1", None, None, market=m1),
            PriceReading("0xWETH", "WETH/USDC", 31 * 10**37, 36, "0xOR2", None, None, market=m2),
        ),
    )
    write_snapshot(engine, snap)
    assert counts(db)["position_snapshots"] == 2 and counts(db)["price_snapshots"] == 2
    assert known_accounts(engine, "morpho") == [AccountKey("0xA", m1), AccountKey("0xA", m2)]
    current, _ = account_positions(engine, "0xA")
    assert sorted((r.market, r.liquidatable) for r in current) == [(m1, True), (m2, False)]
    (risky,) = at_risk(engine, WAD)
    assert risky.to_json()["market"] == m1 and risky.to_json()["protocol"] == "morpho"


def test_database_from_an_older_schema_is_refused_untouched(db: FreshDatabase) -> None:
    db.execute("CREATE TABLE position_snapshots (id INTEGER PRIMARY KEY, run_id INTEGER, account TEXT)", "INSERT INTO position_snapshots VALUES (1, 1, '0xA')")
    for create in (True, False):
        with pytest.raises(StoreError, match="older indexer version") as info:
            make_engine(db.url, create=create)
        assert f"run `indexer db upgrade --database-url {db.url}`" in str(info.value)
    assert db.rows("SELECT account FROM position_snapshots") == [("0xA",)]
    assert db.tables() == {"position_snapshots"}
    assert db.columns("position_snapshots") == ["id", "run_id", "account"]


def test_make_engine_without_create_on_an_empty_database(db: FreshDatabase) -> None:
    db.execute("CREATE TABLE unrelated (id INTEGER PRIMARY KEY)")  # an existing database (SQLite: the file exists)
    with pytest.raises(StoreError, match="has no indexer tables") as info:
        make_engine(db.url, create=False)
    assert "indexer db upgrade" in str(info.value)
    assert db.tables() == {"unrelated"}
    # With create (what `indexer snapshot` does) the same database is migrated to the head: tables next to the other one.
    make_engine(db.url).dispose()
    assert db.tables() >= {"unrelated", "alembic_version", *TABLES}
