"""Deploy the Synthetix PerpsV2-compatible fixture markets, act on them as traders and keepers would, and seed them.

One ``PerpsV2MarketSettings`` holds every market's parameters; each market is one ``PerpsV2Market`` contract
(standing in for a market proxy and the fragments it routes to) with an owner-set price (18 decimals). The
integer helpers below restate PerpsV2MarketBase's 18-decimal arithmetic (``_fillPrice``, ``_orderFee``,
``_liquidationMargin``, ``_liquidationPremium``) only so that seeding can size positions exactly.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from indexer.devnet.chain import DevChain, Tx
from indexer.devnet.seed import seeded_address

UNIT = 10**18
SECONDS_PER_DAY = 86_400
MAX_UINT256 = 2**256 - 1


def _d(x: str) -> int:
    """An 18-decimal fixed-point number from a decimal string (exact, no float)."""
    neg = x.startswith("-")
    whole, _, frac = x.lstrip("-").partition(".")
    v = int(whole) * UNIT + int((frac + "0" * 18)[:18])
    return -v if neg else v


def bytes32(text: str) -> bytes:
    """A Synthetix key (``"sETHPERP"``) as the right-padded bytes32 the contracts use."""
    raw = text.encode()
    if len(raw) > 32:
        raise ValueError(f"key {text!r} is longer than 32 bytes")
    return raw.ljust(32, b"\0")


# --- SafeDecimalMath / SignedSafeDecimalMath (truncating; toward zero for signed) ----------------------
def mul_dec(x: int, y: int) -> int:
    p = x * y
    q = abs(p) // UNIT
    return q if p >= 0 else -q


def div_dec(x: int, y: int) -> int:
    n = x * UNIT
    q = abs(n) // abs(y)
    return q if (n >= 0) == (y > 0) else -q


def _same_side(a: int, b: int) -> bool:
    return a == 0 or b == 0 or (a > 0) == (b > 0)


# --- specs -------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class PerpsMarketSpec:
    """One market: its keys, starting price and PerpsV2MarketSettings per-market parameters (all 1e18-scaled;
    ``skew_scale`` and ``max_market_value`` in base-asset units x 1e18)."""

    market_key: str  # e.g. "sETHPERP"
    base_asset: str  # ExchangeRates currency key, e.g. "sETH"
    price: int  # starting price, USD x 1e18
    taker_fee: int
    maker_fee: int
    max_leverage: int
    max_market_value: int
    max_funding_velocity: int  # funding-rate change per day at |skew| = skewScale
    skew_scale: int
    liquidation_premium_multiplier: int
    liquidation_buffer_ratio: int
    max_liquidation_delta: int
    max_pd: int


@dataclass(frozen=True, slots=True)
class PerpsGlobalSpec:
    """PerpsV2MarketSettings' global parameters (sUSD x 1e18, ratio 1e18-scaled)."""

    min_keeper_fee: int = _d("2")
    max_keeper_fee: int = _d("20")
    liquidation_fee_ratio: int = _d("0.0035")
    min_initial_margin: int = _d("50")
    keeper_liquidation_fee: int = _d("2")


DEMO_PERPS_GLOBAL = PerpsGlobalSpec()
# Parameters in the range of the Optimism ETH/BTC markets (fees, velocity 9/day, buffer ~1 %, premium
# multiplier 1.5-2, liquidation limits 0.12 % / 0.24 % of the skew scale); max leverage 50.
DEMO_PERPS: tuple[PerpsMarketSpec, ...] = (
    PerpsMarketSpec(
        "sETHPERP", "sETH", _d("3000"),
        taker_fee=_d("0.0006"), maker_fee=_d("0.0002"), max_leverage=_d("50"), max_market_value=_d("100000"),
        max_funding_velocity=_d("9"), skew_scale=_d("1000000"), liquidation_premium_multiplier=_d("1.5"),
        liquidation_buffer_ratio=_d("0.01"), max_liquidation_delta=_d("0.0012"), max_pd=_d("0.0024"),
    ),
    PerpsMarketSpec(
        "sBTCPERP", "sBTC", _d("60000"),
        taker_fee=_d("0.0006"), maker_fee=_d("0.0002"), max_leverage=_d("50"), max_market_value=_d("5000"),
        max_funding_velocity=_d("9"), skew_scale=_d("40000"), liquidation_premium_multiplier=_d("2"),
        liquidation_buffer_ratio=_d("0.0125"), max_liquidation_delta=_d("0.0012"), max_pd=_d("0.0024"),
    ),
)


# --- the arithmetic seeding needs (PerpsV2MarketBase) ---------------------------------------------------
def fill_price(skew: int, size_delta: int, price: int, skew_scale: int) -> int:
    """``_fillPrice``: the average of the premium/discount-adjusted prices before and after the trade."""
    pd_before = div_dec(skew, skew_scale)
    pd_after = div_dec(skew + size_delta, skew_scale)
    before = price + mul_dec(price, pd_before)
    after = price + mul_dec(price, pd_after)
    return div_dec(before + after, UNIT * 2)


def order_fee(skew: int, size_delta: int, fill: int, taker_fee: int, maker_fee: int) -> int:
    """``_orderFee`` with a zero dynamic fee: taker on the skew's side, maker against it, split on a flip."""
    notional_diff = mul_dec(size_delta, fill)
    if _same_side(skew + size_delta, skew):
        rate = taker_fee if _same_side(notional_diff, skew) else maker_fee
        return abs(mul_dec(notional_diff, rate))
    taker_size = abs(div_dec(skew + size_delta, size_delta))
    maker_size = UNIT - taker_size
    return mul_dec(mul_dec(abs(notional_diff), taker_size), taker_fee) + mul_dec(mul_dec(abs(notional_diff), maker_size), maker_fee)


def liquidation_fee(size: int, price: int, g: PerpsGlobalSpec) -> int:
    """``_liquidationFee``: |size|·price·liquidationFeeRatio clamped to [minKeeperFee, maxKeeperFee]."""
    proportional = mul_dec(mul_dec(abs(size), price), g.liquidation_fee_ratio)
    return max(min(proportional, g.max_keeper_fee), g.min_keeper_fee)


def liquidation_margin(size: int, price: int, spec: PerpsMarketSpec, g: PerpsGlobalSpec) -> int:
    """``_liquidationMargin``: buffer + liquidation fee + keeperLiquidationFee."""
    buffer = mul_dec(mul_dec(abs(size), price), spec.liquidation_buffer_ratio)
    return buffer + liquidation_fee(size, price, g) + g.keeper_liquidation_fee


def liquidation_premium(size: int, price: int, spec: PerpsMarketSpec) -> int:
    """``_liquidationPremium``: (|size|/skewScale)·|notional|·multiplier."""
    if size == 0:
        return 0
    notional = abs(mul_dec(size, price))
    return mul_dec(mul_dec(div_dec(abs(size), spec.skew_scale), notional), spec.liquidation_premium_multiplier)


# --- the fixture ----------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class DeployedPerpsMarket:
    spec: PerpsMarketSpec
    address: str  # PerpsV2Market (the "proxy" address: calls and events)


@dataclass(frozen=True, slots=True)
class PerpsPosition:
    """``positions(account)`` as the market returns it."""

    id: int
    last_funding_index: int
    margin: int
    last_price: int
    size: int


@dataclass
class PerpsFixture:
    """The deployed settings and markets, plus trader/keeper actions and views on them."""

    chain: DevChain
    settings: str  # PerpsV2MarketSettings
    owner: str  # owner of settings and markets (sets prices; endorsed for forceLiquidatePosition)
    global_spec: PerpsGlobalSpec
    markets: dict[str, DeployedPerpsMarket] = field(default_factory=dict)  # by market key ("sETHPERP")

    def market(self, market: str) -> DeployedPerpsMarket:
        """A market by its key (``"sETHPERP"``) or base asset (``"sETH"``)."""
        if market in self.markets:
            return self.markets[market]
        for m in self.markets.values():
            if m.spec.base_asset == market:
                return m
        raise KeyError(f"no perps market {market!r}")

    # --- transactions as traders and keepers send them -----------------------------------------------------
    def _tx(self, sender: str, market: str, fn: str, args: tuple[Any, ...], label: str) -> Tx:
        m = self.market(market)
        return Tx(sender, m.address, "PerpsV2Market", fn, args, f"{m.spec.market_key} {label}")

    def transfer_margin_tx(self, user: str, market: str, margin_delta: int) -> Tx:
        """``transferMargin(int marginDelta)``: a deposit (> 0) is credited in full (no sUSD in the fixture)."""
        return self._tx(user, market, "transferMargin", (margin_delta,), "transferMargin")

    def withdraw_all_margin_tx(self, user: str, market: str) -> Tx:
        return self._tx(user, market, "withdrawAllMargin", (), "withdrawAllMargin")

    def modify_position_tx(self, user: str, market: str, size_delta: int, desired_fill_price: int | None = None) -> Tx:
        """``modifyPosition(sizeDelta, desiredFillPrice)``; without a desired fill price any fill is accepted
        (uint256 max for a buy, 0 for a sell)."""
        if desired_fill_price is None:
            desired_fill_price = MAX_UINT256 if size_delta > 0 else 0
        return self._tx(user, market, "modifyPosition", (size_delta, desired_fill_price), "modifyPosition")

    def close_tx(self, user: str, market: str, desired_fill_price: int | None = None, *, size: int | None = None) -> Tx:
        """``closePosition(desiredFillPrice)``; without a desired fill price any fill is accepted (the side is
        that of the closing trade, ``-size``: pass ``size`` or it is read from the chain)."""
        if desired_fill_price is None:
            if size is None:
                size = self.position(user, market).size
            desired_fill_price = MAX_UINT256 if -size > 0 else 0
        return self._tx(user, market, "closePosition", (desired_fill_price,), "closePosition")

    def flag_tx(self, keeper: str, market: str, account: str) -> Tx:
        return self._tx(keeper, market, "flagPosition", (account,), "flagPosition")

    def liquidate_tx(self, keeper: str, market: str, account: str) -> Tx:
        return self._tx(keeper, market, "liquidatePosition", (account,), "liquidatePosition")

    def force_liquidate_tx(self, market: str, account: str, sender: str | None = None) -> Tx:
        """``forceLiquidatePosition`` from an endorsed address (the owner by default)."""
        return self._tx(sender or self.owner, market, "forceLiquidatePosition", (account,), "forceLiquidatePosition")

    def set_price_tx(self, market: str, price: int) -> Tx:
        """Fixture-only ``setAssetPrice`` (USD x 1e18; 0 makes the price invalid)."""
        return self._tx(self.owner, market, "setAssetPrice", (price,), "setAssetPrice")

    def set_price(self, market: str, price: int) -> dict[str, Any]:
        return self.chain.send(self.set_price_tx(market, price))

    def set_price_invalid(self, market: str, invalid: bool = True) -> dict[str, Any]:
        return self.chain.send(self._tx(self.owner, market, "setPriceInvalid", (invalid,), "setPriceInvalid"))

    def settings_tx(self, fn: str, *args: Any) -> Tx:
        """An owner call on PerpsV2MarketSettings (``setMaxFundingVelocity``, ``setSkewScale``, ...)."""
        return Tx(self.owner, self.settings, "PerpsV2MarketSettings", fn, args, f"settings {fn}")

    def do(self, txs: list[Tx] | Tx) -> list[dict[str, Any]]:
        """Send transactions one by one (automine), failing loudly on a revert; return the receipts."""
        return [self.chain.send(tx) for tx in (txs if isinstance(txs, list) else [txs])]

    def try_tx(self, tx: Tx, block: int | str = "latest") -> tuple[bool, str]:
        """Whether ``tx`` would succeed as an eth_call from its sender, and the revert message when not."""
        return self.chain.try_call(tx.contract, tx.to, tx.fn, *tx.args, sender=tx.sender, block=block)

    # --- views ---------------------------------------------------------------------------------------------
    def call(self, market: str, fn: str, *args: Any, block: int | str = "latest") -> tuple[Any, ...]:
        return self.chain.call("PerpsV2Market", self.market(market).address, fn, *args, block=block)

    def setting(self, fn: str, *args: Any, block: int | str = "latest") -> int:
        return int(self.chain.call("PerpsV2MarketSettings", self.settings, fn, *args, block=block)[0])

    def position(self, user: str, market: str, block: int | str = "latest") -> PerpsPosition:
        (p,) = self.call(market, "positions", user, block=block)
        return PerpsPosition(*(int(x) for x in p))

    def price(self, market: str, block: int | str = "latest") -> tuple[int, bool]:
        """``assetPrice()``: (price, invalid)."""
        price, invalid = self.call(market, "assetPrice", block=block)
        return int(price), bool(invalid)

    def skew(self, market: str, block: int | str = "latest") -> int:
        return int(self.call(market, "marketSkew", block=block)[0])

    def remaining_margin(self, user: str, market: str, block: int | str = "latest") -> tuple[int, bool]:
        """``remainingMargin(account)``: (max(0, margin + pnl + funding), invalid)."""
        v, invalid = self.call(market, "remainingMargin", user, block=block)
        return int(v), bool(invalid)

    def accrued_funding(self, user: str, market: str, block: int | str = "latest") -> tuple[int, bool]:
        v, invalid = self.call(market, "accruedFunding", user, block=block)
        return int(v), bool(invalid)

    def profit_loss(self, user: str, market: str, block: int | str = "latest") -> tuple[int, bool]:
        v, invalid = self.call(market, "profitLoss", user, block=block)
        return int(v), bool(invalid)

    def liquidation_price(self, user: str, market: str, block: int | str = "latest") -> tuple[int, bool]:
        """``liquidationPrice(account)``: (the approximate liquidation price, invalid)."""
        v, invalid = self.call(market, "liquidationPrice", user, block=block)
        return int(v), bool(invalid)

    def can_liquidate(self, user: str, market: str, block: int | str = "latest") -> bool:
        return bool(self.call(market, "canLiquidate", user, block=block)[0])

    def is_flagged(self, user: str, market: str, block: int | str = "latest") -> bool:
        return bool(self.call(market, "isFlagged", user, block=block)[0])


# --- deployment ----------------------------------------------------------------------------------------
def _market_setting_txs(fx: PerpsFixture, s: PerpsMarketSpec) -> list[Tx]:
    key = bytes32(s.market_key)
    return [
        fx.settings_tx("setMarket", key, fx.markets[s.market_key].address),
        fx.settings_tx("setTakerFee", key, s.taker_fee),
        fx.settings_tx("setMakerFee", key, s.maker_fee),
        fx.settings_tx("setMaxLeverage", key, s.max_leverage),
        fx.settings_tx("setMaxMarketValue", key, s.max_market_value),
        fx.settings_tx("setMaxFundingVelocity", key, s.max_funding_velocity),
        fx.settings_tx("setSkewScale", key, s.skew_scale),
        fx.settings_tx("setLiquidationPremiumMultiplier", key, s.liquidation_premium_multiplier),
        fx.settings_tx("setLiquidationBufferRatio", key, s.liquidation_buffer_ratio),
        fx.settings_tx("setMaxLiquidationDelta", key, s.max_liquidation_delta),
        fx.settings_tx("setMaxPD", key, s.max_pd),
    ]


def deploy_perps_v2(
    chain: DevChain,
    markets: tuple[PerpsMarketSpec, ...] = DEMO_PERPS,
    *,
    global_spec: PerpsGlobalSpec = DEMO_PERPS_GLOBAL,
) -> PerpsFixture:
    """``PerpsV2MarketSettings(owner)``, one ``PerpsV2Market(owner, settings, marketKey, baseAsset, price)`` per
    spec, then every setting in one block (global ones first: minInitialMargin before minKeeperFee)."""
    owner = chain.deployer
    settings = chain.deploy("PerpsV2MarketSettings", owner)
    fx = PerpsFixture(chain, settings, owner, global_spec)
    for s in markets:
        address = chain.deploy("PerpsV2Market", owner, settings, bytes32(s.market_key), bytes32(s.base_asset), s.price)
        fx.markets[s.market_key] = DeployedPerpsMarket(s, address)
    g = global_spec
    txs = [
        fx.settings_tx("setMinInitialMargin", g.min_initial_margin),
        fx.settings_tx("setMinKeeperFee", g.min_keeper_fee),
        fx.settings_tx("setMaxKeeperFee", g.max_keeper_fee),
        fx.settings_tx("setLiquidationFeeRatio", g.liquidation_fee_ratio),
        fx.settings_tx("setKeeperLiquidationFee", g.keeper_liquidation_fee),
    ]
    for s in markets:
        txs += _market_setting_txs(fx, s)
    chain.send_many(txs)
    return fx


# --- seeding -------------------------------------------------------------------------------------------
# Share of positions placed just above their liquidation margin (remaining liquidatable margin 3-25 % above
# it at the current price); the crowded side of each market, which also pays funding, so time pushes them over.
NEAR_LIQUIDATION_SHARE = 0.15
# Share of longs in each market, alternating by market order: long-skewed (positive funding rate, longs pay)
# in the first, short-skewed (negative rate, shorts pay) in the second, and so on.
LONG_SHARE = (0.68, 0.32)
# Price move (fraction) between opening the near-liquidation positions and opening the others: near positions
# open at a price this much worse for them, then the price returns to the market price in the same block.
NEAR_PRICE_MOVE = 0.02
NOTIONAL_USD_RANGE = (1_000.0, 250_000.0)  # log-uniform
LEVERAGE_RANGE = (1.0, 25.0)
FILL_SLIPPAGE = 0.01  # desired fill price tolerance of the seeded trades


@dataclass(frozen=True, slots=True)
class PerpsSeedResult:
    """What seeding did (one position per account)."""

    accounts: tuple[str, ...]  # every seeded account
    longs: tuple[str, ...]  # accounts holding a long
    shorts: tuple[str, ...]  # accounts holding a short
    near_liquidation: tuple[str, ...]  # accounts placed 3-25 % above the liquidation margin
    market_of: dict[str, str] = field(default_factory=dict)  # account -> market key


@dataclass
class _Book:
    """A market as the seeding block will leave it, trade by trade (skew and price)."""

    spec: PerpsMarketSpec
    skew: int
    price: int


def _to_wei(x: float) -> int:
    return int(round(x * 1e6)) * 10**12


def seed_perps_positions(
    fixture: PerpsFixture,
    count: int,
    rng: random.Random,
    seed: int = 0,
    *,
    first_index: int = 0,
) -> PerpsSeedResult:
    """Open ``count`` positions (one per account ``seeded_address(seed, i)``) across the markets in ONE block.

    The block is, in order: the near-liquidation markets' prices moved ``NEAR_PRICE_MOVE`` against the
    crowded side, the near-liquidation positions (margin sized exactly, with the fill prices and fees of
    this very order, so that at the market price their remaining liquidatable margin is 3-25 % above the
    liquidation margin), the prices back, then the other positions (notional $1k-$250k log-uniform, leverage
    1-25x). Longs are ``LONG_SHARE`` of each market, so skews (and funding rates) have opposite signs.
    """
    chain = fixture.chain
    g = fixture.global_spec
    keys = list(fixture.markets)
    books = {k: _Book(fixture.markets[k].spec, fixture.skew(k), fixture.price(k)[0]) for k in keys}
    near_txs: list[Tx] = []
    other_txs: list[Tx] = []
    plans: list[tuple[str, str, int, bool, float]] = []  # (user, market, size, near, leverage)
    accounts: list[str] = []
    longs: list[str] = []
    shorts: list[str] = []
    near: list[str] = []
    market_of: dict[str, str] = {}
    for n, i in enumerate(range(first_index, first_index + count)):
        user = seeded_address(seed, i)
        k = keys[n % len(keys)] if rng.random() < 0.8 else rng.choice(keys)
        j = keys.index(k)
        long_share = LONG_SHARE[j % len(LONG_SHARE)]
        crowded_long = long_share >= 0.5
        is_near = rng.random() < NEAR_LIQUIDATION_SHARE
        is_long = crowded_long if is_near else rng.random() < long_share
        notional = math.exp(rng.uniform(math.log(NOTIONAL_USD_RANGE[0]), math.log(NOTIONAL_USD_RANGE[1])))
        if is_near:
            notional = max(notional, 5_000.0)
        price = books[k].price
        size = _to_wei(notional * UNIT / price)
        size = size if is_long else -size
        plans.append((user, k, size, is_near, rng.uniform(*LEVERAGE_RANGE)))
        accounts.append(user)
        (longs if is_long else shorts).append(user)
        market_of[user] = k
        if is_near:
            near.append(user)

    def trade(book: _Book, user: str, market: str, size: int, margin_for: Callable[[int, int], int]) -> list[Tx]:
        """transferMargin(margin_for(fill, fee)) then modifyPosition at this point of the block's order."""
        fill = fill_price(book.skew, size, book.price, book.spec.skew_scale)
        fee = order_fee(book.skew, size, fill, book.spec.taker_fee, book.spec.maker_fee)
        margin = margin_for(fill, fee)
        book.skew += size
        desired = int(fill * (1 + FILL_SLIPPAGE)) if size > 0 else int(fill * (1 - FILL_SLIPPAGE))
        return [fixture.transfer_margin_tx(user, market, margin), fixture.modify_position_tx(user, market, size, desired)]

    # Near-liquidation positions first, at a price moved against them.
    near_markets = sorted({k for (_, k, _, nr, _) in plans if nr}, key=keys.index)
    moved: dict[str, int] = {}
    for k in near_markets:
        b = books[k]
        crowded_long = LONG_SHARE[keys.index(k) % len(LONG_SHARE)] >= 0.5
        factor = 1 + NEAR_PRICE_MOVE if crowded_long else 1 - NEAR_PRICE_MOVE
        moved[k] = b.price
        b.price = int(b.price * factor) // 10**12 * 10**12
        near_txs.append(fixture.set_price_tx(k, b.price))
    for user, k, size, is_near, _lev in plans:
        if not is_near:
            continue
        b = books[k]
        market_price = moved[k]
        target = 1 + rng.uniform(0.03, 0.25)

        def near_margin(fill: int, fee: int, *, b: _Book = b, size: int = size, p: int = market_price, target: float = target) -> int:
            # At price p (same block: no funding yet): margin - fee + size·(p - fill) - premium = target · liqMargin.
            pnl = mul_dec(size, p - fill)
            want = int(liquidation_margin(size, p, b.spec, g) * target) + liquidation_premium(size, p, b.spec)
            return max(want - pnl + fee, g.min_initial_margin + fee + UNIT)

        near_txs += trade(b, user, k, size, near_margin)
    for k in near_markets:
        books[k].price = moved[k]
        near_txs.append(fixture.set_price_tx(k, moved[k]))
    for user, k, size, is_near, lev in plans:
        if is_near:
            continue
        b = books[k]

        def normal_margin(fill: int, fee: int, *, size: int = size, lev: float = lev) -> int:
            notional = abs(mul_dec(size, fill))
            return max(_to_wei(notional / UNIT / lev) + fee, g.min_initial_margin * 6 // 5 + fee)

        other_txs += trade(b, user, k, size, normal_margin)
    chain.fund(accounts)
    chain.send_many(near_txs + other_txs)
    return PerpsSeedResult(tuple(accounts), tuple(longs), tuple(shorts), tuple(near), market_of)
