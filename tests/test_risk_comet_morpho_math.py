"""Pure Comet and Morpho Blue arithmetic: rounding directions, accrual, and boundaries found exactly.

The anvil conformance tests compare whole verdicts with the contracts; these pin the pieces that make
them agree (and fail with a readable message when one of them drifts).
"""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given
from hypothesis import strategies as st

from indexer.constants import UINT256_MAX, WAD
from indexer.risk import comet, morpho
from indexer.risk.distance import uniform_price_drop

ADDR = "0x" + "00" * 19 + "01"


# --- Comet ----------------------------------------------------------------------------------------------
def comet_market(**kw: object) -> comet.CometMarket:
    weth = comet.CometAsset(0, "0xWETH", "WETH", 18, "0xF1", 10**18, 825 * 10**15, 895 * 10**15, 95 * 10**16, 10**30, 3000 * 10**8)
    wbtc = comet.CometAsset(1, "0xWBTC", "WBTC", 8, "0xF2", 10**8, 70 * 10**16, 77 * 10**16, 95 * 10**16, 10**30, 60000 * 10**8)
    base = dict(
        base_token="0xUSDC",
        base_symbol="USDC",
        base_decimals=6,
        base_scale=10**6,
        base_price=10**8,
        base_borrow_min=100 * 10**6,
        base_supply_index=1_000_050_000_000_000,
        base_borrow_index=1_000_123_456_789_012,
        total_supply_base=10**13,
        total_borrow_base=8 * 10**12,
        last_accrual_time=1_000_000,
        pause_flags=0,
        supply_rate=1_000_000_000,  # ~3 %/year
        borrow_rate=1_500_000_000,
        assets=(weth, wbtc),
        block_timestamp=1_000_000,
    )
    base.update(kw)
    return comet.CometMarket(**base)  # type: ignore[arg-type]


def test_signed_mul_price_truncates_toward_zero_like_int256_division() -> None:
    assert comet.signed_mul_price(-7, 3, 2) == -10  # -21 / 2 = -10.5 -> -10, not floor's -11
    assert comet.signed_mul_price(7, 3, 2) == 10


@given(st.integers(1, 10**30), st.integers(10**15, 10**16))
def test_borrow_principal_rounds_up_and_supply_principal_down(present: int, index: int) -> None:
    # Comet never under-records a debt: principal -> present value gives back at least what was borrowed.
    assert comet.present_value_borrow(index, comet.principal_value_borrow(index, present)) >= present
    assert comet.present_value_supply(index, comet.principal_value_supply(index, present)) <= present


def test_accrual_grows_the_indexes_by_the_per_second_rates() -> None:
    m = comet_market(block_timestamp=1_000_000 + 86_400)
    supply, borrow = comet.accrued_indices(m)
    assert borrow == m.base_borrow_index + m.base_borrow_index * (m.borrow_rate * 86_400) // 10**18
    assert supply == m.base_supply_index + m.base_supply_index * (m.supply_rate * 86_400) // 10**18
    assert comet.accrued_indices(replace(m, block_timestamp=m.last_accrual_time)) == (m.base_supply_index, m.base_borrow_index)


def test_view_and_absorb_verdicts_differ_when_only_interest_crosses_the_line() -> None:
    m = comet_market(block_timestamp=1_000_000 + 30 * 86_400)
    collateral = 10**18  # 1 WETH: liquidation value 3000 * 0.895 = 2685 USD
    # Debt principal whose stored-index value is just inside the limit.
    limit = 2685 * 10**6
    principal = limit * comet.BASE_INDEX_SCALE // m.base_borrow_index
    user = comet.CometUser(ADDR, -principal, 0b1, {0: collateral})
    v = comet.verdict(m, user)
    assert not v.view_liquidatable and v.absorbable and v.reason == "absorbable"
    assert v.health_factor < WAD  # HF from the accrued debt agrees with the absorb verdict
    assert comet.verdict(replace(m, pause_flags=1 << comet.PAUSE_ABSORB_OFFSET), user).reason == "absorb paused"


def test_supplier_is_never_liquidatable_and_has_infinite_health() -> None:
    v = comet.verdict(comet_market(), comet.CometUser(ADDR, 10**9, 0, {}))
    assert (v.absorbable, v.view_liquidatable, v.health_factor, v.reason) == (False, False, UINT256_MAX, "no debt")
    assert v.supply_value > 0 and v.debt_value == 0


def test_comet_liquidation_price_is_the_exact_boundary() -> None:
    m = comet_market()
    user = comet.CometUser(ADDR, -2_000 * 10**6, 0b11, {0: 10**18, 1: 10**6})
    p = comet.liquidation_price(m, user, 0)
    assert p is not None

    def at(price: int) -> bool:
        shocked = replace(m, assets=(replace(m.assets[0], price=price), m.assets[1]))
        return comet.is_liquidatable(comet.accrued(shocked), user)

    assert at(p) and not at(p + 1)
    drop = comet.price_drop_to_liquidation(m, user)
    assert drop is not None and 0 < drop < 1


# --- Morpho Blue ----------------------------------------------------------------------------------------
def morpho_market(**kw: object) -> morpho.MorphoMarket:
    base = dict(
        market_id="0x" + "ab" * 32,
        loan_token="0xUSDC",
        collateral_token="0xWETH",
        oracle="0xOR",
        irm="0x" + "00" * 19 + "11",
        lltv=86 * 10**16,
        total_supply_assets=10**13,
        total_supply_shares=10**19,
        total_borrow_assets=8 * 10**12,
        total_borrow_shares=7 * 10**18,
        last_update=1_000_000,
        fee=10**17,
        price=3000 * 10**36 * 10**6 // 10**18,  # USDC (6) per WETH (18)
        borrow_rate=2_000_000_000,
        block_timestamp=1_000_000 + 7 * 86_400,
    )
    base.update(kw)
    return morpho.MorphoMarket(**base)  # type: ignore[arg-type]


def test_shares_to_assets_round_in_the_protocols_favour() -> None:
    assert morpho.to_assets_up(1, 10, 10**6 + 7) == 1 and morpho.to_assets_down(1, 10, 10**6 + 7) == 0
    assert morpho.to_shares_up(1, 0, 0) == 10**6 and morpho.to_shares_down(1, 0, 0) == 10**6


def test_accrual_adds_taylor_interest_to_both_totals_and_mints_fee_shares() -> None:
    m = morpho_market()
    a = morpho.accrued(m)
    interest = m.total_borrow_assets * morpho.w_taylor_compounded(m.borrow_rate, 7 * 86_400) // WAD
    assert a.total_borrow_assets - m.total_borrow_assets == interest > 0
    assert a.total_supply_assets - m.total_supply_assets == interest
    fee = interest * m.fee // WAD
    assert a.total_supply_shares - m.total_supply_shares == morpho.to_shares_down(fee, a.total_supply_assets - fee, m.total_supply_shares)
    # No IRM, or nothing elapsed: nothing accrues.
    assert morpho.accrued(replace(m, irm="0x" + "00" * 20)).total_borrow_assets == m.total_borrow_assets
    assert morpho.accrued(replace(m, block_timestamp=m.last_update)).total_borrow_assets == m.total_borrow_assets


def test_liquidation_incentive_factor_follows_the_cursor_and_the_cap() -> None:
    assert morpho.liquidation_incentive_factor(945 * 10**15) == WAD * WAD // (WAD - 3 * 10**17 * 55 * 10**15 // WAD)
    assert morpho.liquidation_incentive_factor(0) == morpho.MAX_LIQUIDATION_INCENTIVE_FACTOR


@given(st.integers(10**6, 10**24), st.integers(1, 10**20), st.sampled_from([625, 770, 860, 915, 945]))
def test_morpho_liquidation_price_flips_the_verdict_one_unit_away(collateral: int, borrow_shares: int, lltv_permille: int) -> None:
    m = morpho.accrued(morpho_market(lltv=lltv_permille * 10**15))
    pos = morpho.MorphoPosition(ADDR, 0, borrow_shares, collateral)
    p = morpho.liquidation_price(m, pos)
    assert p is not None
    assert not morpho.is_healthy(m, pos, p)
    assert morpho.is_healthy(m, pos, p + 1)


def test_interest_alone_makes_a_position_liquidatable() -> None:
    m = morpho_market()
    collateral = 10**18
    limit = morpho.max_borrow(m, morpho.MorphoPosition(ADDR, 0, 0, collateral))
    # The largest share count still healthy on the stored totals.
    shares = morpho.to_shares_down(limit, m.total_borrow_assets, m.total_borrow_shares)
    pos = morpho.MorphoPosition(ADDR, 0, shares, collateral)
    v = morpho.verdict(m, pos)
    assert not v.unhealthy_on_stored_totals and v.liquidatable and v.health_factor < WAD
    assert morpho.price_drop_to_liquidation(m, pos) == 0.0


def test_uniform_price_drop_is_exact_to_its_resolution() -> None:
    # Liquidatable once prices keep less than 63.5 % of their value.
    drop = uniform_price_drop(lambda keep, scale: keep * 1000 < 635 * scale)
    # The smallest drop on the 1e-9 grid that liquidates: keep = 634999999 / 1e9.
    assert drop is not None and 0.365 < drop <= 0.365 + 1.5e-9
    assert uniform_price_drop(lambda keep, scale: True) == 0.0
    assert uniform_price_drop(lambda keep, scale: False) is None
