"""Pure Synthetix PerpsV2 arithmetic: truncation, funding, the ``<=`` rule and the exact liquidation price."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given
from hypothesis import strategies as st

from indexer.risk import synthetix_perps as sx

UNIT = 10**18


def market(**kw: object) -> sx.PerpsMarket:
    base = dict(
        address="0xM",
        market_key=b"sETHPERP".ljust(32, b"\0"),
        base_asset="sETH",
        price=3000 * UNIT,
        price_invalid=False,
        skew=500 * UNIT,
        funding_last_recomputed=1_000_000,
        funding_rate_last_recomputed=2 * 10**15,
        latest_funding_entry=-7 * 10**18,
        skew_scale=1_000_000 * UNIT,
        max_funding_velocity=9 * UNIT,
        liquidation_buffer_ratio=10**16,
        liquidation_premium_multiplier=15 * 10**17,
        liquidation_fee_ratio=35 * 10**14,
        min_keeper_fee=5 * UNIT,
        max_keeper_fee=1000 * UNIT,
        keeper_liquidation_fee=2 * UNIT,
        block_timestamp=1_000_000 + 3 * 86_400,
    )
    base.update(kw)
    return sx.PerpsMarket(**base)  # type: ignore[arg-type]


def position(size: int, margin: int, **kw: object) -> sx.PerpsPosition:
    base = dict(account="0xA", id=1, last_funding_index=3, margin=margin, last_price=3000 * UNIT, size=size, funding_entry=-7 * 10**18)
    base.update(kw)
    return sx.PerpsPosition(**base)  # type: ignore[arg-type]


def test_signed_decimal_maths_truncates_toward_zero() -> None:
    assert sx.multiply_decimal(-3, UNIT // 2) == -1
    assert sx.divide_decimal(-1, 3) == -(UNIT // 3)
    assert sx.divide_decimal(1, -3) == -(UNIT // 3)


def test_funding_rate_moves_with_skew_and_time() -> None:
    m = market()
    # 3 days at velocity skew/scale * max = 0.0005 * 9 = 0.0045 per day.
    assert sx.current_funding_velocity(m) == 45 * 10**14
    assert sx.current_funding_rate(m) == 2 * 10**15 + 45 * 10**14 * 3
    # Longs pay when the skew is long: the unrecorded funding per unit is negative.
    assert sx.unrecorded_funding(m, m.price) < 0
    assert sx.accrued_funding(m, position(10 * UNIT, 5000 * UNIT), m.price) < 0
    assert sx.accrued_funding(m, position(-10 * UNIT, 5000 * UNIT), m.price) > 0
    assert sx.accrued_funding(m, position(10 * UNIT, 5000 * UNIT, last_funding_index=0), m.price) == 0


def test_rule_is_less_or_equal_and_counts_the_premium() -> None:
    m = replace(market(), block_timestamp=1_000_000, funding_rate_last_recomputed=0, skew=0)  # no funding
    p = position(10 * UNIT, 0, last_funding_index=0)
    lm = sx.liquidation_margin(m, p.size, m.price)
    premium = sx.liquidation_premium(m, p.size, m.price)
    at = replace(p, margin=lm + premium)
    assert sx.can_liquidate_at(m, at, m.price)  # remaining - premium == liquidation margin: liquidatable
    assert not sx.can_liquidate_at(m, replace(at, margin=lm + premium + 1), m.price)


@given(st.integers(1, 200), st.integers(2, 50), st.booleans())
def test_exact_liquidation_price_flips_the_rule_one_wei_away(size_eth: int, leverage: int, long: bool) -> None:
    m = market()
    size = size_eth * UNIT * (1 if long else -1)
    p = position(size, size_eth * 3000 * UNIT // leverage)
    if sx.can_liquidate_at(m, p, m.price):
        return
    liq = sx.exact_liquidation_price(m, p)
    assert liq is not None
    assert sx.can_liquidate_at(m, p, liq)
    assert not sx.can_liquidate_at(m, p, liq + (1 if long else -1))
    assert (liq < m.price) if long else (liq > m.price)


def test_invalid_price_blocks_can_liquidate_but_not_the_rule() -> None:
    m = market(price_invalid=True)
    p = position(10 * UNIT, 10 * UNIT)
    v = sx.verdict(m, p)
    assert v.rule and not v.can_liquidate
