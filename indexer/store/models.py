"""Table models (``table=True``), apart from the domain model in ``indexer.domain``."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import BigInteger, Column, DateTime, Index, String, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from indexer.store.codec import BigInt


def _now() -> datetime:
    return datetime.now(UTC)


class SnapshotRun(SQLModel, table=True):
    """One snapshot of one protocol instance at one block."""

    __tablename__ = "snapshot_runs"
    __table_args__ = (UniqueConstraint("chain_id", "protocol", "shard", "block_hash", name="uq_run_shard_block"),)

    id: int | None = Field(default=None, primary_key=True)
    chain: str = Field(index=True)  # chain name from the config
    chain_id: int  # EIP-155 chain id
    protocol: str = Field(index=True)  # protocol instance name
    kind: str  # adapter kind
    shard: int = 0  # account shard this run read (domain.Snapshot.shard) ...
    shards: int = 1  # ... out of how many
    block_number: int
    block_hash: str
    block_timestamp: int
    status: str = "canonical"  # canonical | orphaned (its block left the canonical chain: a reorg)
    orphaned_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True), nullable=True))  # when a re-check found it orphaned
    accounts_read: int = 0
    positions: int = 0
    liquidatable: int = 0
    rpc_requests: int = 0
    duration_seconds: float = 0.0
    created_at: datetime = Field(default_factory=_now)
    # Market-wide inputs of the protocol's rule at the block, JSON keyed by market id (domain.Snapshot.market_state);
    # None for runs of releases before 0004 (their positions cannot be recomputed under other prices).
    market_state: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    head_block: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))  # chain head when the block was pinned
    rpc_errors: str | None = Field(default=None, sa_column=Column(Text, nullable=True))  # JSON: failure class -> failed attempts


class PositionSnapshot(SQLModel, table=True):
    """An account's position and verdict in one run."""

    __tablename__ = "position_snapshots"
    __table_args__ = (
        UniqueConstraint("run_id", "account", "market", name="uq_position_run_account_market"),
        Index("ix_position_run_hf", "run_id", "health_factor_float"),
    )

    id: int | None = Field(default=None, primary_key=True)
    run_id: int = Field(foreign_key="snapshot_runs.id")
    protocol: str
    chain_id: int
    account: str = Field(index=True)
    market: str = ""  # market id within the instance, "" for single-market instances (domain.AccountKey)
    block_number: int
    health_factor: int = Field(sa_column=Column(BigInt(), nullable=False))  # WAD; 2**256-1 without debt
    health_factor_float: float  # for ordering and report filters only; verdicts use the integer
    liquidatable: bool
    collateral_usd: int = Field(sa_column=Column(BigInt(), nullable=False))  # USD x 1e18
    debt_usd: int = Field(sa_column=Column(BigInt(), nullable=False))  # USD x 1e18
    nlv_usd: int = Field(sa_column=Column(BigInt(), nullable=False))  # USD x 1e18, signed
    liquidation_threshold_bps: int
    price_drop_to_liquidation: float | None = None
    legs: str = Field(sa_column=Column(Text, nullable=False))  # JSON list of legs, amounts as text
    details: str = Field(sa_column=Column(Text, nullable=False))  # JSON object, protocol-specific
    state: str | None = Field(default=None, sa_column=Column(Text, nullable=True))  # JSON: the position's raw rule inputs (domain.Position.state)
    price_quality: str = Field(default="ok", sa_column=Column(String, nullable=False, server_default="ok"))  # domain.Position.price_quality


class PriceSnapshot(SQLModel, table=True):
    """A price a run used, as the protocol's oracle gave it at the run's block."""

    __tablename__ = "price_snapshots"
    __table_args__ = (UniqueConstraint("run_id", "asset", "market", name="uq_price_run_asset_market"),)

    id: int | None = Field(default=None, primary_key=True)
    run_id: int = Field(foreign_key="snapshot_runs.id", index=True)
    asset: str
    market: str = ""  # market whose oracle gave the price, "" when instance-wide (domain.PriceReading)
    symbol: str
    price: int = Field(sa_column=Column(BigInt(), nullable=False))
    price_decimals: int
    source: str
    feed_answer: int | None = Field(default=None, sa_column=Column(BigInt(), nullable=True))
    feed_updated_at: int | None = None
    quality: str = Field(default="ok", sa_column=Column(String, nullable=False, server_default="ok"))  # domain.PriceReading.quality


class Checkpoint(SQLModel, table=True):
    """The last block whose logs a protocol instance has scanned for accounts."""

    __tablename__ = "checkpoints"

    chain: str = Field(primary_key=True)
    protocol: str = Field(primary_key=True)
    block_number: int
    block_hash: str
    updated_at: datetime = Field(default_factory=_now)


class KnownAccount(SQLModel, table=True):
    """An account (in one market of the instance, where it has several) discovered from a protocol's events."""

    __tablename__ = "known_accounts"

    protocol: str = Field(primary_key=True)
    account: str = Field(primary_key=True)
    market: str = Field(default="", primary_key=True)  # see domain.AccountKey
    first_seen_block: int


class JobLease(SQLModel, table=True):
    """Which ``indexer run`` process owns a scheduled job, until when (scale-out across processes).

    A process runs a job only while it holds the job's unexpired lease; times are the database's clock."""

    __tablename__ = "job_leases"

    job_id: str = Field(primary_key=True)  # e.g. "snapshot:aave-v3-ethereum" or "snapshot:aave-v3-ethereum#2/4"
    owner: str  # worker_id of the holder
    acquired_at: datetime
    expires_at: datetime = Field(index=True)


class Worker(SQLModel, table=True):
    """A live ``indexer run`` process, as its heartbeat says; jobs are shared among the live ones."""

    __tablename__ = "workers"

    worker_id: str = Field(primary_key=True)  # host:pid:random
    started_at: datetime
    heartbeat_at: datetime = Field(index=True)


class WatchlistEntry(SQLModel, table=True):
    """An address watched for status-tier crossings (``indexer watch add``; config entries are not stored)."""

    __tablename__ = "watchlist"

    address: str = Field(primary_key=True)  # checksummed
    below: int = Field(sa_column=Column(BigInt(), nullable=False))  # WAD: health factor below which it is "warning"
    label: str = ""  # a name shown in alerts
    created_at: datetime = Field(default_factory=_now)


class Alert(SQLModel, table=True):
    """A watched address crossing into a worse tier, and its delivery to the webhook."""

    __tablename__ = "alerts"

    id: int | None = Field(default=None, primary_key=True)
    address: str = Field(index=True)  # the watched address
    protocol: str  # protocol instance of the position that set the tier (the worst one)
    market: str = ""  # its market ("" for single-market instances)
    from_tier: str  # tier held before: healthy | warning | critical | liquidation
    to_tier: str  # the worse tier crossed into
    health_factor: int = Field(sa_column=Column(BigInt(), nullable=False))  # WAD, of that position
    block_number: int  # block of that position's snapshot
    run_id: int  # its snapshot run (no foreign key: `db prune` may delete the run, the alert stays)
    created_at: datetime = Field(default_factory=_now)
    delivered: bool = False  # the webhook answered 2xx
    attempts: int = 0  # webhook requests made
    last_error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))  # last delivery failure


class AlertState(SQLModel, table=True):
    """Where the hysteresis holds a watched address, and when it last alerted."""

    __tablename__ = "alert_states"

    address: str = Field(primary_key=True)
    tier: str  # the tier held: it rises with the health factor's tier, falls only past the bound + band
    last_alert_at: datetime | None = None  # time of the last alert (cooldown)
    updated_at: datetime = Field(default_factory=_now)
