"""Deploy the GMX v2 (gmx-synthetics)-compatible fixture, act on it at given prices, and seed it.

Prices are GMX's: USD per smallest token unit x 1e30 (``usd x 10**(30 - decimals)``), as ``Price.Props``
(min, max); a ``MarketPrices`` tuple is ``(indexTokenPrice, longTokenPrice, shortTokenPrice)``. Every value
in USD is x 1e30 (``FLOAT_PRECISION``); factors are x 1e30 too. DataStore keys are computed here exactly
as gmx-synthetics ``Keys.sol`` does (``keccak256(abi.encode("NAME"))`` and ``keccak256(abi.encode(NAME,
args...))``).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from eth_abi import encode
from eth_utils import keccak, to_checksum_address

from indexer.constants import ZERO_ADDRESS
from indexer.devnet.chain import DevChain, Tx
from indexer.protocols.gmx_v2 import MIN_COLLATERAL_USD, key_of, market_key, position_key
from indexer.devnet.seed import seeded_address

FLOAT_PRECISION = 10**30
FLOAT_PRECISION_SQRT = 10**15

PriceProps = tuple[int, int]  # (min, max)
MarketPrices = tuple[PriceProps, PriceProps, PriceProps]  # (index, long, short)


def factor(x: str) -> int:
    """A 1e30-scaled GMX factor from a decimal string (exact)."""
    return int(Decimal(x) * FLOAT_PRECISION)


# --- DataStore keys (Keys.sol) -------------------------------------------------------------------------
def hash_data(types: list[str], values: list[Any]) -> bytes:
    """``keccak256(abi.encode(values...))``."""
    return keccak(encode(types, values))


POSITION_LIST = key_of("POSITION_LIST")
ACCOUNT_POSITION_LIST = key_of("ACCOUNT_POSITION_LIST")
MARKET_LIST = key_of("MARKET_LIST")
MAX_PNL_FACTOR_FOR_TRADERS = key_of("MAX_PNL_FACTOR_FOR_TRADERS")
POSITION_FEE_RECEIVER_FACTOR = key_of("POSITION_FEE_RECEIVER_FACTOR")
BORROWING_FEE_RECEIVER_FACTOR = key_of("BORROWING_FEE_RECEIVER_FACTOR")


def _k_market_bool(name: str, market: str, flag: bool) -> bytes:
    return hash_data(["bytes32", "address", "bool"], [key_of(name), market, flag])


def _k_market_token_bool(name: str, market: str, token: str, flag: bool) -> bytes:
    return hash_data(["bytes32", "address", "address", "bool"], [key_of(name), market, token, flag])


def account_position_list_key(account: str) -> bytes:
    return hash_data(["bytes32", "address"], [ACCOUNT_POSITION_LIST, account])


def min_collateral_factor_key(market: str) -> bytes:
    return market_key("MIN_COLLATERAL_FACTOR", market)


def min_collateral_factor_for_liquidation_key(market: str) -> bytes:
    return market_key("MIN_COLLATERAL_FACTOR_FOR_LIQUIDATION", market)


def cumulative_borrowing_factor_key(market: str, is_long: bool) -> bytes:
    return _k_market_bool("CUMULATIVE_BORROWING_FACTOR", market, is_long)


def cumulative_borrowing_factor_updated_at_key(market: str, is_long: bool) -> bytes:
    return _k_market_bool("CUMULATIVE_BORROWING_FACTOR_UPDATED_AT", market, is_long)


def borrowing_factor_key(market: str, is_long: bool) -> bytes:
    return _k_market_bool("BORROWING_FACTOR", market, is_long)


def borrowing_exponent_factor_key(market: str, is_long: bool) -> bytes:
    return _k_market_bool("BORROWING_EXPONENT_FACTOR", market, is_long)


def funding_factor_key(market: str) -> bytes:
    return market_key("FUNDING_FACTOR", market)


def funding_exponent_factor_key(market: str) -> bytes:
    return market_key("FUNDING_EXPONENT_FACTOR", market)


def max_funding_factor_per_second_key(market: str) -> bytes:
    return market_key("MAX_FUNDING_FACTOR_PER_SECOND", market)


def funding_updated_at_key(market: str) -> bytes:
    return market_key("FUNDING_UPDATED_AT", market)


def funding_fee_amount_per_size_key(market: str, collateral_token: str, is_long: bool) -> bytes:
    return _k_market_token_bool("FUNDING_FEE_AMOUNT_PER_SIZE", market, collateral_token, is_long)


def claimable_funding_amount_per_size_key(market: str, collateral_token: str, is_long: bool) -> bytes:
    return _k_market_token_bool("CLAIMABLE_FUNDING_AMOUNT_PER_SIZE", market, collateral_token, is_long)


def open_interest_key(market: str, collateral_token: str, is_long: bool) -> bytes:
    return _k_market_token_bool("OPEN_INTEREST", market, collateral_token, is_long)


def open_interest_in_tokens_key(market: str, collateral_token: str, is_long: bool) -> bytes:
    return _k_market_token_bool("OPEN_INTEREST_IN_TOKENS", market, collateral_token, is_long)


def pool_amount_key(market: str, token: str) -> bytes:
    return hash_data(["bytes32", "address", "address"], [key_of("POOL_AMOUNT"), market, token])


def position_fee_factor_key(market: str, balance_was_improved: bool) -> bytes:
    return _k_market_bool("POSITION_FEE_FACTOR", market, balance_was_improved)


def position_impact_factor_key(market: str, is_positive: bool) -> bytes:
    return _k_market_bool("POSITION_IMPACT_FACTOR", market, is_positive)


def position_impact_exponent_factor_key(market: str, is_positive: bool) -> bytes:
    return _k_market_bool("POSITION_IMPACT_EXPONENT_FACTOR", market, is_positive)


def max_position_impact_factor_for_liquidations_key(market: str) -> bytes:
    return market_key("MAX_POSITION_IMPACT_FACTOR_FOR_LIQUIDATIONS", market)


def max_pnl_factor_key(pnl_factor_type: bytes, market: str, is_long: bool) -> bytes:
    return hash_data(["bytes32", "bytes32", "address", "bool"], [key_of("MAX_PNL_FACTOR"), pnl_factor_type, market, is_long])


# --- specs -------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class GmxTokenSpec:
    symbol: str
    decimals: int
    usd: Decimal  # starting reference price in USD per whole token
    spread_bps: int  # min/max = ref x (1 -/+ spread)


@dataclass(frozen=True, slots=True)
class GmxMarketSpec:
    name: str  # "ETH/USD"
    index: str  # token symbols
    long: str
    short: str
    pool_long_usd: int  # pool amounts set in the DataStore (no LP deposits in the fixture), USD
    pool_short_usd: int
    min_collateral_factor: int = factor("0.01")
    min_collateral_factor_for_liquidation: int = factor("0.005")
    position_fee_factor_improved: int = factor("0.0005")
    position_fee_factor_worsened: int = factor("0.0007")
    borrowing_factor: int = factor("0.00000002")  # per second, x reserved/pool ratio
    funding_factor: int = factor("0.00000002")  # per second, x |long OI - short OI| / total OI
    max_funding_factor_per_second: int = factor("0.0000001")
    max_pnl_factor_for_traders: int = factor("0.9")


DEMO_TOKENS: tuple[GmxTokenSpec, ...] = (
    GmxTokenSpec("WETH", 18, Decimal(3000), 5),
    GmxTokenSpec("WBTC", 8, Decimal(60000), 5),
    GmxTokenSpec("USDC", 6, Decimal(1), 0),
)
DEMO_MARKETS: tuple[GmxMarketSpec, ...] = (
    GmxMarketSpec("ETH/USD", "WETH", "WETH", "USDC", pool_long_usd=200_000_000, pool_short_usd=200_000_000),
    GmxMarketSpec("BTC/USD", "WBTC", "WBTC", "USDC", pool_long_usd=300_000_000, pool_short_usd=300_000_000),
)
DEMO_MIN_COLLATERAL_USD = 1 * FLOAT_PRECISION  # $1, as on Arbitrum


def unit_price(usd: Decimal, decimals: int) -> int:
    """GMX price of one smallest unit: ``usd x 10**(30 - decimals)`` (floored)."""
    return int(usd * 10 ** (30 - decimals))


@dataclass(frozen=True, slots=True)
class GmxToken:
    symbol: str
    decimals: int
    address: str
    spec: GmxTokenSpec


@dataclass(frozen=True, slots=True)
class GmxMarket:
    name: str
    market_token: str  # the market's address (a TestERC20 standing in for the GM token)
    index: str  # token symbols
    long: str
    short: str
    spec: GmxMarketSpec

    def props(self, tokens: dict[str, GmxToken]) -> tuple[str, str, str, str]:
        """Market.Props (marketToken, indexToken, longToken, shortToken)."""
        return (self.market_token, tokens[self.index].address, tokens[self.long].address, tokens[self.short].address)


@dataclass
class GmxFixture:
    """The deployed GMX fixture plus actions and views on it."""

    chain: DevChain
    data_store: str  # GmxDataStore
    event_emitter: str  # GmxEventEmitter
    reader: str  # GmxReader
    manager: str  # GmxPositionManager (fixture-only ExchangeRouter stand-in)
    helper: str  # GmxPositionHelper (deployed by the manager; emits the events, updates funding/borrowing)
    tokens: dict[str, GmxToken] = field(default_factory=dict)
    markets: dict[str, GmxMarket] = field(default_factory=dict)  # by name
    # reference prices (USD per whole token) by block they were set at, oldest first
    price_book: list[tuple[int, dict[str, Decimal]]] = field(default_factory=list)

    # --- prices ---------------------------------------------------------------------------------------
    def ref_usd(self, block: int | str = "latest") -> dict[str, Decimal]:
        if block == "latest":
            return dict(self.price_book[-1][1])
        for b, book in reversed(self.price_book):
            if b <= int(block):
                return dict(book)
        return dict(self.price_book[0][1])

    def set_price(self, symbol: str, usd: Decimal | float | int) -> None:
        """New reference price (USD per whole token) from the current block on."""
        book = self.ref_usd()
        book[symbol] = Decimal(str(usd))
        self.price_book.append((self.chain.block_number(), book))

    def token_price(self, symbol: str, block: int | str = "latest", usd: Decimal | None = None) -> PriceProps:
        """Price.Props (min, max) of one smallest unit, x 1e30, with the token's spread."""
        t = self.tokens[symbol]
        ref = self.ref_usd(block)[symbol] if usd is None else usd
        mid = unit_price(ref, t.decimals)
        spread = mid * t.spec.spread_bps // 10_000
        return (mid - spread, mid + spread)

    def market_prices(self, market: str | GmxMarket, block: int | str = "latest", *, index_usd: Decimal | None = None) -> MarketPrices:
        """MarketPrices (index, long, short) from the reference prices at ``block`` (or an index override)."""
        m = self.market(market)
        index = self.token_price(m.index, block, index_usd)
        long = index if m.long == m.index and index_usd is not None else self.token_price(m.long, block)
        return (index, long, self.token_price(m.short, block))

    def market(self, market: str | GmxMarket) -> GmxMarket:
        if isinstance(market, GmxMarket):
            return market
        for m in self.markets.values():
            if market == m.name or market.lower() == m.market_token.lower():
                return m
        raise KeyError(market)

    # --- transactions ---------------------------------------------------------------------------------
    def increase_tx(
        self, account: str, market: str | GmxMarket, collateral: str, is_long: bool, collateral_amount: int, size_delta_usd: int, prices: MarketPrices
    ) -> Tx:
        """``increasePosition`` (fixture-only; sent by the deployer on behalf of ``account``)."""
        m = self.market(market)
        args = (account, m.market_token, self.tokens[collateral].address, is_long, collateral_amount, size_delta_usd, prices)
        return Tx(self.chain.deployer, self.manager, "GmxPositionManager", "increasePosition", args, f"increase {m.name}")

    def decrease_tx(
        self, account: str, market: str | GmxMarket, collateral: str, is_long: bool, collateral_amount: int, size_delta_usd: int, prices: MarketPrices
    ) -> Tx:
        m = self.market(market)
        args = (account, m.market_token, self.tokens[collateral].address, is_long, collateral_amount, size_delta_usd, prices)
        return Tx(self.chain.deployer, self.manager, "GmxPositionManager", "decreasePosition", args, f"decrease {m.name}")

    def liquidate_tx(self, key: bytes, prices: MarketPrices) -> Tx:
        return Tx(self.chain.deployer, self.manager, "GmxPositionManager", "liquidatePosition", (key, prices), "liquidate")

    def do(self, txs: list[Tx] | Tx) -> list[dict[str, Any]]:
        return [self.chain.send(tx) for tx in (txs if isinstance(txs, list) else [txs])]

    def set_uint(self, key: bytes, value: int) -> None:
        self.chain.send(Tx(self.chain.deployer, self.data_store, "GmxDataStore", "setUint", (key, value), "setUint"))

    # --- views --------------------------------------------------------------------------------------
    def get_uint(self, key: bytes, block: int | str = "latest") -> int:
        return int(self.chain.call("GmxDataStore", self.data_store, "getUint", key, block=block)[0])

    def get_position(self, key: bytes, block: int | str = "latest") -> tuple[Any, ...]:
        """Reader.getPosition: Position.Props ((account, market, collateralToken), numbers(10), (isLong,))."""
        return tuple(self.chain.call("GmxReader", self.reader, "getPosition", self.data_store, key, block=block)[0])

    def account_positions(self, account: str, block: int | str = "latest") -> list[tuple[Any, ...]]:
        (out,) = self.chain.call("GmxReader", self.reader, "getAccountPositions", self.data_store, account, 0, 2**256 - 1, block=block)
        return [tuple(p) for p in out]

    def position_info(self, key: bytes, prices: MarketPrices, block: int | str = "latest") -> tuple[Any, ...]:
        """Reader.getPositionInfo(..., sizeDeltaUsd=0, uiFeeReceiver=0, usePositionSizeAsSizeDeltaUsd=true)."""
        (info,) = self.chain.call(
            "GmxReader", self.reader, "getPositionInfo", self.data_store, ZERO_ADDRESS, key, prices, 0, ZERO_ADDRESS, True, block=block
        )
        return tuple(info)

    def is_liquidatable(
        self, key: bytes, prices: MarketPrices, block: int | str = "latest", *, for_liquidation: bool = True
    ) -> tuple[bool, str, tuple[int, int, int]]:
        """Reader.isPositionLiquidatable(shouldValidateMinCollateralUsd=true, forLiquidation): stored funding /
        borrowing state, as the real Reader. Returns (liquidatable, reason, (remaining, minCollateralUsd, forLeverage))."""
        market = self.position_market(key, block)
        ok, reason, info = self.chain.call(
            "GmxReader", self.reader, "isPositionLiquidatable", self.data_store, ZERO_ADDRESS, key, market.props(self.tokens), prices, True,
            for_liquidation, block=block,
        )
        return bool(ok), str(reason), (int(info[0]), int(info[1]), int(info[2]))

    def can_liquidate(self, key: bytes, prices: MarketPrices, block: int | str = "latest") -> tuple[bool, str]:
        """Whether ``liquidatePosition(key, prices)`` would succeed now (funding / borrowing updated first)."""
        return self.chain.try_call("GmxPositionManager", self.manager, "liquidatePosition", key, prices, sender=self.chain.deployer, block=block)

    def position_market(self, key: bytes, block: int | str = "latest") -> GmxMarket:
        return self.market(to_checksum_address(self.get_position(key, block)[0][1]))

    def position_count(self, block: int | str = "latest") -> int:
        return int(self.chain.call("GmxDataStore", self.data_store, "getBytes32Count", POSITION_LIST, block=block)[0])


# --- deployment ------------------------------------------------------------------------------------
def deploy_gmx(
    chain: DevChain,
    tokens: tuple[GmxTokenSpec, ...] = DEMO_TOKENS,
    markets: tuple[GmxMarketSpec, ...] = DEMO_MARKETS,
    *,
    min_collateral_usd: int = DEMO_MIN_COLLATERAL_USD,
) -> GmxFixture:
    """DataStore, EventEmitter, Reader, the position manager (+ its helper), tokens, markets and their config."""
    d = chain.deployer
    data_store = chain.deploy("GmxDataStore")
    emitter = chain.deploy("GmxEventEmitter")
    reader = chain.deploy("GmxReader")
    manager = chain.deploy("GmxPositionManager", data_store, emitter, reader)
    helper = to_checksum_address(chain.call("GmxPositionManager", manager, "helper")[0])
    fx = GmxFixture(chain, data_store, emitter, reader, manager, helper)
    for spec in tokens:
        addr = chain.deploy("TestERC20", spec.symbol, spec.symbol, spec.decimals)
        fx.tokens[spec.symbol] = GmxToken(spec.symbol, spec.decimals, addr, spec)
    txs = [
        Tx(d, data_store, "GmxDataStore", "setController", (manager, True), "controller"),
        Tx(d, data_store, "GmxDataStore", "setController", (helper, True), "controller"),
        Tx(d, emitter, "GmxEventEmitter", "setController", (helper, True), "controller"),
        Tx(d, data_store, "GmxDataStore", "setUint", (MIN_COLLATERAL_USD, min_collateral_usd), "MIN_COLLATERAL_USD"),
    ]
    fx.price_book.append((chain.block_number(), {s.symbol: s.usd for s in tokens}))
    for spec in markets:
        mt = chain.deploy("TestERC20", f"GMX Market {spec.name}", "GM", 18)
        m = GmxMarket(spec.name, mt, spec.index, spec.long, spec.short, spec)
        fx.markets[spec.name] = m
        idx, lng, sht = (fx.tokens[s].address for s in (spec.index, spec.long, spec.short))
        txs.append(Tx(d, helper, "GmxPositionHelper", "createMarket", (mt, idx, lng, sht), f"createMarket {spec.name}"))
        cfg: list[tuple[bytes, int]] = [
            (min_collateral_factor_key(mt), spec.min_collateral_factor),
            (min_collateral_factor_for_liquidation_key(mt), spec.min_collateral_factor_for_liquidation),
            (position_fee_factor_key(mt, True), spec.position_fee_factor_improved),
            (position_fee_factor_key(mt, False), spec.position_fee_factor_worsened),
            (funding_factor_key(mt), spec.funding_factor),
            (funding_exponent_factor_key(mt), FLOAT_PRECISION),
            (max_funding_factor_per_second_key(mt), spec.max_funding_factor_per_second),
            (position_impact_exponent_factor_key(mt, True), FLOAT_PRECISION),
            (position_impact_exponent_factor_key(mt, False), FLOAT_PRECISION),
            (pool_amount_key(mt, lng), _raw(spec.pool_long_usd, fx.tokens[spec.long])),
            (pool_amount_key(mt, sht), _raw(spec.pool_short_usd, fx.tokens[spec.short])),
        ]
        for is_long in (True, False):
            cfg += [
                (borrowing_factor_key(mt, is_long), spec.borrowing_factor),
                (borrowing_exponent_factor_key(mt, is_long), FLOAT_PRECISION),
                (max_pnl_factor_key(MAX_PNL_FACTOR_FOR_TRADERS, mt, is_long), spec.max_pnl_factor_for_traders),
            ]
        txs += [Tx(d, data_store, "GmxDataStore", "setUint", (k, v), "config") for k, v in cfg]
    for tx in txs:
        chain.send(tx)
    return fx


def _raw(usd: float | int, token: GmxToken) -> int:
    """Token units worth ``usd`` at the token's starting price (seeding only)."""
    return int(Decimal(str(usd)) * 10**token.decimals / token.spec.usd)


# --- seeding -------------------------------------------------------------------------------------------
NEAR_LIQUIDATION_SHARE = 0.2
# Share of the open interest (by count) on the long side per market: ETH longs pay funding, BTC shorts pay.
LONG_SHARE = {"ETH/USD": 0.72, "BTC/USD": 0.3}


@dataclass(frozen=True, slots=True)
class GmxSeededPosition:
    account: str
    market: str  # market name
    collateral: str  # token symbol
    is_long: bool
    key: bytes
    size_usd: int  # x 1e30
    collateral_amount: int  # token units sent (before the opening fee)
    near_liquidation: bool


@dataclass(frozen=True, slots=True)
class GmxSeedResult:
    accounts: tuple[str, ...]
    positions: tuple[GmxSeededPosition, ...]

    @property
    def near_liquidation(self) -> tuple[GmxSeededPosition, ...]:
        return tuple(p for p in self.positions if p.near_liquidation)


def seed_gmx_positions(fixture: GmxFixture, count: int, rng: random.Random, seed: int = 0, *, first_index: int = 0) -> GmxSeedResult:
    """``count`` positions (one per account) in one block: long and short in both markets, leverage 1-40x,
    collateral in the long token or USDC, open interest imbalanced (ETH/USD long-heavy, BTC/USD short-heavy)
    so that funding is paid by one side and received by the other. A share is opened at an entry price
    chosen so that at the reference prices its remaining collateral is within -5 %..+25 % of the liquidation
    threshold (a few are already liquidatable)."""
    ref = fixture.ref_usd()
    names = list(fixture.markets)
    txs: list[Tx] = []
    positions: list[GmxSeededPosition] = []
    accounts: list[str] = []
    for i in range(first_index, first_index + count):
        account = seeded_address(seed, i)
        m = fixture.markets[names[i % len(names)]]
        is_long = rng.random() < LONG_SHARE.get(m.name, 0.5)
        collateral = m.long if rng.random() < 0.5 else m.short
        near = rng.random() < NEAR_LIQUIDATION_SHARE
        size_usd_f = math.exp(rng.uniform(math.log(1_000), math.log(500_000)))
        leverage = rng.uniform(15, 40) if near else rng.uniform(1, 40)
        size = int(size_usd_f) * FLOAT_PRECISION
        coll_usd = Decimal(size_usd_f / leverage)
        ctoken = fixture.tokens[collateral]
        coll_amount = int(coll_usd * 10**ctoken.decimals / ref[collateral])
        index_usd = ref[m.index]
        if near:
            spec = m.spec
            threshold = max(Decimal(DEMO_MIN_COLLATERAL_USD), Decimal(size) * spec.min_collateral_factor_for_liquidation / FLOAT_PRECISION)
            target = threshold * Decimal(1 + rng.uniform(-0.05, 0.25))
            fees = Decimal(size) * (spec.position_fee_factor_worsened * 2) / FLOAT_PRECISION  # open + close fee
            coll_usd30 = coll_usd * FLOAT_PRECISION * Decimal(1 - 0.0005)  # collateral min price spread
            pnl = target + fees - coll_usd30  # wanted PnL at the reference price (negative)
            s = Decimal(size)
            entry = s * index_usd / (s + pnl) if is_long else s * index_usd / (s - pnl)
            index_usd = entry
        prices = fixture.market_prices(m, index_usd=index_usd)
        txs.append(fixture.increase_tx(account, m, collateral, is_long, coll_amount, size, prices))
        key = position_key(account, m.market_token, ctoken.address, is_long)
        positions.append(GmxSeededPosition(account, m.name, collateral, is_long, key, size, coll_amount, near))
        accounts.append(account)
    fixture.chain.send_many(txs)
    return GmxSeedResult(tuple(accounts), tuple(positions))
