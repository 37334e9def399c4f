"""Morpho Blue arithmetic, integer for integer as ``Morpho.sol`` and its libraries compute it.

A position lives in one market (``MarketParams``: loan token, collateral token, oracle, IRM, LLTV). The
oracle price is the value of one collateral wei-unit in loan wei-units x 1e36. ``liquidate`` first
accrues interest (``_accrueInterest``) and then requires ``!_isHealthy``; so the verdict is taken on the
totals accrued to the block's timestamp with the IRM's rate at the block (``borrowRateView``): the
``MorphoBalancesLib.expectedMarketBalances`` semantics.

>>> w_taylor_compounded(10**18 // 31_536_000, 31_536_000)  # 100 % a year for one year
1666666666606386666
>>> liquidation_incentive_factor(86 * 10**16)
1043841336116910229
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from indexer.constants import UINT256_MAX, WAD
from indexer.risk.distance import uniform_price_drop

ORACLE_PRICE_SCALE = 10**36
LIQUIDATION_CURSOR = 3 * 10**17
MAX_LIQUIDATION_INCENTIVE_FACTOR = 115 * 10**16
VIRTUAL_SHARES = 10**6
VIRTUAL_ASSETS = 1


# --- MathLib -------------------------------------------------------------------------------------------
def mul_div_down(x: int, y: int, d: int) -> int:
    return x * y // d


def mul_div_up(x: int, y: int, d: int) -> int:
    return (x * y + (d - 1)) // d


def w_mul_down(x: int, y: int) -> int:
    return mul_div_down(x, y, WAD)


def w_div_down(x: int, y: int) -> int:
    return mul_div_down(x, WAD, y)


def w_div_up(x: int, y: int) -> int:
    return mul_div_up(x, WAD, y)


def w_taylor_compounded(x: int, n: int) -> int:
    """e^(x n) - 1 to the third order, as MathLib.wTaylorCompounded."""
    first_term = x * n
    second_term = mul_div_down(first_term, first_term, 2 * WAD)
    third_term = mul_div_down(second_term, first_term, 3 * WAD)
    return first_term + second_term + third_term


# --- SharesMathLib ---------------------------------------------------------------------------------------
def to_shares_down(assets: int, total_assets: int, total_shares: int) -> int:
    return mul_div_down(assets, total_shares + VIRTUAL_SHARES, total_assets + VIRTUAL_ASSETS)


def to_assets_down(shares: int, total_assets: int, total_shares: int) -> int:
    return mul_div_down(shares, total_assets + VIRTUAL_ASSETS, total_shares + VIRTUAL_SHARES)


def to_shares_up(assets: int, total_assets: int, total_shares: int) -> int:
    return mul_div_up(assets, total_shares + VIRTUAL_SHARES, total_assets + VIRTUAL_ASSETS)


def to_assets_up(shares: int, total_assets: int, total_shares: int) -> int:
    return mul_div_up(shares, total_assets + VIRTUAL_ASSETS, total_shares + VIRTUAL_SHARES)


def liquidation_incentive_factor(lltv: int) -> int:
    """``min(MAX_LIQUIDATION_INCENTIVE_FACTOR, WAD.wDivDown(WAD - LIQUIDATION_CURSOR.wMulDown(WAD - lltv)))``."""
    return min(MAX_LIQUIDATION_INCENTIVE_FACTOR, w_div_down(WAD, WAD - w_mul_down(LIQUIDATION_CURSOR, WAD - lltv)))


# --- state -----------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class MorphoMarket:
    """One market at the pinned block: its params, stored totals, oracle price and the IRM's rate."""

    market_id: str  # 0x-prefixed bytes32 hex
    loan_token: str  # address, checksummed
    collateral_token: str  # address, checksummed
    oracle: str  # IOracle
    irm: str  # IIrm (zero address: no interest)
    lltv: int  # WAD
    total_supply_assets: int
    total_supply_shares: int
    total_borrow_assets: int
    total_borrow_shares: int
    last_update: int  # unix seconds
    fee: int  # WAD
    price: int  # oracle price, 1e36 x loan units per collateral unit
    borrow_rate: int  # per second, WAD (``borrowRateView`` at the block); 0 without an IRM
    block_timestamp: int  # timestamp of the pinned block


@dataclass(frozen=True, slots=True)
class MorphoPosition:
    """``position(id, user)``."""

    account: str  # address, checksummed
    supply_shares: int
    borrow_shares: int
    collateral: int  # raw collateral units


def accrued(market: MorphoMarket) -> MorphoMarket:
    """The totals ``_accrueInterest`` leaves at the block's timestamp (``expectedMarketBalances``)."""
    elapsed = market.block_timestamp - market.last_update
    if elapsed == 0 or market.total_borrow_assets == 0 or int(market.irm, 16) == 0:
        return replace(market, last_update=market.block_timestamp)
    interest = w_mul_down(market.total_borrow_assets, w_taylor_compounded(market.borrow_rate, elapsed))
    total_borrow = market.total_borrow_assets + interest
    total_supply = market.total_supply_assets + interest
    supply_shares = market.total_supply_shares
    if market.fee != 0:
        fee_amount = w_mul_down(interest, market.fee)
        supply_shares += to_shares_down(fee_amount, total_supply - fee_amount, supply_shares)
    return replace(
        market,
        total_borrow_assets=total_borrow,
        total_supply_assets=total_supply,
        total_supply_shares=supply_shares,
        last_update=market.block_timestamp,
    )


def borrowed_assets(market: MorphoMarket, position: MorphoPosition) -> int:
    """Debt in loan units, rounded up (``toAssetsUp``) at the market's totals."""
    return to_assets_up(position.borrow_shares, market.total_borrow_assets, market.total_borrow_shares)


def max_borrow(market: MorphoMarket, position: MorphoPosition, price: int | None = None) -> int:
    """``collateral.mulDivDown(price, ORACLE_PRICE_SCALE).wMulDown(lltv)``, loan units."""
    p = market.price if price is None else price
    return w_mul_down(mul_div_down(position.collateral, p, ORACLE_PRICE_SCALE), market.lltv)


def is_healthy(market: MorphoMarket, position: MorphoPosition, price: int | None = None) -> bool:
    """``_isHealthy`` at the market's totals (the stored ones, or ``accrued(market)``)."""
    if position.borrow_shares == 0:
        return True
    return max_borrow(market, position, price) >= borrowed_assets(market, position)


@dataclass(frozen=True, slots=True)
class MorphoVerdict:
    """The verdict ``liquidate`` gives at the block and the values behind it (loan-token units)."""

    liquidatable: bool  # ``liquidate`` passes its health check (accrued totals)
    unhealthy_on_stored_totals: bool  # the same rule on the stored totals (what a naive reader sees)
    borrowed: int  # accrued debt, rounded up
    max_borrow: int  # collateral value x LLTV, rounded down twice
    collateral_value: int  # collateral value in loan units, rounded down
    supplied: int  # supply shares in loan units, rounded down
    health_factor: int  # WAD: max_borrow / borrowed, floored; UINT256_MAX without debt
    liquidation_price: int | None  # highest oracle price (1e36-scaled) at which it is liquidatable; None without debt


def liquidation_price(market: MorphoMarket, position: MorphoPosition) -> int | None:
    """Highest oracle price at which ``position`` is liquidatable (exact integer search), None without debt."""
    if position.borrow_shares == 0:
        return None
    borrowed = borrowed_assets(market, position)
    if position.collateral == 0:
        return UINT256_MAX  # unhealthy at any price
    # maxBorrow is monotone in the price: find the largest p with maxBorrow(p) < borrowed.
    lo, hi = 0, max(1, market.price)
    while max_borrow(market, position, hi) < borrowed:
        lo, hi = hi, hi * 2
    while hi - lo > 1:  # liquidatable at lo (or lo == 0), healthy at hi
        mid = (lo + hi) // 2
        if max_borrow(market, position, mid) < borrowed:
            lo = mid
        else:
            hi = mid
    return lo


def verdict(market: MorphoMarket, position: MorphoPosition) -> MorphoVerdict:
    """The verdict of ``position`` at the pinned block; ``market`` holds the stored totals."""
    now = accrued(market)
    borrowed = borrowed_assets(now, position) if position.borrow_shares else 0
    limit = max_borrow(now, position)
    hf = UINT256_MAX if borrowed == 0 else limit * WAD // borrowed
    return MorphoVerdict(
        liquidatable=not is_healthy(now, position),
        unhealthy_on_stored_totals=not is_healthy(market, position),
        borrowed=borrowed,
        max_borrow=limit,
        collateral_value=mul_div_down(position.collateral, now.price, ORACLE_PRICE_SCALE),
        supplied=to_assets_down(position.supply_shares, now.total_supply_assets, now.total_supply_shares),
        health_factor=hf,
        liquidation_price=liquidation_price(now, position),
    )


def price_drop_to_liquidation(market: MorphoMarket, position: MorphoPosition) -> float | None:
    """Drop (0..1) of the collateral's oracle price at which ``liquidate`` would pass, accrued totals."""
    if position.borrow_shares == 0:
        return None
    now = accrued(market)
    return uniform_price_drop(lambda keep, scale: not is_healthy(now, position, now.price * keep // scale))
