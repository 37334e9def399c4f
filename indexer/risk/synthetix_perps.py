"""Synthetix PerpsV2 arithmetic, as ``PerpsV2MarketBase`` computes it: 18-decimal fixed point throughout.

``multiplyDecimal``/``divideDecimal`` truncate (toward zero for signed values, as Solidity's ``int``
division). Funding is a sequence of cumulative funding-per-unit entries plus the unrecorded part since
``fundingLastRecomputed``, whose rate moves with the skew (the funding velocity). A position is
liquidatable when ``max(0, margin + pnl + funding - liquidationPremium) <= liquidationMargin`` (note
``<=``), and ``canLiquidate`` also needs a valid price.

>>> multiply_decimal(-3, 5 * 10**17)  # -1.5 wei truncates toward zero
-1
"""

from __future__ import annotations

from dataclasses import dataclass

from indexer.constants import UINT256_MAX

UNIT = 10**18
SECONDS_PER_DAY = 86_400


def multiply_decimal(x: int, y: int) -> int:
    product = x * y
    q = abs(product) // UNIT
    return q if product >= 0 else -q


def divide_decimal(x: int, y: int) -> int:
    num = x * UNIT
    q = abs(num) // abs(y)
    return q if (num >= 0) == (y > 0) else -q


@dataclass(frozen=True, slots=True)
class PerpsMarket:
    """One PerpsV2 market (its proxy) and its settings at the pinned block."""

    address: str  # market proxy
    market_key: bytes  # bytes32, e.g. b"sETHPERP"
    base_asset: str  # e.g. "sETH"
    price: int  # assetPrice(), 18 decimals
    price_invalid: bool  # assetPrice()'s invalid flag
    skew: int  # marketSkew (signed, base units x 1e18)
    funding_last_recomputed: int  # unix seconds
    funding_rate_last_recomputed: int  # signed, per day, 18 decimals
    latest_funding_entry: int  # fundingSequence[fundingSequenceLength - 1]
    skew_scale: int
    max_funding_velocity: int
    liquidation_buffer_ratio: int
    liquidation_premium_multiplier: int
    liquidation_fee_ratio: int
    min_keeper_fee: int
    max_keeper_fee: int
    keeper_liquidation_fee: int
    block_timestamp: int  # timestamp of the pinned block


@dataclass(frozen=True, slots=True)
class PerpsPosition:
    """``positions(account)`` and the funding-sequence entry at its ``lastFundingIndex``."""

    account: str
    id: int
    last_funding_index: int
    margin: int  # sUSD, 18 decimals
    last_price: int
    size: int  # signed: > 0 long, < 0 short
    funding_entry: int  # fundingSequence[lastFundingIndex]


# --- funding ----------------------------------------------------------------------------------------------
def proportional_skew(m: PerpsMarket) -> int:
    p = divide_decimal(m.skew, m.skew_scale)
    return min(max(-UNIT, p), UNIT)


def proportional_elapsed(m: PerpsMarket) -> int:
    return divide_decimal(m.block_timestamp - m.funding_last_recomputed, SECONDS_PER_DAY)


def current_funding_velocity(m: PerpsMarket) -> int:
    return multiply_decimal(proportional_skew(m), m.max_funding_velocity)


def current_funding_rate(m: PerpsMarket) -> int:
    return m.funding_rate_last_recomputed + multiply_decimal(current_funding_velocity(m), proportional_elapsed(m))


def unrecorded_funding(m: PerpsMarket, price: int) -> int:
    avg = -divide_decimal(m.funding_rate_last_recomputed + current_funding_rate(m), 2 * UNIT)
    return multiply_decimal(multiply_decimal(avg, proportional_elapsed(m)), price)


def net_funding_per_unit(m: PerpsMarket, p: PerpsPosition, price: int) -> int:
    return m.latest_funding_entry + unrecorded_funding(m, price) - p.funding_entry


def accrued_funding(m: PerpsMarket, p: PerpsPosition, price: int) -> int:
    if p.last_funding_index == 0:
        return 0
    return multiply_decimal(p.size, net_funding_per_unit(m, p, price))


# --- margin and the rule ----------------------------------------------------------------------------------
def profit_loss(p: PerpsPosition, price: int) -> int:
    return multiply_decimal(p.size, price - p.last_price)


def notional_value(size: int, price: int) -> int:
    return multiply_decimal(size, price)


def margin_plus_profit_funding(m: PerpsMarket, p: PerpsPosition, price: int) -> int:
    return p.margin + profit_loss(p, price) + accrued_funding(m, p, price)


def remaining_margin(m: PerpsMarket, p: PerpsPosition, price: int) -> int:
    return max(0, margin_plus_profit_funding(m, p, price))


def liquidation_fee(m: PerpsMarket, size: int, price: int) -> int:
    proportional = multiply_decimal(multiply_decimal(abs(size), price), m.liquidation_fee_ratio)
    capped = min(proportional, m.max_keeper_fee)
    return max(capped, m.min_keeper_fee)


def liquidation_margin(m: PerpsMarket, size: int, price: int) -> int:
    buffer = multiply_decimal(multiply_decimal(abs(size), price), m.liquidation_buffer_ratio)
    return buffer + liquidation_fee(m, size, price) + m.keeper_liquidation_fee


def liquidation_premium(m: PerpsMarket, size: int, price: int) -> int:
    if size == 0:
        return 0
    notional = abs(notional_value(size, price))
    return multiply_decimal(multiply_decimal(divide_decimal(abs(size), m.skew_scale), notional), m.liquidation_premium_multiplier)


def remaining_liquidatable_margin(m: PerpsMarket, p: PerpsPosition, price: int) -> int:
    return max(0, margin_plus_profit_funding(m, p, price) - liquidation_premium(m, p.size, price))


def can_liquidate_at(m: PerpsMarket, p: PerpsPosition, price: int) -> bool:
    """``_canLiquidate(position, price)``."""
    if p.size == 0:
        return False
    return remaining_liquidatable_margin(m, p, price) <= liquidation_margin(m, p.size, price)


def approx_liquidation_price(m: PerpsMarket, p: PerpsPosition) -> int:
    """``liquidationPrice(account)``: the protocol's own approximation (it ignores how fees move with price)."""
    if p.size == 0:
        return 0
    price = m.price
    shortfall = liquidation_margin(m, p.size, price) - (p.margin - liquidation_premium(m, p.size, price))
    result = p.last_price + divide_decimal(shortfall, p.size) - net_funding_per_unit(m, p, price)
    return max(0, result)


def exact_liquidation_price(m: PerpsMarket, p: PerpsPosition) -> int | None:
    """The mark price closest to the current one at which ``_canLiquidate`` holds (exact integer search).

    For a long, the highest liquidatable price below the current one; for a short, the lowest above it.
    Funding accrued so far is valued at that price, as the contract would. The current price when
    liquidatable now; None without a position or when no price liquidates it.
    """
    if p.size == 0:
        return None
    if can_liquidate_at(m, p, m.price):
        return m.price
    if p.size > 0:
        if not can_liquidate_at(m, p, 0):
            return None
        lo, hi = 0, m.price  # liquidatable at lo, not at hi
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if can_liquidate_at(m, p, mid):
                lo = mid
            else:
                hi = mid
        return lo
    lo, hi = m.price, max(1, m.price) * 2  # not liquidatable at lo; grow hi until it is
    while not can_liquidate_at(m, p, hi):
        if hi > 2**200:
            return None
        lo, hi = hi, hi * 2
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if can_liquidate_at(m, p, mid):
            hi = mid
        else:
            lo = mid
    return hi


@dataclass(frozen=True, slots=True)
class PerpsVerdict:
    """The verdict at the market's price and the values behind it (sUSD, 18 decimals)."""

    can_liquidate: bool  # canLiquidate(account): valid price and the rule
    rule: bool  # the rule alone, whatever the price's validity
    remaining_margin: int  # the NLV
    remaining_liquidatable_margin: int
    liquidation_margin: int
    liquidation_premium: int
    liquidation_fee: int
    profit_loss: int
    accrued_funding: int
    notional: int
    health_factor: int  # WAD: remaining liquidatable margin / liquidation margin; UINT256_MAX without a position


def verdict(m: PerpsMarket, p: PerpsPosition) -> PerpsVerdict:
    price = m.price
    rule = can_liquidate_at(m, p, price)
    lm = liquidation_margin(m, p.size, price) if p.size else 0
    rlm = remaining_liquidatable_margin(m, p, price)
    return PerpsVerdict(
        can_liquidate=rule and not m.price_invalid,
        rule=rule,
        remaining_margin=remaining_margin(m, p, price),
        remaining_liquidatable_margin=rlm,
        liquidation_margin=lm,
        liquidation_premium=liquidation_premium(m, p.size, price),
        liquidation_fee=liquidation_fee(m, p.size, price) if p.size else 0,
        profit_loss=profit_loss(p, price),
        accrued_funding=accrued_funding(m, p, price),
        notional=notional_value(p.size, price),
        health_factor=UINT256_MAX if p.size == 0 or lm == 0 else rlm * UNIT // lm,
    )
