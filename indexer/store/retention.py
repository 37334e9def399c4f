"""Retention: keep every snapshot of the last N days, thin older ones, never lose an account's latest row.

A run older than the cutoff (by its block timestamp) is deleted unless it is
- the newest canonical run of its (protocol, shard) in its thinning bucket (``thin_seconds`` wide, by block
  timestamp), or
- the run that holds the latest canonical position of some (protocol, account, market): an account that left
  the protocol long ago still shows its last position (``indexer account``), and ``at-risk`` reads the
  newest runs, which are never older than the cutoff's buckets' keepers.
Its position and price rows go with it, in one transaction.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from dataclasses import dataclass

from sqlalchemy import Engine, delete, func
from sqlalchemy import select as sa_select
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session, select

from indexer.errors import StoreError
from indexer.store.models import PositionSnapshot, PriceSnapshot, SnapshotRun

log = logging.getLogger(__name__)

_CHUNK = 500  # ids per DELETE ... IN (...)


@dataclass(frozen=True, slots=True)
class PruneResult:
    runs_before: int
    runs_deleted: int
    positions_deleted: int
    prices_deleted: int
    protected: int  # old runs kept only because they hold some account's latest position
    cutoff_timestamp: int


def _latest_position_runs(session: Session) -> set[int]:
    """The runs holding the latest canonical position of each (protocol, account, market): highest block, then
    highest run id (a block snapshotted again after a reorg has a larger id than later blocks). Orphaned runs
    hold no account's latest position."""
    p = PositionSnapshot.__table__.c  # type: ignore[attr-defined]
    rank = func.row_number().over(partition_by=(p.protocol, p.account, p.market), order_by=(p.block_number.desc(), p.run_id.desc())).label("rank")
    ranked = (
        sa_select(p.run_id, rank)
        .join(SnapshotRun.__table__, SnapshotRun.__table__.c.id == p.run_id)  # type: ignore[attr-defined]
        .where(SnapshotRun.__table__.c.status == "canonical")  # type: ignore[attr-defined]
        .subquery()
    )
    return {int(r) for r in session.connection().execute(sa_select(ranked.c.run_id).where(ranked.c.rank == 1).distinct()).scalars()}


def prune(engine: Engine, *, keep_days: float, thin_seconds: int, now: int | None = None, dry_run: bool = False) -> PruneResult:
    """Delete old runs as the module says; ``dry_run`` counts without deleting."""
    if keep_days < 0 or thin_seconds <= 0:
        raise StoreError(f"retention needs keep_days >= 0 and thin_seconds > 0, got {keep_days} and {thin_seconds}")
    cutoff = int((time.time() if now is None else now) - keep_days * 86_400)
    try:
        with Session(engine) as session:
            runs = session.exec(
                select(SnapshotRun.id, SnapshotRun.protocol, SnapshotRun.shard, SnapshotRun.block_timestamp, SnapshotRun.block_number, SnapshotRun.status)
            ).all()
            latest_rows = _latest_position_runs(session)
            keepers: dict[tuple[str, int, int], tuple[int, int]] = {}
            old: list[int] = []
            for run_id, protocol, shard, ts, number, status in runs:
                if ts >= cutoff:
                    continue
                old.append(run_id)
                if status == "canonical":
                    bucket = (protocol, shard, ts // thin_seconds)
                    if bucket not in keepers or (number, run_id) > keepers[bucket]:
                        keepers[bucket] = (number, run_id)
            keep = {run_id for _, run_id in keepers.values()}
            doomed = [r for r in old if r not in keep and r not in latest_rows]
            protected = sum(1 for r in old if r not in keep and r in latest_rows)
            counts = defaultdict(int)
            for start in range(0, len(doomed), _CHUNK):
                ids = doomed[start : start + _CHUNK]
                counts["positions"] += session.exec(select(func.count()).where(PositionSnapshot.run_id.in_(ids))).one()  # type: ignore[union-attr]
                counts["prices"] += session.exec(select(func.count()).where(PriceSnapshot.run_id.in_(ids))).one()  # type: ignore[union-attr]
                if not dry_run:
                    session.execute(delete(PositionSnapshot).where(PositionSnapshot.run_id.in_(ids)))  # type: ignore[union-attr]
                    session.execute(delete(PriceSnapshot).where(PriceSnapshot.run_id.in_(ids)))  # type: ignore[union-attr]
                    session.execute(delete(SnapshotRun).where(SnapshotRun.id.in_(ids)))  # type: ignore[union-attr]
            if not dry_run:
                session.commit()
    except SQLAlchemyError as exc:
        raise StoreError(f"prune failed and was rolled back: {type(exc).__name__}: {str(exc).splitlines()[0]}") from None
    result = PruneResult(len(runs), len(doomed), counts["positions"], counts["prices"], protected, cutoff)
    log.info(
        "prune%s runs_before=%d runs_deleted=%d positions_deleted=%d prices_deleted=%d protected=%d cutoff=%d",
        " (dry run)" if dry_run else "",
        result.runs_before,
        result.runs_deleted,
        result.positions_deleted,
        result.prices_deleted,
        result.protected,
        cutoff,
    )
    return result
