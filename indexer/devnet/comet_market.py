"""Deploy the Compound V3 (Comet)-compatible fixture market, act on it as users would, and seed it.

Comet's integer arithmetic (presentValue, mulPrice, mulFactor, the scales) comes from ``indexer.risk.comet``.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from eth_utils import keccak

from indexer.constants import MULTICALL3_ADDRESS, ZERO_ADDRESS
from indexer.devnet.chain import DevChain, Tx, artifact
from indexer.devnet.seed import seeded_address
from indexer.risk.comet import FACTOR_SCALE, PRICE_SCALE, mul_factor, mul_price, present_value_borrow, present_value_supply

PRICE_FEED_DECIMALS = 8  # Comet requires 8-decimal feeds (PRICE_SCALE)


def _f(x: str) -> int:
    """A 1e18-scaled factor from a decimal string (exact, no float)."""
    whole, _, frac = x.partition(".")
    return int(whole) * FACTOR_SCALE + int((frac + "0" * 18)[:18])


@dataclass(frozen=True, slots=True)
class CometAssetSpec:
    """A collateral asset to list: token, starting feed price and Comet risk parameters."""

    symbol: str  # token symbol
    decimals: int  # token decimals
    price: int  # starting feed answer, USD x 1e8
    borrow_collateral_factor: int  # 1e18-scaled (Comet keeps 4 decimals)
    liquidate_collateral_factor: int  # 1e18-scaled, > borrow_collateral_factor, <= 1e18
    liquidation_factor: int  # 1e18-scaled share of the collateral value credited on absorb
    supply_cap: int  # raw token units (Comet keeps whole tokens)


@dataclass(frozen=True, slots=True)
class CometBaseSpec:
    """The base (borrowable) asset."""

    symbol: str = "USDC"
    decimals: int = 6
    price: int = 1 * 10**8  # feed answer, USD x 1e8


@dataclass(frozen=True, slots=True)
class CometRateSpec:
    """Comet's kinked rate model, per year and 1e18-scaled as in its Configuration (made per second by
    ``/ indexer.risk.comet.SECONDS_PER_YEAR`` at construction), plus the other market-wide settings."""

    supply_kink: int = _f("0.9")
    supply_slope_low: int = _f("0.054")
    supply_slope_high: int = _f("3.4")
    supply_base: int = 0
    borrow_kink: int = _f("0.9")
    borrow_slope_low: int = _f("0.06")
    borrow_slope_high: int = _f("4.0")
    borrow_base: int = _f("0.015")
    store_front_price_factor: int = _f("0.6")
    tracking_index_scale: int = 10**15
    base_tracking_supply_speed: int = 0
    base_tracking_borrow_speed: int = 0
    base_min_for_rewards: int = 10**12  # base units (1M USDC)
    base_borrow_min: int = 100 * 10**6  # base units (100 USDC)
    target_reserves: int = 5_000_000 * 10**6  # base units


BASE_SPEC = CometBaseSpec()
DEMO_COMET_RATES = CometRateSpec()
# WETH and WBTC have a borrow CF close to their liquidate CF, so that accounts borrowing near their limit
# sit within 1-3 % of liquidation; LINK has a wide gap, as most real Comet collateral does.
DEMO_COMET_COLLATERAL: tuple[CometAssetSpec, ...] = (
    CometAssetSpec("WETH", 18, 3000 * 10**8, _f("0.88"), _f("0.89"), _f("0.95"), 500_000 * 10**18),
    CometAssetSpec("WBTC", 8, 60000 * 10**8, _f("0.80"), _f("0.815"), _f("0.93"), 20_000 * 10**8),
    CometAssetSpec("LINK", 18, 15 * 10**8, _f("0.73"), _f("0.79"), _f("0.92"), 50_000_000 * 10**18),
)


@dataclass(frozen=True, slots=True)
class DeployedCometAsset:
    """A token listed on the market (collateral or base) and its price feed."""

    symbol: str  # token symbol
    decimals: int  # token decimals
    token: str  # TestERC20
    feed: str  # MockAggregatorV3 (8 decimals)
    offset: int | None  # collateral asset offset (bit of assetsIn); None for the base token
    spec: CometAssetSpec | None  # listing parameters; None for the base token


@dataclass(frozen=True, slots=True)
class CometTotals:
    """``totalsBasic()`` as Comet returns it."""

    base_supply_index: int
    base_borrow_index: int
    tracking_supply_index: int
    tracking_borrow_index: int
    total_supply_base: int
    total_borrow_base: int
    last_accrual_time: int
    pause_flags: int


@dataclass
class CometFixture:
    """The deployed market plus user actions and views on it."""

    chain: DevChain
    comet: str
    governor: str
    base: DeployedCometAsset
    rates: CometRateSpec
    assets: dict[str, DeployedCometAsset] = field(default_factory=dict)  # collateral, by symbol

    def asset(self, symbol: str) -> DeployedCometAsset:
        """A collateral asset, or the base token under its symbol."""
        return self.base if symbol == self.base.symbol else self.assets[symbol]

    # --- transactions as users send them --------------------------------------------------------
    def _tx(self, sender: str, fn: str, args: tuple[Any, ...], label: str) -> Tx:
        return Tx(sender, self.comet, "Comet", fn, args, label)

    def _mint_approve_supply(self, user: str, a: DeployedCometAsset, amount: int) -> list[Tx]:
        return [
            Tx(user, a.token, "TestERC20", "mint", (user, amount), f"mint {a.symbol}"),
            Tx(user, a.token, "TestERC20", "approve", (self.comet, amount), f"approve {a.symbol}"),
            self._tx(user, "supply", (a.token, amount), f"supply {a.symbol}"),
        ]

    def supply_collateral_txs(self, user: str, symbol: str, amount: int) -> list[Tx]:
        """Mint, approve and ``supply(asset, amount)`` a collateral asset."""
        return self._mint_approve_supply(user, self.assets[symbol], amount)

    def supply_base_txs(self, user: str, amount: int) -> list[Tx]:
        """Mint, approve and ``supply(baseToken, amount)``: repays debt first, then supplies."""
        return self._mint_approve_supply(user, self.base, amount)

    def borrow_tx(self, user: str, amount: int) -> Tx:
        """``withdraw(baseToken, amount)``: withdraws the supply balance first, then borrows."""
        return self._tx(user, "withdraw", (self.base.token, amount), "borrow (withdraw base)")

    def withdraw_collateral_tx(self, user: str, symbol: str, amount: int) -> Tx:
        return self._tx(user, "withdraw", (self.assets[symbol].token, amount), f"withdraw {symbol}")

    def transfer_collateral_tx(self, sender: str, to: str, symbol: str, amount: int) -> Tx:
        """``transferAsset(dst, asset, amount)`` of collateral (emits TransferCollateral)."""
        return self._tx(sender, "transferAsset", (to, self.assets[symbol].token, amount), f"transfer {symbol}")

    def transfer_base_tx(self, sender: str, to: str, amount: int) -> Tx:
        """``transferAsset(dst, baseToken, amount)`` (emits Transfer; may borrow)."""
        return self._tx(sender, "transferAsset", (to, self.base.token, amount), "transfer base")

    def accrue_tx(self, sender: str, account: str) -> Tx:
        return self._tx(sender, "accrueAccount", (account,), "accrueAccount")

    def absorb_tx(self, absorber: str, users: list[str]) -> Tx:
        return self._tx(absorber, "absorb", (absorber, list(users)), "absorb")

    def pause_tx(self, *, supply: bool = False, transfer: bool = False, withdraw: bool = False, absorb: bool = False, buy: bool = False) -> Tx:
        return self._tx(self.governor, "pause", (supply, transfer, withdraw, absorb, buy), "pause")

    def do(self, txs: list[Tx] | Tx) -> list[dict[str, Any]]:
        """Send transactions one by one (automine), failing loudly on a revert; return the receipts."""
        return [self.chain.send(tx) for tx in (txs if isinstance(txs, list) else [txs])]

    def set_price(self, symbol: str, price: int) -> None:
        """New answer (USD x 1e8) on the feed of a collateral asset or of the base token ("USDC")."""
        a = self.asset(symbol)
        self.chain.send(Tx(self.chain.deployer, a.feed, "MockAggregatorV3", "updateAnswer", (price,), f"price {symbol}"))

    # --- views ------------------------------------------------------------------------------------
    def call(self, fn: str, *args: Any, block: int | str = "latest") -> tuple[Any, ...]:
        return self.chain.call("Comet", self.comet, fn, *args, block=block)

    def price(self, symbol: str, block: int | str = "latest") -> int:
        """``getPrice(feed)`` of a collateral asset or of the base token."""
        return int(self.call("getPrice", self.asset(symbol).feed, block=block)[0])

    def user_basic(self, user: str, block: int | str = "latest") -> tuple[int, int, int, int, int]:
        """(principal, baseTrackingIndex, baseTrackingAccrued, assetsIn, _reserved)."""
        p, ti, ta, ai, r = self.call("userBasic", user, block=block)
        return int(p), int(ti), int(ta), int(ai), int(r)

    def collateral_balance(self, user: str, symbol: str, block: int | str = "latest") -> int:
        return int(self.call("collateralBalanceOf", user, self.assets[symbol].token, block=block)[0])

    def borrow_balance(self, user: str, block: int | str = "latest") -> int:
        return int(self.call("borrowBalanceOf", user, block=block)[0])

    def balance(self, user: str, block: int | str = "latest") -> int:
        return int(self.call("balanceOf", user, block=block)[0])

    def is_liquidatable(self, user: str, block: int | str = "latest") -> bool:
        """The ``isLiquidatable`` view (stored borrow index)."""
        return bool(self.call("isLiquidatable", user, block=block)[0])

    def is_borrow_collateralized(self, user: str, block: int | str = "latest") -> bool:
        return bool(self.call("isBorrowCollateralized", user, block=block)[0])

    def can_absorb(self, absorber: str, users: list[str], block: int | str = "latest") -> tuple[bool, str]:
        """Whether ``absorb(absorber, users)`` sent by ``absorber`` would succeed (accrues first), and
        the revert message (custom errors named, e.g. ``NotLiquidatable()``) when it would not."""
        ok, message = self.chain.try_call("Comet", self.comet, "absorb", absorber, list(users), sender=absorber, block=block)
        return (True, "") if ok else (False, name_custom_error(message))

    def try_tx(self, tx: Tx, block: int | str = "latest") -> tuple[bool, str]:
        """Whether ``tx`` would succeed as an eth_call from its sender, and the named revert when not."""
        ok, message = self.chain.try_call(tx.contract, tx.to, tx.fn, *tx.args, sender=tx.sender, block=block)
        return (True, "") if ok else (False, name_custom_error(message))

    def totals(self, block: int | str = "latest") -> CometTotals:
        (t,) = self.call("totalsBasic", block=block)
        return CometTotals(*(int(x) for x in t))

    def asset_info(self, symbol: str, block: int | str = "latest") -> tuple[Any, ...]:
        """``getAssetInfoByAddress``: (offset, asset, priceFeed, scale, borrowCF, liquidateCF, liquidationFactor, supplyCap)."""
        (info,) = self.call("getAssetInfoByAddress", self.assets[symbol].token, block=block)
        return tuple(info)


@cache
def _error_selectors() -> dict[str, str]:
    """0x-selector -> ``Name()`` for the Comet fixture's custom errors."""
    out = {}
    for e in artifact("Comet")["abi"]:
        if e.get("type") == "error":
            sig = f"{e['name']}({','.join(p['type'] for p in e['inputs'])})"
            out["0x" + keccak(text=sig)[:4].hex()] = sig
    return out


def name_custom_error(message: str) -> str:
    """Prefix the custom error's name (``NotLiquidatable()``) when the node's message carries its selector."""
    low = message.lower()
    for selector, sig in _error_selectors().items():
        if selector in low:
            return f"{sig} {message}"
    return message


# --- deployment ----------------------------------------------------------------------------------
def deploy_comet_market(
    chain: DevChain,
    collateral: tuple[CometAssetSpec, ...] = DEMO_COMET_COLLATERAL,
    *,
    base: CometBaseSpec = BASE_SPEC,
    rates: CometRateSpec = DEMO_COMET_RATES,
    name: str = "Compound USDC",
    symbol: str = "cUSDCv3",
) -> CometFixture:
    """Multicall3 at its canonical address, tokens, 8-decimal feeds, then Comet with its Configuration."""
    chain.set_code(MULTICALL3_ADDRESS, artifact("Multicall3")["deployedBytecode"])
    d = chain.deployer
    base_token = chain.deploy("TestERC20", base.symbol, base.symbol, base.decimals)
    base_feed = chain.deploy("MockAggregatorV3", PRICE_FEED_DECIMALS, f"{base.symbol} / USD", base.price)
    listed: list[tuple[CometAssetSpec, str, str]] = []
    for spec in collateral:
        token = chain.deploy("TestERC20", spec.symbol, spec.symbol, spec.decimals)
        feed = chain.deploy("MockAggregatorV3", PRICE_FEED_DECIMALS, f"{spec.symbol} / USD", spec.price)
        listed.append((spec, token, feed))
    asset_configs = [
        (token, feed, s.decimals, s.borrow_collateral_factor, s.liquidate_collateral_factor, s.liquidation_factor, s.supply_cap)
        for s, token, feed in listed
    ]
    config = (
        d,  # governor
        d,  # pauseGuardian
        base_token,
        base_feed,
        ZERO_ADDRESS,  # extensionDelegate (the fixture has the CometExt functions built in)
        rates.supply_kink,
        rates.supply_slope_low,
        rates.supply_slope_high,
        rates.supply_base,
        rates.borrow_kink,
        rates.borrow_slope_low,
        rates.borrow_slope_high,
        rates.borrow_base,
        rates.store_front_price_factor,
        rates.tracking_index_scale,
        rates.base_tracking_supply_speed,
        rates.base_tracking_borrow_speed,
        rates.base_min_for_rewards,
        rates.base_borrow_min,
        rates.target_reserves,
        asset_configs,
    )
    ext = (name.encode().ljust(32, b"\0"), symbol.encode().ljust(32, b"\0"))
    comet = chain.deploy("Comet", config, ext)
    fixture = CometFixture(chain, comet, d, DeployedCometAsset(base.symbol, base.decimals, base_token, base_feed, None, None), rates)
    for offset, (spec, token, feed) in enumerate(listed):
        fixture.assets[spec.symbol] = DeployedCometAsset(spec.symbol, spec.decimals, token, feed, offset, spec)
    return fixture


# --- seeding -------------------------------------------------------------------------------------
# Shares of the seeded accounts: base-only lenders, collateral without debt, collateral partly moved to a
# fresh address by transferAsset, and (of the borrowers) positions within 1-3 % of the liquidation limit.
LENDER_SHARE = 0.15
NO_BORROW_SHARE = 0.08
TRANSFER_SHARE = 0.06
NEAR_LIMIT_SHARE = 0.3
# Collateral whose borrow CF is at least this share of its liquidate CF can hold a near-limit position.
NEAR_LIMIT_MIN_CF_RATIO = 0.97
# The liquidity provider tops the market up so that utilization ends at about this share.
TARGET_UTILIZATION = 0.8


@dataclass(frozen=True, slots=True)
class CometSeedResult:
    """What seeding did."""

    accounts: tuple[str, ...]  # every seeded account (borrowers, lenders, collateral-only, transfer receivers)
    borrowers: tuple[str, ...]  # accounts with debt
    near_limit: tuple[str, ...] = ()  # borrowers placed within 1-3 % of the liquidate-CF limit
    liquidity_provider: str = ""  # the account that supplied base to reach the target utilization


def _raw(usd: float, price: int, decimals: int) -> int:
    """Token units worth ``usd`` at a USD x 1e8 price (rounded down; seeding only)."""
    return int(usd * PRICE_SCALE * 10**decimals) // price


def _collateral_usd(fixture: CometFixture, held: dict[str, int], prices: dict[str, int], *, liquidate: bool) -> int:
    """Sum of ``mulFactor(mulPrice(balance, price, scale), CF)`` (USD x 1e8), as Comet adds up liquidity."""
    total = 0
    for sym, amount in held.items():
        a = fixture.assets[sym]
        assert a.spec is not None
        factor = a.spec.liquidate_collateral_factor if liquidate else a.spec.borrow_collateral_factor
        total += mul_factor(mul_price(amount, prices[sym], 10**a.decimals), factor)
    return total


def seed_comet_accounts(
    fixture: CometFixture,
    count: int,
    rng: random.Random,
    seed: int = 0,
    *,
    first_index: int = 0,
    liquidity_provider: str | None = None,
) -> CometSeedResult:
    """Create ``count`` accounts with varied positions in one block (``chain.send_many``).

    Borrows stay within the borrow CF (as Comet requires), most at 20-99 % of the capacity; a share sits
    within 1-3 % of the liquidate-CF limit. A liquidity provider supplies base first so that utilization
    ends near ``TARGET_UTILIZATION``.
    """
    chain = fixture.chain
    symbols = list(fixture.assets)
    near_ok = [
        s
        for s in symbols
        if (spec := fixture.assets[s].spec) is not None and spec.borrow_collateral_factor >= NEAR_LIMIT_MIN_CF_RATIO * spec.liquidate_collateral_factor
    ]
    prices = {s: fixture.price(s) for s in [*symbols, fixture.base.symbol]}
    base_price, base_dec = prices[fixture.base.symbol], fixture.base.decimals
    base_scale = 10**base_dec
    borrow_min = fixture.rates.base_borrow_min
    accounts, borrowers, near_limit = [], [], []
    account_txs: list[Tx] = []
    borrowed = supplied = 0
    for i in range(first_index, first_index + count):
        user = seeded_address(seed, i)
        accounts.append(user)
        size_usd = math.exp(rng.uniform(math.log(2_000), math.log(2_000_000)))
        if rng.random() < LENDER_SHARE:
            amount = _raw(size_usd, base_price, base_dec)
            account_txs += fixture.supply_base_txs(user, amount)
            supplied += amount
            continue
        near = bool(near_ok) and rng.random() < NEAR_LIMIT_SHARE
        pool = near_ok if near else symbols
        colls = rng.sample(pool, k=min(len(pool), rng.choice((1, 1, 2, 3))))
        weights = [rng.random() + 0.2 for _ in colls]
        held: dict[str, int] = {}
        for sym, w in zip(colls, weights, strict=True):
            amount = _raw(size_usd * w / sum(weights), prices[sym], fixture.assets[sym].decimals)
            account_txs += fixture.supply_collateral_txs(user, sym, amount)
            held[sym] = amount
        if not near and rng.random() < TRANSFER_SHARE / (1 - LENDER_SHARE):
            # A third of the first collateral goes to a fresh address that never calls Comet itself.
            receiver = seeded_address(seed, 10_000_000 + i)
            accounts.append(receiver)
            moved = held[colls[0]] // 3
            account_txs.append(fixture.transfer_collateral_tx(user, receiver, colls[0], moved))
            held[colls[0]] -= moved
        if not near and rng.random() < NO_BORROW_SHARE / (1 - LENDER_SHARE):
            continue
        # Comet's capacities in USD x 1e8 (mulPrice then mulFactor per asset), then in base units.
        capacity = _collateral_usd(fixture, held, prices, liquidate=False) * base_scale // base_price
        if near:
            limit = _collateral_usd(fixture, held, prices, liquidate=True) * base_scale // base_price
            debt = min(int(limit * (1 - rng.uniform(0.01, 0.03))), int(capacity * 0.999))
        else:
            debt = int(capacity * rng.uniform(0.2, 0.99))
        if debt < borrow_min:
            continue
        account_txs.append(fixture.borrow_tx(user, debt))
        borrowed += debt
        borrowers.append(user)
        if near:
            near_limit.append(user)
    # The liquidity provider supplies first, enough for every borrow and to end near the target utilization.
    provider = liquidity_provider or seeded_address(seed, -1)
    totals = fixture.totals()
    total_supply = present_value_supply(totals.base_supply_index, totals.total_supply_base) + supplied
    total_borrow = present_value_borrow(totals.base_borrow_index, totals.total_borrow_base) + borrowed
    top_up = max(0, math.ceil(total_borrow / TARGET_UTILIZATION) - total_supply)
    txs = (fixture.supply_base_txs(provider, top_up) if top_up else []) + account_txs
    chain.fund([provider, *accounts])
    chain.send_many(txs)
    return CometSeedResult(tuple(accounts), tuple(borrowers), tuple(near_limit), provider)

