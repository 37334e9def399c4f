"""Engine, snapshot writes (one transaction, idempotent per block) and the read queries."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, event, func
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlmodel import Session, SQLModel, col, create_engine, select

from indexer.constants import UINT256_MAX, USD_SCALE, WAD
from indexer.domain import AccountKey, Snapshot
from indexer.errors import StoreError
from indexer.store import schema
from indexer.store.models import Checkpoint, KnownAccount, PositionSnapshot, PriceSnapshot, SnapshotRun

log = logging.getLogger(__name__)


def make_engine(url: str, *, create: bool = True) -> Engine:
    """An engine for ``url``, whose schema must be at this indexer's migration head.

    An empty database is migrated to head when ``create`` (a missing SQLite file is refused without it);
    one made by an older or newer indexer is refused with the command to run, and left untouched.
    A URL that cannot be used or a server that does not answer is a ``ConfigError``.
    """
    if url.startswith("sqlite:///"):
        path = url.removeprefix("sqlite:///")
        if path and path != ":memory:" and not create and not Path(path).exists():
            raise StoreError(f"database file {path!r} does not exist: run `indexer snapshot` or `indexer demo` first")
    memory = _sqlite_in_memory(url)
    if not memory:  # checked before the store's engine exists: a refused database is never opened with its pragmas
        _check_schema(url, create=create)
    try:
        if url.startswith("sqlite:"):
            engine = create_engine(url, connect_args={"timeout": schema.SQLITE_BUSY_TIMEOUT_SECONDS})
            event.listen(engine, "connect", _sqlite_pragmas)
        else:
            engine = create_engine(url, pool_pre_ping=True)
    except SQLAlchemyError as exc:
        raise StoreError(f"cannot open database: {type(exc).__name__}: {str(exc).splitlines()[0]}") from None
    if memory:  # a private database per engine: it can only be checked and migrated through this engine
        _check_schema(url, create=create, engine=engine)
    return engine


def _sqlite_in_memory(url: str) -> bool:
    try:
        parsed = make_url(url)
    except ArgumentError:
        return False
    return parsed.get_backend_name() == "sqlite" and parsed.database in (None, "", ":memory:")


def _check_schema(url: str, *, create: bool, engine: Engine | None = None) -> None:
    """Refuse a database whose schema is not at the migrations' head, before anything is read or written;
    migrate an empty one to head when ``create`` (this replaces ``SQLModel.metadata.create_all``)."""
    state = schema.current_state(url, engine)
    if state.empty:
        if not create:
            shown = schema.redact(url)
            raise StoreError(f"database {shown} has no indexer tables: run `indexer db upgrade --database-url {shown}` or `indexer snapshot` first")
        schema.upgrade(url, engine=engine)
        return
    problem = schema.refusal(state, url)
    if problem is not None:
        raise problem


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def health_factor_float(hf: int) -> float:
    """The health factor as a float for ordering and display; +inf without debt."""
    return float("inf") if hf == UINT256_MAX else hf / WAD


def _legs_json(snapshot_legs: tuple[Any, ...]) -> str:
    return json.dumps(
        [
            {
                "asset": leg.asset,
                "symbol": leg.symbol,
                "side": leg.side,
                "amount": str(leg.amount),
                "decimals": leg.decimals,
                "value_usd": str(leg.value_usd),
                "liquidation_threshold_bps": leg.liquidation_threshold_bps,
            }
            for leg in snapshot_legs
        ]
    )


def _insert_ignore(engine: Engine, model: type[SQLModel]) -> Any:
    """``INSERT ... ON CONFLICT DO NOTHING`` for the engine's dialect (SQLite or PostgreSQL)."""
    table = model.__table__  # type: ignore[attr-defined]
    if engine.dialect.name == "postgresql":
        return postgresql_insert(table).on_conflict_do_nothing()
    return sqlite_insert(table).on_conflict_do_nothing()


# Columns written per position and price row, in COPY order.
_POSITION_COLUMNS = (
    "run_id", "protocol", "chain_id", "account", "market", "block_number", "health_factor", "health_factor_float", "liquidatable",
    "collateral_usd", "debt_usd", "nlv_usd", "liquidation_threshold_bps", "price_drop_to_liquidation", "legs", "details", "state", "price_quality",
)  # fmt: skip
_PRICE_COLUMNS = ("run_id", "asset", "market", "symbol", "price", "price_decimals", "source", "feed_answer", "feed_updated_at", "quality")


def _position_row(run_id: int, p: Any) -> dict[str, Any]:
    return {
        "run_id": run_id,
        "protocol": p.protocol,
        "chain_id": p.block.chain_id,
        "account": p.account,
        "market": p.market,
        "block_number": p.block.number,
        "health_factor": _checked_int(p.health_factor),
        "health_factor_float": health_factor_float(p.health_factor),
        "liquidatable": bool(p.liquidatable),
        "collateral_usd": _checked_int(p.collateral_usd),
        "debt_usd": _checked_int(p.debt_usd),
        "nlv_usd": _checked_int(p.nlv_usd),
        "liquidation_threshold_bps": p.liquidation_threshold_bps,
        "price_drop_to_liquidation": p.price_drop_to_liquidation,
        "legs": _legs_json(p.legs),
        "details": json.dumps(p.details, sort_keys=True),
        "state": state_json(p.state),
        "price_quality": p.price_quality,
    }


def state_json(state: Any) -> str | None:
    """Risk state (``Position.state``, ``Snapshot.market_state``) as compact JSON; None when empty (nothing kept).
    Integers are written digit for digit, so big ones stay exact."""
    if not state:
        return None
    return json.dumps(state, separators=(",", ":"), sort_keys=True)


def _price_row(run_id: int, pr: Any) -> dict[str, Any]:
    return {
        "run_id": run_id,
        "asset": pr.asset,
        "market": pr.market,
        "symbol": pr.symbol,
        "price": _checked_int(pr.price),
        "price_decimals": pr.price_decimals,
        "source": pr.source,
        "feed_answer": None if pr.feed_answer is None else _checked_int(pr.feed_answer),
        "feed_updated_at": pr.feed_updated_at,
        "quality": pr.quality,
    }


def _checked_int(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"a big-integer column needs an int, got {type(value).__name__}")
    if abs(value) >= 10**78:
        raise ValueError(f"integer of {len(str(abs(value)))} digits does not fit NUMERIC(78,0)")
    return value


def _bulk_insert(session: Session, model: type[SQLModel], rows: list[dict[str, Any]]) -> None:
    """Insert ``rows`` inside the session's transaction: ``COPY ... FROM STDIN`` on PostgreSQL (psycopg),
    one multi-row ``executemany`` on SQLite. Big integers go in as exact decimal text either way."""
    if not rows:
        return
    table = model.__table__  # type: ignore[attr-defined]
    conn = session.connection()
    if conn.dialect.name == "postgresql" and conn.dialect.driver == "psycopg":
        columns = _POSITION_COLUMNS if model is PositionSnapshot else _PRICE_COLUMNS
        raw = conn.connection.driver_connection
        with raw.cursor() as cur, cur.copy(f"COPY {table.name} ({', '.join(columns)}) FROM STDIN") as copy:  # type: ignore[union-attr]
            for row in rows:
                copy.write_row(tuple(str(v) if isinstance(v, int) and not isinstance(v, bool) else v for v in (row[c] for c in columns)))
        return
    conn.execute(table.insert(), rows)


def write_snapshot(engine: Engine, snap: Snapshot) -> tuple[int, bool]:
    """Store ``snap`` with its checkpoint and new accounts in one transaction.

    Returns ``(run_id, created)``; a snapshot of a block already stored for this protocol (same block
    hash) writes nothing and returns the existing run with ``created=False``.
    """
    try:
        with Session(engine) as session:
            existing = session.exec(
                select(SnapshotRun).where(
                    SnapshotRun.chain_id == snap.block.chain_id,
                    SnapshotRun.protocol == snap.protocol,
                    SnapshotRun.shard == snap.shard,
                    SnapshotRun.block_hash == snap.block.hash,
                )
            ).first()
            if existing is not None:
                assert existing.id is not None
                return existing.id, False
            run = SnapshotRun(
                chain=snap.chain,
                chain_id=snap.block.chain_id,
                protocol=snap.protocol,
                kind=snap.kind,
                shard=snap.shard,
                shards=snap.shards,
                block_number=snap.block.number,
                block_hash=snap.block.hash,
                block_timestamp=snap.block.timestamp,
                accounts_read=snap.accounts_read,
                positions=len(snap.positions),
                liquidatable=sum(1 for p in snap.positions if p.liquidatable),
                rpc_requests=snap.rpc_requests,
                duration_seconds=snap.duration_seconds,
                market_state=state_json(snap.market_state),
                head_block=snap.head_block,
                rpc_errors=json.dumps(dict(snap.rpc_errors), sort_keys=True),  # "{}": none failed (NULL: runs before 0004)
            )
            session.add(run)
            session.flush()
            assert run.id is not None
            _bulk_insert(session, PositionSnapshot, [_position_row(run.id, p) for p in snap.positions])
            _bulk_insert(session, PriceSnapshot, [_price_row(run.id, pr) for pr in snap.prices])
            if snap.new_accounts:
                # Accounts seen before keep their first_seen_block: insert-or-ignore, no read of the set.
                rows = [
                    {"protocol": snap.protocol, "account": k.account, "market": k.market, "first_seen_block": snap.checkpoint_block}
                    for k in sorted(set(snap.new_accounts))
                ]
                session.execute(_insert_ignore(engine, KnownAccount).values(rows))
            checkpoint = session.get(Checkpoint, (snap.chain, snap.protocol))
            if not snap.advances_checkpoint:
                pass  # an account shard other than 0 reads the accounts shard 0 discovered; the checkpoint is shard 0's
            elif checkpoint is None or snap.checkpoint_reset or snap.checkpoint_block >= checkpoint.block_number:
                session.merge(
                    Checkpoint(
                        chain=snap.chain,
                        protocol=snap.protocol,
                        block_number=snap.checkpoint_block,
                        block_hash=snap.block.hash if snap.checkpoint_block == snap.block.number else "",
                    )
                )
            session.commit()
            return run.id, True
    except (SQLAlchemyError, TypeError, ValueError) as exc:
        # TypeError/ValueError: a value of the wrong type (a non-int amount, details that are not JSON).
        raise StoreError(f"writing the snapshot failed and was rolled back: {type(exc).__name__}: {str(exc).splitlines()[0]}") from None


def get_checkpoint(engine: Engine, chain: str, protocol: str) -> Checkpoint | None:
    with Session(engine) as session:
        return session.get(Checkpoint, (chain, protocol))


def known_accounts(engine: Engine, protocol: str) -> list[AccountKey]:
    with Session(engine) as session:
        rows = session.exec(select(KnownAccount.account, KnownAccount.market).where(KnownAccount.protocol == protocol)).all()
    return sorted(AccountKey(account, market) for account, market in rows)


# --- queries for the user surfaces ------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class PositionRow:
    """A stored position joined with its run, as the CLI shows it."""

    run_id: int  # the snapshot run it belongs to
    address: str  # account
    market: str  # market id within the instance, "" for single-market instances
    protocol: str  # protocol instance
    kind: str  # adapter kind of the instance, e.g. "aave_v3"
    chain: str  # chain name
    health_factor: int  # WAD, 2**256-1 without debt
    liquidatable: bool  # the protocol's verdict
    collateral_usd: int  # USD x 1e18
    debt_usd: int  # USD x 1e18
    nlv_usd: int  # USD x 1e18
    price_drop_to_liquidation: float | None  # 0..1
    block_number: int  # block of the run
    block_timestamp: int  # timestamp of the run's block
    legs: list[dict[str, Any]]  # per-asset detail
    details: dict[str, str]  # protocol-specific extras (verdict reason, market parameters)
    price_quality: str = "ok"  # labels of the prices the verdict used ("ok", or e.g. "stale"; ``pricing.quality``)

    def to_json(self) -> dict[str, Any]:
        """The CLI's ``--json`` object: health factor as an integer string (x 1e18) or "inf"."""
        return {
            "address": self.address,
            "protocol": self.protocol,
            "kind": self.kind,
            "market": self.market,
            "chain": self.chain,
            "health_factor": "inf" if self.health_factor == UINT256_MAX else str(self.health_factor),
            "health_factor_float": None if self.health_factor == UINT256_MAX else self.health_factor / WAD,
            "liquidatable": self.liquidatable,
            "price_quality": self.price_quality,
            "collateral_usd": self.collateral_usd / USD_SCALE,
            "debt_usd": self.debt_usd / USD_SCALE,
            "nlv_usd": self.nlv_usd / USD_SCALE,
            "price_drop_to_liquidation": self.price_drop_to_liquidation,
            "block_number": self.block_number,
            "block_timestamp": self.block_timestamp,
            "legs": self.legs,
            "details": self.details,
        }


def position_row(pos: Any, run: SnapshotRun) -> PositionRow:
    """The ``PositionRow`` of a stored position (a ``PositionSnapshot``, or a plain result row with its
    columns) and its run."""
    return PositionRow(
        run_id=run.id or 0,
        address=pos.account,
        market=pos.market,
        protocol=pos.protocol,
        kind=run.kind,
        chain=run.chain,
        health_factor=pos.health_factor,
        liquidatable=pos.liquidatable,
        collateral_usd=pos.collateral_usd,
        debt_usd=pos.debt_usd,
        nlv_usd=pos.nlv_usd,
        price_drop_to_liquidation=pos.price_drop_to_liquidation,
        block_number=pos.block_number,
        block_timestamp=run.block_timestamp,
        legs=json.loads(pos.legs),
        details=json.loads(pos.details),
        price_quality=getattr(pos, "price_quality", "ok"),  # plain rows that leave the column out: "ok"
    )


def latest_run_ids(session: Session, protocol: str | None = None) -> list[int]:
    """The newest canonical run of each protocol instance (of each of its account shards, if sharded).

    Newest means the highest block, then the highest id: a block snapshotted again after a reorg (or with
    ``--block``) gets a larger id than the runs of later blocks, and must not pass for current. Orphaned runs
    never count.
    """
    rank = (
        func.row_number()
        .over(partition_by=(SnapshotRun.protocol, SnapshotRun.shard), order_by=(col(SnapshotRun.block_number).desc(), col(SnapshotRun.id).desc()))
        .label("rank")
    )
    ranked = select(SnapshotRun.id, rank).where(SnapshotRun.status == "canonical")
    if protocol is not None:
        ranked = ranked.where(SnapshotRun.protocol == protocol)
    sub = ranked.subquery()
    return sorted(int(i) for i in session.exec(select(sub.c.id).where(sub.c.rank == 1)).all() if i is not None)


def at_risk(engine: Engine, below_wad: int, *, protocol: str | None = None, limit: int | None = None) -> list[PositionRow]:
    """Positions of the latest runs with health factor < ``below_wad`` (exact integer filter), riskiest first."""
    with Session(engine) as session:
        run_ids = latest_run_ids(session, protocol)
        if not run_ids:
            return []
        # The float column pre-filters with a margin; the integer decides.
        margin = below_wad / WAD * (1 + 1e-9) + 1e-12
        query = (
            select(PositionSnapshot, SnapshotRun)
            .join(SnapshotRun, PositionSnapshot.run_id == SnapshotRun.id)  # type: ignore[arg-type]
            .where(PositionSnapshot.run_id.in_(run_ids))  # type: ignore[union-attr]
        )
        if below_wad <= UINT256_MAX:  # above it even "no debt" (stored as +inf) qualifies
            query = query.where(PositionSnapshot.health_factor_float <= margin)
        rows = [position_row(p, r) for p, r in session.exec(query).all() if p.health_factor < below_wad]
    rows.sort(key=lambda r: (r.health_factor, r.address, r.market))
    return rows[:limit] if limit else rows


def account_positions(engine: Engine, account: str) -> tuple[list[PositionRow], list[PositionRow]]:
    """(latest position per protocol, full history oldest first: by block, then run) of one account, canonical runs only."""
    with Session(engine) as session:
        query = (
            select(PositionSnapshot, SnapshotRun)
            .join(SnapshotRun, PositionSnapshot.run_id == SnapshotRun.id)  # type: ignore[arg-type]
            .where(PositionSnapshot.account == account, SnapshotRun.status == "canonical")
            .order_by(col(SnapshotRun.block_number), col(SnapshotRun.id))
        )
        history = [position_row(p, r) for p, r in session.exec(query).all()]
        latest_ids = set(latest_run_ids(session))
    current = [row for row in history if row.run_id in latest_ids]
    return current, history


def protocol_names(engine: Engine) -> list[str]:
    """The protocol instances with at least one stored run."""
    with Session(engine) as session:
        return sorted(session.exec(select(SnapshotRun.protocol).distinct()).all())


def list_runs(engine: Engine, limit: int = 20) -> list[SnapshotRun]:
    with Session(engine) as session:
        return list(session.exec(select(SnapshotRun).order_by(SnapshotRun.id.desc()).limit(limit)).all())  # type: ignore[union-attr]
