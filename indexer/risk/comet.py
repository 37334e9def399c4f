"""Compound V3 (Comet) arithmetic, integer for integer as ``Comet.sol`` computes it.

Units: prices are USD x 1e8 (Comet's ``PRICE_SCALE``; feeds must have 8 decimals), indexes are
1e15-scaled (``BASE_INDEX_SCALE``), factors and rates 1e18-scaled (``FACTOR_SCALE``), rates per second.

Two verdicts, because they can differ:
- ``isLiquidatable`` (the view) values the debt with the *stored* ``baseBorrowIndex`` of ``totalsBasic``;
- ``absorb`` first runs ``accrueInternal()`` and then applies the same rule with the index accrued to the
  block's timestamp. "Absorbable now" is what a liquidation bot can actually execute.

>>> present_value_borrow(1_000_123_456_789_012, 5_000_000)
5000617
>>> principal_value_borrow(1_000_123_456_789_012, 5000617)
5000000
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from indexer.constants import UINT256_MAX, WAD
from indexer.risk.distance import uniform_price_drop

BASE_INDEX_SCALE = 10**15
FACTOR_SCALE = 10**18
PRICE_SCALE = 10**8
SECONDS_PER_YEAR = 31_536_000
# Bit of ``pauseFlags`` (CometCore.PAUSE_ABSORB_OFFSET).
PAUSE_ABSORB_OFFSET = 3


# --- CometMath / CometCore helpers ------------------------------------------------------------------
def present_value_supply(index: int, principal: int) -> int:
    return principal * index // BASE_INDEX_SCALE


def present_value_borrow(index: int, principal: int) -> int:
    return principal * index // BASE_INDEX_SCALE


def principal_value_supply(index: int, present: int) -> int:
    return present * BASE_INDEX_SCALE // index


def principal_value_borrow(index: int, present: int) -> int:
    return (present * BASE_INDEX_SCALE + index - 1) // index


def mul_factor(n: int, factor: int) -> int:
    return n * factor // FACTOR_SCALE


def mul_price(n: int, price: int, from_scale: int) -> int:
    return n * price // from_scale


def signed_mul_price(n: int, price: int, from_scale: int) -> int:
    """``n * price / fromScale`` in int256: Solidity division truncates toward zero."""
    product = n * price
    quotient = abs(product) // from_scale
    return quotient if product >= 0 else -quotient


# --- state --------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class CometAsset:
    """One collateral asset as ``getAssetInfo`` returns it, with the price ``getPrice`` gives."""

    offset: int  # bit of ``assetsIn``
    asset: str  # token address, checksummed
    symbol: str  # token symbol
    decimals: int  # token decimals
    price_feed: str  # the feed ``getPrice`` reads
    scale: int  # 10 ** decimals
    borrow_collateral_factor: int  # 1e18-scaled
    liquidate_collateral_factor: int  # 1e18-scaled
    liquidation_factor: int  # 1e18-scaled: share of the collateral value credited on absorb
    supply_cap: int  # raw token units
    price: int  # USD x 1e8 at the pinned block


@dataclass(frozen=True, slots=True)
class CometMarket:
    """Everything the rule needs about one Comet at one block."""

    base_token: str  # base asset address
    base_symbol: str  # base asset symbol
    base_decimals: int  # base asset decimals
    base_scale: int  # 10 ** base decimals
    base_price: int  # USD x 1e8
    base_borrow_min: int  # raw base units
    base_supply_index: int  # stored, 1e15-scaled
    base_borrow_index: int  # stored, 1e15-scaled
    total_supply_base: int  # principal
    total_borrow_base: int  # principal
    last_accrual_time: int  # unix seconds
    pause_flags: int  # bitmap
    supply_rate: int  # per second, 1e18-scaled: getSupplyRate(getUtilization()) at the block (stored utilization)
    borrow_rate: int  # per second, 1e18-scaled: getBorrowRate(getUtilization()) at the block
    assets: tuple[CometAsset, ...]  # by offset
    block_timestamp: int  # timestamp of the pinned block

    @property
    def absorb_paused(self) -> bool:
        return bool((self.pause_flags >> PAUSE_ABSORB_OFFSET) & 1)


@dataclass(frozen=True, slots=True)
class CometUser:
    """``userBasic`` and the collateral balances of one account."""

    account: str  # address, checksummed
    principal: int  # signed: > 0 supplier, < 0 borrower
    assets_in: int  # bitmap of collateral offsets held (with ``_reserved`` bits 16.. for extended lists)
    collateral: dict[int, int]  # offset -> raw balance (``collateralBalanceOf``)


# --- interest ------------------------------------------------------------------------------------------
def accrued_indices(market: CometMarket, now: int | None = None) -> tuple[int, int]:
    """``accruedInterestIndices(now - lastAccrualTime)``: (supply index, borrow index) at ``now``.

    The rates are those of the stored utilization, which is what Comet uses for the whole elapsed time.
    """
    now = market.block_timestamp if now is None else now
    elapsed = now - market.last_accrual_time
    supply_index, borrow_index = market.base_supply_index, market.base_borrow_index
    if elapsed > 0:
        supply_index += mul_factor(supply_index, market.supply_rate * elapsed)
        borrow_index += mul_factor(borrow_index, market.borrow_rate * elapsed)
    return supply_index, borrow_index


def accrued(market: CometMarket) -> CometMarket:
    """The market as ``accrueInternal()`` leaves it at the pinned block's timestamp."""
    supply_index, borrow_index = accrued_indices(market)
    return replace(market, base_supply_index=supply_index, base_borrow_index=borrow_index, last_accrual_time=market.block_timestamp)


# --- the rule ------------------------------------------------------------------------------------------
def base_balance(market: CometMarket, principal: int) -> int:
    """``presentValue(principal)`` with the market's (stored) indexes, signed raw base units."""
    if principal >= 0:
        return present_value_supply(market.base_supply_index, principal)
    return -present_value_borrow(market.base_borrow_index, -principal)


def _held(market: CometMarket, user: CometUser) -> list[tuple[CometAsset, int]]:
    return [(a, user.collateral.get(a.offset, 0)) for a in market.assets if (user.assets_in >> a.offset) & 1]


def _liquidity(market: CometMarket, user: CometUser, factor: str) -> int:
    """Comet's ``liquidity`` (USD x 1e8, signed) with ``factor`` = "liquidate" or "borrow".

    The contract's loop returns early once liquidity >= 0; every term is >= 0, so the sign of the full
    sum is the same answer (the early exit only skips price reads).
    """
    liquidity = signed_mul_price(base_balance(market, user.principal), market.base_price, market.base_scale)
    for asset, balance in _held(market, user):
        value = mul_price(balance, asset.price, asset.scale)
        cf = asset.liquidate_collateral_factor if factor == "liquidate" else asset.borrow_collateral_factor
        liquidity += mul_factor(value, cf)
    return liquidity


def is_liquidatable(market: CometMarket, user: CometUser) -> bool:
    """``isLiquidatable(account)`` at the market's indexes (stored ones: the view; accrued: ``absorb``)."""
    if user.principal >= 0:
        return False
    return _liquidity(market, user, "liquidate") < 0


def is_borrow_collateralized(market: CometMarket, user: CometUser) -> bool:
    if user.principal >= 0:
        return True
    return _liquidity(market, user, "borrow") >= 0


@dataclass(frozen=True, slots=True)
class CometVerdict:
    """Both verdicts and the values behind them (USD x 1e8 unless named otherwise)."""

    view_liquidatable: bool  # what ``isLiquidatable`` returns at the block (stored index)
    absorbable: bool  # whether ``absorb`` of this account succeeds at the block (accrued index, not paused)
    reason: str  # why ``absorbable`` is what it is
    base_balance: int  # signed raw base units, accrued
    debt_value: int  # USD x 1e8 of the accrued debt (``trunc(debt * basePrice / baseScale)``), 0 for suppliers
    supply_value: int  # USD x 1e8 of the accrued base supply, 0 for borrowers
    collateral_value: int  # sum of floor(balance * price / scale)
    liquidation_collateral_value: int  # sum of mulFactor(value, liquidateCollateralFactor)
    borrow_collateral_value: int  # sum of mulFactor(value, borrowCollateralFactor)
    health_factor: int  # WAD: liquidation_collateral_value / debt_value; UINT256_MAX without debt


def verdict(market: CometMarket, user: CometUser) -> CometVerdict:
    """Both verdicts of ``user`` at the pinned block; ``market`` holds the stored indexes."""
    now = accrued(market)
    balance = base_balance(now, user.principal)
    signed_value = signed_mul_price(balance, market.base_price, market.base_scale)
    collateral = liquidation = borrow = 0
    for asset, amount in _held(market, user):
        value = mul_price(amount, asset.price, asset.scale)
        collateral += value
        liquidation += mul_factor(value, asset.liquidate_collateral_factor)
        borrow += mul_factor(value, asset.borrow_collateral_factor)
    debt_value = -signed_value if signed_value < 0 else 0
    view = is_liquidatable(market, user)
    under = is_liquidatable(now, user)
    if user.principal >= 0:
        absorbable, reason = False, "no debt"
    elif not under:
        absorbable, reason = False, "collateralized"
    elif market.absorb_paused:
        absorbable, reason = False, "absorb paused"
    else:
        absorbable, reason = True, "absorbable"
    hf = UINT256_MAX if debt_value == 0 else liquidation * WAD // debt_value
    return CometVerdict(
        view_liquidatable=view,
        absorbable=absorbable,
        reason=reason,
        base_balance=balance,
        debt_value=debt_value,
        supply_value=signed_value if signed_value > 0 else 0,
        collateral_value=collateral,
        liquidation_collateral_value=liquidation,
        borrow_collateral_value=borrow,
        health_factor=hf,
    )


def with_collateral_prices_scaled(market: CometMarket, keep: int, scale: int) -> CometMarket:
    """Every collateral price multiplied by ``keep / scale`` (floored); the base price unchanged."""
    return replace(market, assets=tuple(replace(a, price=a.price * keep // scale) for a in market.assets))


def price_drop_to_liquidation(market: CometMarket, user: CometUser) -> float | None:
    """Uniform collateral price drop (0..1) at which ``absorb`` would succeed (accrued index)."""
    if user.principal >= 0 or not _held(market, user):
        return None
    now = accrued(market)
    return uniform_price_drop(lambda keep, scale: is_liquidatable(with_collateral_prices_scaled(now, keep, scale), user))


def liquidation_price(market: CometMarket, user: CometUser, offset: int) -> int | None:
    """The highest price (USD x 1e8) of collateral ``offset`` at which the account is absorbable, others fixed.

    Exact integer search over the rule with the accrued index; None when even a price of 0 leaves it
    collateralized or the account has no debt or does not hold the asset.
    """
    now = accrued(market)
    if user.principal >= 0 or not (user.assets_in >> offset) & 1 or not user.collateral.get(offset):
        return None

    def under(price: int) -> bool:
        shocked = replace(now, assets=tuple(replace(a, price=price) if a.offset == offset else a for a in now.assets))
        return is_liquidatable(shocked, user)

    if not under(0):
        return None
    lo, hi = 0, max(1, next(a.price for a in now.assets if a.offset == offset))
    while under(hi):
        lo, hi = hi, hi * 2
    while hi - lo > 1:  # under(lo), not under(hi)
        mid = (lo + hi) // 2
        if under(mid):
            lo = mid
        else:
            hi = mid
    return lo


def absorb_credit(market: CometMarket, user: CometUser) -> int:
    """Raw base units ``absorb`` credits the account (before flooring the new balance at 0), accrued."""
    value = sum(mul_factor(mul_price(amount, a.price, a.scale), a.liquidation_factor) for a, amount in _held(market, user))
    return value * market.base_scale // market.base_price  # divPrice
