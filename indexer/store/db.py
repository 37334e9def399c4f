"""Engine, snapshot writes (one transaction, idempotent per block) and the read queries."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, event, func, inspect
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session, SQLModel, create_engine, select

from indexer.constants import UINT256_MAX, USD_SCALE, WAD
from indexer.domain import AccountKey, Snapshot
from indexer.errors import StoreError
from indexer.store.models import Checkpoint, KnownAccount, PositionSnapshot, PriceSnapshot, SnapshotRun

log = logging.getLogger(__name__)


def make_engine(url: str, *, create: bool = True) -> Engine:
    """An engine for ``url``; creates the tables when ``create`` (migrations come with PostgreSQL)."""
    try:
        if url.startswith("sqlite:///"):
            path = url.removeprefix("sqlite:///")
            if path and path != ":memory:" and not create and not Path(path).exists():
                raise StoreError(f"database file {path!r} does not exist: run `indexer snapshot` or `indexer demo` first")
            engine = create_engine(url, connect_args={"timeout": 30})
            event.listen(engine, "connect", _sqlite_pragmas)
        else:
            engine = create_engine(url, pool_pre_ping=True)
        _check_schema(engine)
        if create:
            SQLModel.metadata.create_all(engine)
        return engine
    except SQLAlchemyError as exc:
        raise StoreError(f"cannot open database: {type(exc).__name__}: {str(exc).splitlines()[0]}") from None


# Columns added after the first release; a database without them was made by an older indexer.
_REQUIRED_COLUMNS = {"position_snapshots": "market", "known_accounts": "market", "price_snapshots": "market"}


def _check_schema(engine: Engine) -> None:
    """Refuse a database whose tables predate the current schema, before anything is read or written."""
    inspector = inspect(engine)
    tables = set(inspector.get_table_names())
    for table, column in _REQUIRED_COLUMNS.items():
        if table in tables and column not in {c["name"] for c in inspector.get_columns(table)}:
            raise StoreError(
                f"database table {table} has no column {column!r}: it was created by an older indexer version; "
                "point --database-url at a new database (the old one is left untouched)"
            )


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
            )
            session.add(run)
            session.flush()
            assert run.id is not None
            session.add_all(
                PositionSnapshot(
                    run_id=run.id,
                    protocol=p.protocol,
                    chain_id=p.block.chain_id,
                    account=p.account,
                    market=p.market,
                    block_number=p.block.number,
                    health_factor=p.health_factor,
                    health_factor_float=health_factor_float(p.health_factor),
                    liquidatable=p.liquidatable,
                    collateral_usd=p.collateral_usd,
                    debt_usd=p.debt_usd,
                    nlv_usd=p.nlv_usd,
                    liquidation_threshold_bps=p.liquidation_threshold_bps,
                    price_drop_to_liquidation=p.price_drop_to_liquidation,
                    legs=_legs_json(p.legs),
                    details=json.dumps(p.details, sort_keys=True),
                )
                for p in snap.positions
            )
            session.add_all(
                PriceSnapshot(
                    run_id=run.id,
                    asset=pr.asset,
                    market=pr.market,
                    symbol=pr.symbol,
                    price=pr.price,
                    price_decimals=pr.price_decimals,
                    source=pr.source,
                    feed_answer=pr.feed_answer,
                    feed_updated_at=pr.feed_updated_at,
                )
                for pr in snap.prices
            )
            if snap.new_accounts:
                # Accounts seen before keep their first_seen_block: insert-or-ignore, no read of the set.
                rows = [
                    {"protocol": snap.protocol, "account": k.account, "market": k.market, "first_seen_block": snap.checkpoint_block}
                    for k in sorted(set(snap.new_accounts))
                ]
                session.execute(_insert_ignore(engine, KnownAccount).values(rows))
            checkpoint = session.get(Checkpoint, (snap.chain, snap.protocol))
            if checkpoint is None or snap.checkpoint_reset or snap.checkpoint_block >= checkpoint.block_number:
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
            "collateral_usd": self.collateral_usd / USD_SCALE,
            "debt_usd": self.debt_usd / USD_SCALE,
            "nlv_usd": self.nlv_usd / USD_SCALE,
            "price_drop_to_liquidation": self.price_drop_to_liquidation,
            "block_number": self.block_number,
            "block_timestamp": self.block_timestamp,
            "legs": self.legs,
            "details": self.details,
        }


def _row(pos: PositionSnapshot, run: SnapshotRun) -> PositionRow:
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
    )


def latest_run_ids(session: Session, protocol: str | None = None) -> list[int]:
    """The newest canonical run of each protocol instance (of each of its account shards, if sharded)."""
    query = select(func.max(SnapshotRun.id)).where(SnapshotRun.status == "canonical").group_by(SnapshotRun.protocol, SnapshotRun.shard)
    if protocol is not None:
        query = query.where(SnapshotRun.protocol == protocol)
    return [i for i in session.exec(query).all() if i is not None]


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
        rows = [_row(p, r) for p, r in session.exec(query).all() if p.health_factor < below_wad]
    rows.sort(key=lambda r: (r.health_factor, r.address, r.market))
    return rows[:limit] if limit else rows


def account_positions(engine: Engine, account: str) -> tuple[list[PositionRow], list[PositionRow]]:
    """(latest position per protocol, full history oldest first) of one account."""
    with Session(engine) as session:
        query = (
            select(PositionSnapshot, SnapshotRun)
            .join(SnapshotRun, PositionSnapshot.run_id == SnapshotRun.id)  # type: ignore[arg-type]
            .where(PositionSnapshot.account == account, SnapshotRun.status == "canonical")
            .order_by(SnapshotRun.id)  # type: ignore[arg-type]
        )
        history = [_row(p, r) for p, r in session.exec(query).all()]
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
