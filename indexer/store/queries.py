"""Read queries for the HTTP API and the metrics: filtered, paginated positions, runs with their lag, counts.

Like ``db.at_risk``, health-factor filters are exact: the float column pre-filters with a margin in SQL,
the stored integer decides. Every query reads the store only.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, func
from sqlmodel import Session, col, select

from indexer.constants import UINT256_MAX, WAD
from indexer.store.db import PositionRow, latest_run_ids, position_row
from indexer.store.models import KnownAccount, PositionSnapshot, SnapshotRun

# Relative slack of the float pre-filter around an integer health-factor bound (doubles carry ~1e-16).
_FLOAT_MARGIN = 1e-9


@dataclass(frozen=True, slots=True)
class PositionFilter:
    """Which positions of the latest runs to list; ``None`` fields do not filter."""

    protocol: str | None = None  # protocol instance name
    account: str | None = None  # checksummed address
    liquidatable: bool | None = None  # the protocol's verdict
    min_hf: int | None = None  # health factor >= this (WAD)
    max_hf: int | None = None  # health factor <= this (WAD)


def _float_bounds(f: PositionFilter) -> tuple[float | None, float | None]:
    lo = None if f.min_hf is None else f.min_hf / WAD * (1 - _FLOAT_MARGIN) - 1e-12
    hi = None
    if f.max_hf is not None and f.max_hf < UINT256_MAX:  # from it on even "no debt" (stored as +inf) qualifies
        hi = f.max_hf / WAD * (1 + _FLOAT_MARGIN) + 1e-12
    return lo, hi


def _matches(f: PositionFilter, hf: int) -> bool:
    if f.min_hf is not None and hf < f.min_hf:
        return False
    return not (f.max_hf is not None and hf > f.max_hf)


def positions_page(engine: Engine, f: PositionFilter, *, limit: int, offset: int) -> tuple[int, list[PositionRow]]:
    """``(total matching, one page)`` of the latest runs' positions, riskiest first (health factor, account, market).

    The filter and the order use the exact integer health factor; only the page's rows are loaded in full.
    """
    with Session(engine) as session:
        run_ids = latest_run_ids(session, f.protocol)
        if not run_ids:
            return 0, []
        query = select(PositionSnapshot.id, PositionSnapshot.health_factor, PositionSnapshot.account, PositionSnapshot.market).where(
            col(PositionSnapshot.run_id).in_(run_ids)
        )
        if f.account is not None:
            query = query.where(PositionSnapshot.account == f.account)
        if f.liquidatable is not None:
            query = query.where(PositionSnapshot.liquidatable == f.liquidatable)
        lo, hi = _float_bounds(f)
        if lo is not None:
            query = query.where(PositionSnapshot.health_factor_float >= lo)
        if hi is not None:
            query = query.where(PositionSnapshot.health_factor_float <= hi)
        keys = [(hf, account, market, pid) for pid, hf, account, market in session.exec(query).all() if _matches(f, hf)]
        keys.sort()
        page_ids = [k[3] for k in keys[offset : offset + limit]]
        rows: list[PositionRow] = []
        if page_ids:
            full = session.exec(
                select(PositionSnapshot, SnapshotRun)
                .join(SnapshotRun, PositionSnapshot.run_id == SnapshotRun.id)  # type: ignore[arg-type]
                .where(col(PositionSnapshot.id).in_(page_ids))
            ).all()
            by_id = {p.id: position_row(p, r) for p, r in full}
            rows = [by_id[i] for i in page_ids]
    return len(keys), rows


def history_page(engine: Engine, account: str, *, limit: int, offset: int) -> tuple[int, list[PositionRow]]:
    """``(total, one page)`` of an account's stored positions in canonical runs, newest first."""
    with Session(engine) as session:
        base = (
            select(PositionSnapshot, SnapshotRun)
            .join(SnapshotRun, PositionSnapshot.run_id == SnapshotRun.id)  # type: ignore[arg-type]
            .where(PositionSnapshot.account == account, SnapshotRun.status == "canonical")
        )
        total = session.exec(select(func.count()).select_from(base.subquery())).one()
        # Newest block first (a block snapshotted again after a reorg has a larger run id than later blocks).
        order = (col(SnapshotRun.block_number).desc(), col(SnapshotRun.id).desc(), col(PositionSnapshot.market))
        page = session.exec(base.order_by(*order).offset(offset).limit(limit)).all()
        return int(total), [position_row(p, r) for p, r in page]


@dataclass(frozen=True, slots=True)
class RunView:
    """A stored snapshot run as the API and the metrics show it."""

    id: int  # run id
    chain: str  # chain name
    chain_id: int  # EIP-155 chain id
    protocol: str  # protocol instance
    kind: str  # adapter kind
    shard: int  # account shard ...
    shards: int  # ... out of how many
    status: str  # canonical | orphaned
    block_number: int  # pinned block
    block_timestamp: int  # its timestamp
    head_block: int | None  # chain head when the block was pinned; None when not read (pinned with --block, or older runs)
    accounts_read: int  # accounts read
    positions: int  # positions stored
    liquidatable: int  # of which liquidatable
    rpc_requests: int  # JSON-RPC requests of the run
    rpc_errors: dict[str, int]  # failed RPC attempts by class
    duration_seconds: float  # wall time
    created_at: str  # when it was stored, ISO 8601

    @property
    def lag_blocks(self) -> int | None:
        """Blocks between the chain head and the pinned block when the run read the head."""
        return None if self.head_block is None else max(0, self.head_block - self.block_number)

    def to_json(self, now: float) -> dict[str, Any]:
        return {
            "id": self.id,
            "chain": self.chain,
            "chain_id": self.chain_id,
            "protocol": self.protocol,
            "kind": self.kind,
            "shard": self.shard,
            "shards": self.shards,
            "status": self.status,
            "block_number": self.block_number,
            "block_timestamp": self.block_timestamp,
            "head_block": self.head_block,
            "lag_blocks": self.lag_blocks,
            "age_seconds": max(0.0, now - self.block_timestamp),
            "accounts_read": self.accounts_read,
            "positions": self.positions,
            "liquidatable": self.liquidatable,
            "rpc_requests": self.rpc_requests,
            "rpc_errors": self.rpc_errors,
            "duration_seconds": self.duration_seconds,
            "created_at": self.created_at,
        }


def _errors_json(text: str | None) -> dict[str, int]:
    if not text:
        return {}
    try:
        data = json.loads(text)
    except ValueError:
        return {}
    return {str(k): int(v) for k, v in data.items()} if isinstance(data, dict) else {}


def _run_view(run: SnapshotRun) -> RunView:
    return RunView(
        id=run.id or 0,
        chain=run.chain,
        chain_id=run.chain_id,
        protocol=run.protocol,
        kind=run.kind,
        shard=run.shard,
        shards=run.shards,
        status=run.status,
        block_number=run.block_number,
        block_timestamp=run.block_timestamp,
        head_block=run.head_block,
        accounts_read=run.accounts_read,
        positions=run.positions,
        liquidatable=run.liquidatable,
        rpc_requests=run.rpc_requests,
        rpc_errors=_errors_json(run.rpc_errors),
        duration_seconds=run.duration_seconds,
        created_at=run.created_at.isoformat() if run.created_at else "",
    )


def runs_page(engine: Engine, *, protocol: str | None = None, limit: int, offset: int) -> tuple[int, list[RunView]]:
    """``(total, one page)`` of stored runs, newest first."""
    with Session(engine) as session:
        base = select(SnapshotRun)
        if protocol is not None:
            base = base.where(SnapshotRun.protocol == protocol)
        total = session.exec(select(func.count()).select_from(base.subquery())).one()
        runs = session.exec(base.order_by(col(SnapshotRun.id).desc()).offset(offset).limit(limit)).all()
        return int(total), [_run_view(r) for r in runs]


def latest_runs(engine: Engine) -> list[RunView]:
    """The newest canonical run of each protocol instance and shard, by protocol then shard."""
    with Session(engine) as session:
        ids = latest_run_ids(session)
        runs = session.exec(select(SnapshotRun).where(col(SnapshotRun.id).in_(ids))).all() if ids else []
        return sorted((_run_view(r) for r in runs), key=lambda r: (r.protocol, r.shard))


def recent_runs(engine: Engine, *, per_protocol: int) -> dict[str, list[RunView]]:
    """Up to ``per_protocol`` newest canonical runs of each protocol instance, newest first."""
    out: dict[str, list[RunView]] = defaultdict(list)
    with Session(engine) as session:
        for protocol in session.exec(select(SnapshotRun.protocol).distinct()).all():
            runs = session.exec(
                select(SnapshotRun)
                .where(SnapshotRun.protocol == protocol, SnapshotRun.status == "canonical")
                .order_by(col(SnapshotRun.id).desc())
                .limit(per_protocol)
            ).all()
            out[protocol] = [_run_view(r) for r in runs]
    return dict(out)


@dataclass(frozen=True, slots=True)
class RpcTotals:
    """RPC requests and failed attempts summed over the stored runs of one protocol instance."""

    chain: str  # chain name
    protocol: str  # protocol instance
    requests: int  # JSON-RPC requests
    errors: dict[str, int]  # failed attempts by class


def rpc_totals(engine: Engine) -> list[RpcTotals]:
    """Requests and errors of every stored run (canonical or orphaned), per chain and protocol instance."""
    requests: dict[tuple[str, str], int] = defaultdict(int)
    errors: dict[tuple[str, str], dict[str, int]] = defaultdict(lambda: defaultdict(int))
    with Session(engine) as session:
        for chain, protocol, n, text in session.exec(
            select(SnapshotRun.chain, SnapshotRun.protocol, SnapshotRun.rpc_requests, SnapshotRun.rpc_errors)  # type: ignore[call-overload]
        ).all():
            requests[(chain, protocol)] += n
            for cls, count in _errors_json(text).items():
                errors[(chain, protocol)][cls] += count
    return [RpcTotals(c, p, n, dict(errors[(c, p)])) for (c, p), n in sorted(requests.items())]


def run_counts(engine: Engine) -> dict[tuple[str, str], int]:
    """Stored runs (canonical or orphaned) per (chain, protocol instance)."""
    with Session(engine) as session:
        rows = session.exec(
            select(SnapshotRun.chain, SnapshotRun.protocol, func.count()).group_by(SnapshotRun.chain, SnapshotRun.protocol)  # type: ignore[call-overload]
        ).all()
    return {(c, p): int(n) for c, p, n in rows}


def known_account_counts(engine: Engine) -> dict[str, int]:
    """Accounts discovered per protocol instance (one per account and market)."""
    with Session(engine) as session:
        rows = session.exec(select(KnownAccount.protocol, func.count()).group_by(KnownAccount.protocol)).all()  # type: ignore[call-overload]
    return {p: int(n) for p, n in rows}


@dataclass(frozen=True, slots=True)
class Verdict:
    """A latest position's verdict only, for counts and histograms."""

    chain: str  # chain name
    protocol: str  # protocol instance
    health_factor: int  # WAD; UINT256_MAX without debt
    liquidatable: bool  # the protocol's verdict
    price_quality: str = "ok"  # labels of the prices the verdict used (``pricing.quality``)


def latest_verdicts(engine: Engine, protocol: str | None = None) -> list[Verdict]:
    """Health factor and verdict of every position of the latest runs (no legs, no details)."""
    with Session(engine) as session:
        ids = latest_run_ids(session, protocol)
        if not ids:
            return []
        rows = session.exec(
            select(SnapshotRun.chain, PositionSnapshot.protocol, PositionSnapshot.health_factor, PositionSnapshot.liquidatable, PositionSnapshot.price_quality)  # type: ignore[call-overload]
            .join(SnapshotRun, PositionSnapshot.run_id == SnapshotRun.id)
            .where(col(PositionSnapshot.run_id).in_(ids))
        ).all()
    return [Verdict(c, p, hf, bool(liq), quality) for c, p, hf, liq, quality in rows]
