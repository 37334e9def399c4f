"""Orphaned snapshots: marking the stored runs whose block a reorg took off the chain.

A run's ``status`` is ``canonical`` until a re-check finds another block (or none) at its number: then it becomes
``orphaned``, with ``orphaned_at`` set, and every query for current data passes it by (``db.latest_run_ids`` and
the history queries read canonical runs only). Its rows stay, for the record. A run whose block comes back (a reorg
back to its branch) is canonical again.

The chain is read through a callable (``canonical``: block numbers -> hash, None where there is no block), so
that this module never talks to a node and its logic runs against any in-memory chain.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Engine, update
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session, col, select

from indexer.errors import StoreError
from indexer.store.models import SnapshotRun

log = logging.getLogger(__name__)

CANONICAL = "canonical"  # SnapshotRun.status: its block is (as far as the last check knows) on the chain
ORPHANED = "orphaned"  # SnapshotRun.status: a reorg took its block off the chain

# Block numbers -> canonical hash at each (None: the chain has no such block).
CanonicalHashes = Callable[[Sequence[int]], Mapping[int, str | None]]


@dataclass(frozen=True, slots=True)
class StoredBlock:
    """A stored run's block, as a re-check compares it."""

    run_id: int  # snapshot run id
    number: int  # its block number
    hash: str  # its block hash
    status: str  # CANONICAL or ORPHANED


@dataclass(frozen=True, slots=True)
class RecheckResult:
    """What a re-check of the recent runs of one protocol instance (and account shard) found and did."""

    checked: int  # runs compared with the chain
    orphaned: tuple[int, ...]  # run ids marked orphaned now
    reinstated: tuple[int, ...]  # run ids canonical again (their block came back)
    recompute: tuple[int, ...]  # block numbers with a stored run but none of the canonical block: to snapshot again


def recent_blocks(engine: Engine, *, chain_id: int, protocol: str, shard: int, above_block: int) -> list[StoredBlock]:
    """The runs (canonical and orphaned) of ``protocol``'s shard ``shard`` on chain ``chain_id`` with a block
    number above ``above_block``, oldest block first."""
    with Session(engine) as session:
        rows = session.exec(
            select(SnapshotRun.id, SnapshotRun.block_number, SnapshotRun.block_hash, SnapshotRun.status)
            .where(
                SnapshotRun.chain_id == chain_id,
                SnapshotRun.protocol == protocol,
                SnapshotRun.shard == shard,
                SnapshotRun.block_number > above_block,
            )
            .order_by(col(SnapshotRun.block_number), col(SnapshotRun.id))
        ).all()
    return [StoredBlock(int(i), int(n), str(h), str(s)) for i, n, h, s in rows]


def set_status(engine: Engine, *, orphaned: Sequence[int], reinstated: Sequence[int] = (), now: datetime | None = None) -> None:
    """Mark runs ``orphaned`` (status and ``orphaned_at``) and ``reinstated`` canonical again, in one transaction."""
    if not orphaned and not reinstated:
        return
    at = now or datetime.now(UTC)
    try:
        with Session(engine) as session:
            if orphaned:
                session.execute(
                    update(SnapshotRun)
                    .where(col(SnapshotRun.id).in_(list(orphaned)), col(SnapshotRun.status) == CANONICAL)
                    .values(status=ORPHANED, orphaned_at=at)
                )
            if reinstated:
                session.execute(
                    update(SnapshotRun)
                    .where(col(SnapshotRun.id).in_(list(reinstated)), col(SnapshotRun.status) == ORPHANED)
                    .values(status=CANONICAL, orphaned_at=None)
                )
            session.commit()
    except SQLAlchemyError as exc:
        raise StoreError(f"marking orphaned runs failed and was rolled back: {type(exc).__name__}: {str(exc).splitlines()[0]}") from None


def recheck_runs(
    engine: Engine, *, chain_id: int, protocol: str, shard: int, above_block: int, canonical: CanonicalHashes, now: datetime | None = None
) -> RecheckResult:
    """Compare the runs above ``above_block`` (see ``recent_blocks``) with the chain and mark those whose block left
    it orphaned (those whose block is back, canonical), in one transaction.

    ``recompute`` names the block numbers that have a stored run but no run of the block now canonical there (and
    a block there at all): the caller snapshots them again. A recompute that failed is named again at the next
    re-check, until its block falls out of the window.
    """
    stored = recent_blocks(engine, chain_id=chain_id, protocol=protocol, shard=shard, above_block=above_block)
    if not stored:
        return RecheckResult(0, (), (), ())
    hashes = canonical(sorted({b.number for b in stored}))
    orphaned = tuple(b.run_id for b in stored if b.status == CANONICAL and hashes.get(b.number) != b.hash)
    reinstated = tuple(b.run_id for b in stored if b.status == ORPHANED and hashes.get(b.number) == b.hash)
    set_status(engine, orphaned=orphaned, reinstated=reinstated, now=now)
    for b in stored:
        if b.run_id in orphaned:
            now_hash = hashes.get(b.number)
            log.warning(
                "reorg: run %d of %s shard %d at block %d (%s) is orphaned; the chain has %s there now",
                b.run_id,
                protocol,
                shard,
                b.number,
                b.hash[:10],
                now_hash[:10] if now_hash else "no block",
            )
        elif b.run_id in reinstated:
            log.warning("reorg: run %d of %s shard %d at block %d (%s) is canonical again", b.run_id, protocol, shard, b.number, b.hash[:10])
    present = {b.number for b in stored if hashes.get(b.number) == b.hash}
    recompute = tuple(sorted({b.number for b in stored if hashes.get(b.number) is not None and b.number not in present}))
    return RecheckResult(len(stored), orphaned, reinstated, recompute)


def canonical_blocks(engine: Engine, *, chain_id: int, protocol: str, at_most: int) -> list[tuple[int, str]]:
    """``(block number, hash)`` of the canonical runs of ``protocol``'s shard 0 (the discovering one) at or below
    block ``at_most``, newest first: where a discovery checkpoint that left the chain may rewind to."""
    with Session(engine) as session:
        rows = session.exec(
            select(SnapshotRun.block_number, SnapshotRun.block_hash)
            .where(
                SnapshotRun.chain_id == chain_id,
                SnapshotRun.protocol == protocol,
                SnapshotRun.shard == 0,
                SnapshotRun.status == CANONICAL,
                SnapshotRun.block_number <= at_most,
            )
            .order_by(col(SnapshotRun.block_number).desc(), col(SnapshotRun.id).desc())
        ).all()
    seen: set[str] = set()
    out: list[tuple[int, str]] = []
    for number, block_hash in rows:
        if block_hash not in seen:
            seen.add(block_hash)
            out.append((int(number), str(block_hash)))
    return out
