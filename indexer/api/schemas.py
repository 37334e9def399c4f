"""Response models of the API (they make the OpenAPI schema) and the JSON conversion of stored values.

Big integers follow the CLI's ``--json``: a health factor is a decimal string of the WAD integer, or "inf"
without debt, beside ``health_factor_float``; USD amounts are floats for display beside exact
``*_usd_e18`` strings (USD x 1e18).
"""

from __future__ import annotations

import math
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, Field

from indexer.store.db import PositionRow

T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    """One page of a list, with the total number of matching items."""

    total: int = Field(description="items matching the filters, all pages")
    limit: int = Field(description="page size asked")
    offset: int = Field(description="items skipped")
    items: list[T] = Field(description="this page")


class PositionOut(BaseModel):
    """A stored position of the latest (or a past) snapshot."""

    address: str = Field(description="account, checksummed")
    protocol: str = Field(description="protocol instance")
    kind: str = Field(description="adapter kind")
    market: str = Field(description="market id within the instance, '' for single-market instances")
    chain: str = Field(description="chain name")
    run_id: int = Field(description="snapshot run")
    health_factor: str = Field(description="health factor x 1e18 as a decimal integer, or 'inf' without debt")
    health_factor_float: float | None = Field(description="health factor as a float; null without debt")
    liquidatable: bool = Field(description="the protocol's verdict")
    price_quality: str = Field(
        description="quality of the oracle prices the verdict used: 'ok', or labels joined by ',' in this order: "
        "stale, non_positive, out_of_bounds, sequencer_down, sequencer_grace (the verdict is still the protocol's)"
    )
    collateral_usd: float = Field(description="collateral the protocol counts, USD (display)")
    debt_usd: float = Field(description="debt, USD (display)")
    nlv_usd: float = Field(description="net liquidation value, USD (display)")
    collateral_usd_e18: str = Field(description="collateral, USD x 1e18 (exact)")
    debt_usd_e18: str = Field(description="debt, USD x 1e18 (exact)")
    nlv_usd_e18: str = Field(description="NLV, USD x 1e18 (exact, signed)")
    price_drop_to_liquidation: float | None = Field(description="uniform adverse price move to liquidation (0..1); null: none")
    block_number: int = Field(description="block of the snapshot")
    block_timestamp: int = Field(description="its timestamp")
    legs: list[dict[str, Any]] = Field(description="per-asset detail; amounts and values as decimal strings")
    details: dict[str, Any] = Field(description="protocol-specific extras")


def position_out(row: PositionRow) -> dict[str, Any]:
    data = row.to_json()
    data["run_id"] = row.run_id
    data["collateral_usd_e18"] = str(row.collateral_usd)
    data["debt_usd_e18"] = str(row.debt_usd)
    data["nlv_usd_e18"] = str(row.nlv_usd)
    return finite(data)


class RunOut(BaseModel):
    """A stored snapshot run."""

    id: int
    chain: str
    chain_id: int
    protocol: str
    kind: str
    shard: int
    shards: int
    status: str = Field(description="canonical | orphaned")
    block_number: int = Field(description="pinned block")
    block_timestamp: int
    head_block: int | None = Field(description="chain head when the block was pinned; null when not read (pinned with --block, older runs)")
    lag_blocks: int | None = Field(description="head_block - block_number")
    age_seconds: float = Field(description="now - block_timestamp")
    accounts_read: int
    positions: int
    liquidatable: int
    rpc_requests: int
    rpc_errors: dict[str, int] = Field(
        description="failed RPC attempts by class: transient, rate_limited, range_too_large, permanent, unknown; and unreadable: positions left out because a read failed inside aggregate3"
    )
    duration_seconds: float
    created_at: str


class ProtocolOut(BaseModel):
    """A protocol instance with stored snapshots, at its latest run(s)."""

    name: str
    kind: str
    chain: str
    chain_id: int
    shards: int = Field(description="account shards of its latest runs")
    block_number: int = Field(description="block of the latest run (the lowest over shards)")
    block_timestamp: int
    head_block: int | None
    lag_blocks: int | None = Field(description="largest lag over its shards' latest runs")
    age_seconds: float
    positions: int = Field(description="positions in the latest runs")
    liquidatable: int
    known_accounts: int = Field(description="accounts discovered (per market)")
    runs: int = Field(description="stored runs")


class AccountOut(BaseModel):
    """An address across protocols: portfolio, latest positions, a page of its history."""

    address: str
    portfolio: dict[str, Any] | None = Field(description="portfolio over its latest positions (haircut NLV, tier, liquidation levels); null when no position has stored state")
    positions: list[PositionOut] = Field(description="latest position per protocol and market")
    history: Page[PositionOut] = Field(description="stored positions, newest first")


class AssetOut(BaseModel):
    """An asset held or owed in the latest positions, for /levels."""

    symbol: str = Field(description="price-book symbol (leg symbols go through [risk] asset_aliases)")
    stable: bool = Field(description="a USD stablecoin ([risk] stable_assets)")
    positions: int = Field(description="latest positions with a collateral or long leg in it")
    collateral_usd: float = Field(description="value of its collateral/supply/long legs, USD")


class ScenarioOut(BaseModel):
    """A stress scenario of the scenarios file."""

    name: str
    description: str
    multipliers: dict[str, float] = Field(description="price multiplier per price-book symbol (0.7 = -30 %); unshocked symbols absent")


class HealthOut(BaseModel):
    status: str = Field(description="ok | degraded")
    database: str = Field(description="ok, or the error")
    runs: int | None = Field(default=None, description="stored runs")


def finite(value: Any) -> Any:
    """``value`` with non-finite floats as null, so that it is valid JSON."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite(v) for v in value]
    return value
