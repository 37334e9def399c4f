"""Stored positions with the models that recompute them under other prices (``indexer.risk.reprice``).

Each run stores, beside its verdicts, the exact inputs of the protocol's rule: per position its raw state
(``position_snapshots.state``) and per run the market-wide state (``snapshot_runs.market_state``, JSON keyed by
market id). ``latest_positions`` reads the positions of the latest canonical run of each (protocol, shard), as
``at_risk`` does, and turns that state back into a ``PositionModel`` per position. Runs of releases before
migration 0004 stored no state: their positions come with ``model=None``.

One query reads the positions (plain rows, no ORM object each) and one the few runs; each run's market state is
parsed once and the same object is handed to every position of that run and market, so a kind's loader decodes
it once (``risk.reprice.shared.decode_shared``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine
from sqlalchemy import select as sa_select
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session, select

from indexer.domain import BlockRef
from indexer.errors import StoreError
from indexer.risk.reprice.base import PositionModel, load_model
from indexer.store.db import PositionRow, latest_run_ids, position_row
from indexer.store.models import PositionSnapshot, SnapshotRun


@dataclass(frozen=True, slots=True)
class StoredPosition:
    """A stored position and its model."""

    row: PositionRow  # the stored position as the CLI shows it
    model: PositionModel | None  # None when its run stored no state (runs of older releases)


def market_state_for(run_state: dict[str, Any] | None, market: str) -> Any:
    """The part of a run's market state a position's model takes: the entry of the position's market, else the
    instance-wide entry "", else the whole run state (kinds whose positions are keyed otherwise, e.g. by a
    position key, pick their market from their own state); None when the run stored none."""
    if run_state is None:
        return None
    if market in run_state:
        return run_state[market]
    if "" in run_state:
        return run_state[""]
    return run_state


def latest_positions(engine: Engine, *, protocol: str | None = None, account: str | None = None) -> list[StoredPosition]:
    """Positions of the latest canonical run of each (protocol, shard), with their models, ordered by
    (protocol, account, market). ``account`` (checksummed, as stored) keeps that account's positions only."""
    p = PositionSnapshot.__table__.c  # type: ignore[attr-defined]
    try:
        with Session(engine) as session:
            run_ids = latest_run_ids(session, protocol)
            if not run_ids:
                return []
            runs = {r.id: r for r in session.exec(select(SnapshotRun).where(SnapshotRun.id.in_(run_ids))).all()}  # type: ignore[union-attr]
            # Plain rows, not ORM objects: ten thousand positions are read without building an instance each.
            query = sa_select(
                p.run_id, p.account, p.market, p.protocol, p.health_factor, p.liquidatable, p.collateral_usd, p.debt_usd, p.nlv_usd,
                p.price_drop_to_liquidation, p.block_number, p.legs, p.details, p.state, p.price_quality,
            ).where(p.run_id.in_(run_ids))
            if account is not None:
                query = query.where(p.account == account)
            rows = session.connection().execute(query).all()
    except SQLAlchemyError as exc:
        raise StoreError(f"reading the stored positions failed: {type(exc).__name__}: {str(exc).splitlines()[0]}") from None
    run_states: dict[int, Any] = {}
    blocks: dict[int, BlockRef] = {}
    for run_id, run in runs.items():
        run_states[run_id] = json.loads(run.market_state) if run.market_state else None
        blocks[run_id] = BlockRef(chain_id=run.chain_id, number=run.block_number, hash=run.block_hash, timestamp=run.block_timestamp)
    out = []
    for r in rows:
        run = runs[r.run_id]
        row = position_row(r, run)
        if r.state is None:
            out.append(StoredPosition(row, None))
            continue
        try:
            model = load_model(
                run.kind,
                protocol=r.protocol,
                account=r.account,
                market=r.market,
                block=blocks[r.run_id],
                market_state=market_state_for(run_states[r.run_id], r.market),
                state=json.loads(r.state),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise StoreError(
                f"stored risk state of {r.protocol} position {r.account} {r.market} (run {r.run_id}) cannot be loaded: {type(exc).__name__}: {exc}"
            ) from None
        out.append(StoredPosition(row, model))
    out.sort(key=lambda s: (s.row.protocol, s.row.address, s.row.market))
    return out
