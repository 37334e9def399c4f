"""GMX v2 liquidation rule (``PositionUtils.isPositionLiquidatable``) over values the Reader computes.

USD values are 1e30-scaled (``FLOAT_PRECISION``); prices are per smallest token unit x 1e30, each a
(min, max) pair. The Reader's ``getPositionInfo`` gives the position's PnL (long at the index min price,
short at the max) and its fees with *pending* borrowing and funding, as a keeper's liquidation sees them
after ``updateFundingAndBorrowingState``. The rule:

    remaining = collateralAmount x collateralPrice.min + pnl + impact - totalCostAmount x collateralPrice.min
    liquidatable iff remaining < MIN_COLLATERAL_USD, or remaining <= 0,
                     or remaining < applyFactor(sizeInUsd, minCollateralFactorForLiquidation)

where the close impact counts only when negative, floored at -applyFactor(size, maxPositionImpactFactorForLiquidations).

>>> apply_factor(10**30 * 5000, 5 * 10**27)  # 0.5 % of $5000
25000000000000000000000000000000
"""

from __future__ import annotations

from dataclasses import dataclass

from indexer.constants import UINT256_MAX, WAD

FLOAT_PRECISION = 10**30


def apply_factor(value: int, factor: int) -> int:
    return value * factor // FLOAT_PRECISION


@dataclass(frozen=True, slots=True)
class GmxPosition:
    """A position with the Reader's pending-fee view of it at the pinned block."""

    key: str  # 0x position key
    account: str
    market: str  # market token
    collateral_token: str
    index_token: str
    is_long: bool
    size_in_usd: int  # 1e30
    size_in_tokens: int  # index token units
    collateral_amount: int  # collateral token units
    index_price: tuple[int, int]  # (min, max) per unit x 1e30
    collateral_price: tuple[int, int]  # (min, max)
    collateral_is_index: bool  # the collateral token is the index token (its price moves with the mark)
    base_pnl_usd: int  # getPositionInfo.basePnlUsd (full size, capped as GMX caps it)
    impact_usd: int  # close impact before the liquidation cap (executionPriceResult.totalImpactUsd)
    total_cost_amount: int  # fees.totalCostAmount, collateral units (pending borrowing and funding)
    position_fee_usd: int  # applyFactor(sizeInUsd, fees.positionFeeFactor)
    borrowing_fee_usd: int  # fees.borrowing.borrowingFeeUsd
    funding_fee_amount: int  # fees.funding.fundingFeeAmount, collateral units
    min_collateral_usd: int  # DataStore MIN_COLLATERAL_USD
    min_collateral_factor_for_liquidation: int  # 1e30
    max_position_impact_factor_for_liquidations: int  # 1e30


def liquidation_impact(p: GmxPosition, impact: int | None = None) -> int:
    value = p.impact_usd if impact is None else impact
    if value >= 0:
        return 0
    return max(value, -apply_factor(p.size_in_usd, p.max_position_impact_factor_for_liquidations))


def remaining_collateral_usd(p: GmxPosition) -> int:
    """``info.remainingCollateralUsd`` at the position's prices (the NLV, 1e30 USD)."""
    cmin = p.collateral_price[0]
    return p.collateral_amount * cmin + p.base_pnl_usd + liquidation_impact(p) - p.total_cost_amount * cmin


def threshold_usd(p: GmxPosition) -> int:
    return max(p.min_collateral_usd, apply_factor(p.size_in_usd, p.min_collateral_factor_for_liquidation))


def is_liquidatable_remaining(p: GmxPosition, remaining: int) -> tuple[bool, str]:
    if remaining < p.min_collateral_usd:
        return True, "min collateral"
    if remaining <= 0:
        return True, "< 0"
    if remaining < apply_factor(p.size_in_usd, p.min_collateral_factor_for_liquidation):
        return True, "min collateral for leverage"
    return False, ""


def health_factor(p: GmxPosition, remaining: int) -> int:
    """WAD: remaining / max(MIN_COLLATERAL_USD, size x minCollateralFactorForLiquidation); < 1 iff liquidatable."""
    threshold = threshold_usd(p)
    if threshold <= 0:
        return UINT256_MAX if remaining > 0 else 0
    return max(0, remaining) * WAD // threshold


def remaining_at_index_price(p: GmxPosition, price: int, spread: tuple[int, int] | None = None) -> int:
    """Remaining collateral with the index price moved to ``price`` (min = max = price unless ``spread``
    gives (min - price, max - price)), the collateral repriced too when it is the index token, and the
    fee amounts re-derived from their USD values at the new collateral price as GMX derives them.
    PnL is not capped here (the cap only lowers positive PnL, far from liquidation)."""
    lo, hi = (price, price) if spread is None else (price + spread[0], price + spread[1])
    value = p.size_in_tokens * (lo if p.is_long else hi)
    pnl = value - p.size_in_usd if p.is_long else p.size_in_usd - value
    cmin = lo if p.collateral_is_index else p.collateral_price[0]
    now_min = p.collateral_price[0]
    others = p.total_cost_amount - (p.position_fee_usd // now_min + p.borrowing_fee_usd // now_min + p.funding_fee_amount)
    cost = p.position_fee_usd // cmin + p.borrowing_fee_usd // cmin + p.funding_fee_amount + others if cmin else 0
    return p.collateral_amount * cmin + pnl + liquidation_impact(p) - cost * cmin


def liquidation_price(p: GmxPosition) -> int | None:
    """The index price (per unit x 1e30, no spread) nearest the current one at which the rule holds.

    Longs: the highest price at or below the current mid; shorts: the lowest at or above it. None when
    no price liquidates it (e.g. a long whose collateral alone covers the threshold).
    """

    def under(price: int) -> bool:
        return is_liquidatable_remaining(p, remaining_at_index_price(p, price))[0]

    mid = (p.index_price[0] + p.index_price[1]) // 2
    if under(mid):
        return mid
    if p.is_long:
        if not under(1):
            return None
        lo, hi = 1, mid  # under(lo), not under(hi)
        while hi - lo > 1:
            m = (lo + hi) // 2
            if under(m):
                lo = m
            else:
                hi = m
        return lo
    lo, hi = mid, max(1, mid) * 2  # not under(lo)
    while not under(hi):
        if hi > 2**200:
            return None
        lo, hi = hi, hi * 2
    while hi - lo > 1:
        m = (lo + hi) // 2
        if under(m):
            hi = m
        else:
            lo = m
    return hi
