"""Domain model: plain frozen dataclasses shared by every layer.

Amounts are raw integers in their on-chain scale; USD values are integers scaled by 1e18
(``constants.USD_SCALE``); floats appear only in report fields whose name says so.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class BlockRef:
    """The block every read of one snapshot is pinned to."""

    chain_id: int  # EIP-155 chain id the node reported
    number: int  # block number
    hash: str  # 0x-prefixed block hash
    timestamp: int  # block timestamp, unix seconds


@dataclass(frozen=True, slots=True)
class PriceReading:
    """One asset price as the protocol's oracle reported it at the pinned block."""

    asset: str  # token address, checksummed
    symbol: str  # token symbol, for display
    price: int  # oracle answer in the protocol's base unit (e.g. USD x 1e8 for Aave)
    price_decimals: int  # decimals of ``price``
    source: str  # address of the feed behind the protocol oracle, "" if unknown
    feed_answer: int | None  # the feed's own latestRoundData answer, None if it has none
    feed_updated_at: int | None  # the feed's updatedAt, None if it has none
    market: str = ""  # market whose oracle gave the price, "" when the price is instance-wide (see AccountKey)
    # Oracle quality label (``pricing.quality``): "ok", or what is wrong with the answer: "stale", "non_positive",
    # "out_of_bounds", "sequencer_down", "sequencer_grace" (several joined by ","). The protocol still uses it.
    quality: str = "ok"


@dataclass(frozen=True, slots=True, order=True)
class AccountKey:
    """An account of a protocol instance, within one of its markets when the instance has several.

    ``market`` is "" for protocols whose instance is one market (Aave V3 pool, one Comet); Morpho Blue
    positions are per market, so the key carries the market id there.
    """

    account: str  # account address, checksummed
    market: str = ""  # market id within the instance (0x-prefixed hex), "" for single-market instances


@dataclass(frozen=True, slots=True)
class PositionLeg:
    """One asset of a position: supplied collateral or borrowed debt."""

    asset: str  # token address, checksummed
    symbol: str  # token symbol
    side: str  # "collateral", "debt", "supply" (lent, not collateral, e.g. Comet base supply), or "long"/"short" (perps)
    amount: int  # raw token units at the pinned block (balanceOf)
    decimals: int  # token decimals
    value_usd: int  # value in USD x 1e18, rounded as the protocol rounds it
    liquidation_threshold_bps: int  # threshold applied to this leg (0 for debt)


@dataclass(frozen=True, slots=True)
class Position:
    """An account's position in one protocol instance at one block, with its exact verdict."""

    protocol: str  # protocol instance name from the config
    kind: str  # adapter kind, e.g. "aave_v3"
    account: str  # account address, checksummed
    block: BlockRef  # where it was read
    collateral_usd: int  # collateral the protocol counts, USD x 1e18
    debt_usd: int  # debt, USD x 1e18
    nlv_usd: int  # net liquidation value at market (collateral - debt), USD x 1e18, signed
    health_factor: int  # WAD; constants.UINT256_MAX when there is no debt
    liquidatable: bool  # the protocol's own verdict at this block
    liquidation_threshold_bps: int  # weighted liquidation threshold of the collateral
    price_drop_to_liquidation: float | None  # uniform collateral price drop (0..1) to liquidation; None: none
    legs: tuple[PositionLeg, ...]  # per-asset detail
    details: dict[str, str] = field(default_factory=dict)  # protocol-specific extras, values as text
    market: str = ""  # market id within the instance ("" for single-market instances), see AccountKey
    # The position's raw inputs to the protocol's rule (JSON-able, ``risk.state.encode``), so that the stored
    # position can be recomputed under other prices (``risk.reprice``); {} where an adapter keeps none.
    state: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)
    # The quality labels of the prices the verdict used (``PriceReading.quality``): "ok" when every one is
    # clean, else the labels found, joined by "," (e.g. "stale": liquidatable on a stale price).
    price_quality: str = "ok"

    @property
    def key(self) -> AccountKey:
        return AccountKey(self.account, self.market)


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Everything one run read and computed, ready to be stored in one transaction."""

    chain: str  # chain name from the config
    protocol: str  # protocol instance name from the config
    kind: str  # adapter kind
    block: BlockRef  # the pinned block
    positions: tuple[Position, ...]  # one per account with a non-empty position
    prices: tuple[PriceReading, ...]  # every price the verdicts used
    new_accounts: tuple[AccountKey, ...]  # accounts discovered in this run's log range
    checkpoint_block: int  # last block whose logs were scanned
    accounts_read: int  # accounts whose positions were read (including empty ones)
    rpc_requests: int  # JSON-RPC requests the run made
    duration_seconds: float  # wall time of the run
    checkpoint_reset: bool = False  # the stored checkpoint was off-chain; this run rescanned from the start
    shard: int = 0  # which account shard of the protocol instance this run read (0-based) ...
    shards: int = 1  # ... out of how many (1: the instance is not sharded)
    # False: the run scanned no logs (an account shard other than 0 reads the accounts shard 0 discovered);
    # the store then leaves the checkpoint and known accounts as they are.
    advances_checkpoint: bool = True
    # Market-wide inputs of the protocol's rule at the block (JSON-able), keyed by market id ("" for
    # single-market instances): reserves, indexes, oracle answers (see ``risk.reprice``).
    market_state: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)
    head_block: int | None = None  # the chain head seen when the block was pinned (lag = head - block); None if not read
    rpc_errors: dict[str, int] = field(default_factory=dict, compare=False)  # failed RPC attempts of the run, by failure class
