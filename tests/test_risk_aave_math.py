"""Pure Aave V3 health arithmetic (no chain): indexer.risk.aave_v3 against PROTOCOLS.md §1.5 written out here.

The expected values are computed in this file from the §1.5 formulas with local helpers (not the
project's fixed_point module), so a wrong rounding direction or a wrong formula in the code fails here.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from indexer.risk.aave_v3 import (
    AaveAccountData,
    AaveEModeCategory,
    AaveMarket,
    AaveReserve,
    AaveUser,
    account_data,
    liquidation_verdict,
    make_configuration,
    price_drop_to_liquidation,
    with_collateral_prices_scaled,
)

RAY = 10**27
WAD = 10**18
MAX = 2**256 - 1
NOW = 1_700_000_000
PROPS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# --- §1.5 written out independently -----------------------------------------------------------------
def half_up_ray_mul(a: int, b: int) -> int:
    return (a * b + RAY // 2) // RAY


def floor_div(a: int, b: int) -> int:
    return a // b


def ceil_div(a: int, b: int) -> int:
    return (a + b - 1) // b


def half_up_percent_mul(v: int, p: int) -> int:
    return (v * p + 5000) // 10000


def half_up_wad_div(a: int, b: int) -> int:
    return (a * WAD + b // 2) // b


# --- builders ------------------------------------------------------------------------------------
def reserve(
    rid: int,
    *,
    lt: int,
    price: int,
    decimals: int = 18,
    ltv: int | None = None,
    income: int = RAY,
    debt_index: int = RAY,
    paused: bool = False,
    active: bool = True,
    grace: int = 0,
    legacy_emode: int = 0,
) -> AaveReserve:
    cfg = make_configuration(
        ltv=lt - 500 if ltv is None and lt >= 500 else (ltv or 0),
        liquidation_threshold=lt,
        liquidation_bonus=10500,
        decimals=decimals,
        paused=paused,
        active=active,
        legacy_emode_category=legacy_emode,
    )
    return AaveReserve(
        reserve_id=rid,
        asset=f"0xASSET{rid}",
        symbol=f"T{rid}",
        configuration=cfg,
        normalized_income=income,
        normalized_debt=debt_index,
        price=price,
        grace_period_until=grace,
    )


def market(revision: int, *reserves: AaveReserve | None, emode=None, sentinel=None) -> AaveMarket:  # type: ignore[no-untyped-def]
    return AaveMarket(
        revision=revision,
        reserves=tuple(reserves),
        emode_categories=emode or {},
        base_currency_unit=10**8,
        block_timestamp=NOW,
        sentinel_allows_liquidation=sentinel,
    )


def user(collateral: dict[int, int], debt: dict[int, int], *, emode: int = 0, config: int | None = None) -> AaveUser:
    if config is None:
        config = 0
        for rid in collateral:
            config |= 1 << (2 * rid + 1)
        for rid in debt:
            config |= 1 << (2 * rid)
    return AaveUser(account="0xUSER", configuration=config, emode_category=emode, scaled_collateral=collateral, scaled_debt=debt)


# --- hand-computed examples ------------------------------------------------------------------------
# Two collaterals (18 and 6 decimals, different LTs, non-RAY indexes), one debt (8 decimals).
IDX_A = 1_023_456_789_012_345_678_901_234_567  # ~1.0235 RAY
IDX_B = 1_000_000_000_333_333_333_333_333_333
IDX_D = 1_087_654_321_987_654_321_987_654_321
R_A = dict(lt=8250, price=3_456_78901234, decimals=18, income=IDX_A)  # ~$3,456.79
R_B = dict(lt=7800, price=99_987_654, decimals=6, income=IDX_B)  # ~$0.9999
R_D = dict(lt=7000, price=60_123_45678901, decimals=8, debt_index=IDX_D)  # ~$60,123
SCALED_A = 7_654_321_987_654_321_987  # ~7.65 tokens
SCALED_B = 12_345_678_901  # ~12,345 tokens
SCALED_D = 31_234_567  # ~0.312 tokens


def _example(revision: int) -> tuple[AaveMarket, AaveUser]:
    m = market(revision, reserve(0, **R_A), reserve(1, **R_B), reserve(2, **R_D))
    u = user({0: SCALED_A, 1: SCALED_B}, {2: SCALED_D})
    return m, u


def test_hand_computed_revision_9() -> None:
    m, u = _example(9)
    # v3.5: collateral floored twice, debt ceiled twice, HF = floor(wadDiv(Σ c·LT, Σ d) / 1e4).
    c_a = floor_div(floor_div(SCALED_A * IDX_A, RAY) * R_A["price"], 10**18)
    c_b = floor_div(floor_div(SCALED_B * IDX_B, RAY) * R_B["price"], 10**6)
    d = ceil_div(ceil_div(SCALED_D * IDX_D, RAY) * R_D["price"], 10**8)
    numerator = c_a * 8250 + c_b * 7800
    expected_hf = half_up_wad_div(numerator, d) // 10000

    data = account_data(m, u)
    assert data.total_collateral_base == c_a + c_b
    assert data.total_debt_base == d
    assert data.current_liquidation_threshold == numerator // (c_a + c_b)
    assert data.health_factor == expected_hf
    assert WAD < data.health_factor < 2 * WAD  # the example is a realistic, non-trivial account
    assert [leg.value_base for leg in data.collateral_legs] == [c_a, c_b]
    assert [leg.liquidation_threshold for leg in data.collateral_legs] == [8250, 7800]


def test_hand_computed_revision_7() -> None:
    m, u = _example(7)
    # v3.3: half-up rayMul balances, floored base values, floored average LT, percentMul then wadDiv.
    c_a = floor_div(half_up_ray_mul(SCALED_A, IDX_A) * R_A["price"], 10**18)
    c_b = floor_div(half_up_ray_mul(SCALED_B, IDX_B) * R_B["price"], 10**6)
    d = floor_div(half_up_ray_mul(SCALED_D, IDX_D) * R_D["price"], 10**8)
    avg_lt = (c_a * 8250 + c_b * 7800) // (c_a + c_b)
    expected_hf = half_up_wad_div(half_up_percent_mul(c_a + c_b, avg_lt), d)

    data = account_data(m, u)
    assert data.total_collateral_base == c_a + c_b
    assert data.total_debt_base == d
    assert data.current_liquidation_threshold == avg_lt
    assert data.health_factor == expected_hf
    assert WAD < data.health_factor < 2 * WAD


def test_revisions_7_and_9_differ_on_the_same_example() -> None:
    # The two formula families must really be different code paths on this example (guards against a
    # revision switch that silently uses one family for both).
    assert account_data(*_example(7)).health_factor != account_data(*_example(9)).health_factor


def test_small_literal_example_revision_9() -> None:
    # 2 WETH at $2,000 (LT 80 %) + 1,000 USDC at $1 (LT 75 %), 2,500 USDC debt, RAY indexes.
    # Σ c·LT = 4000e8·8000 + 1000e8·7500 = 39.5e15; HF = 39.5e15·1e18 / 2500e8 / 1e4 = 1.58e18.
    m = market(9, reserve(0, lt=8000, price=2000 * 10**8), reserve(1, lt=7500, price=10**8, decimals=6))
    u = user({0: 2 * 10**18, 1: 1000 * 10**6}, {1: 2500 * 10**6})
    data = account_data(m, u)
    assert data.total_collateral_base == 5000 * 10**8
    assert data.total_debt_base == 2500 * 10**8
    assert data.current_liquidation_threshold == 7900
    assert data.health_factor == 158 * 10**16


# --- v3.5 rounding ---------------------------------------------------------------------------------
def test_v35_floors_collateral_and_ceils_debt_where_half_up_differs() -> None:
    # decimals 0 and price 1: base value == token balance, so the index rounding is visible directly.
    # collateral 3 × 1.5 = 4.5 -> floor 4 (v3.5) / half-up 5 (v3.3)
    # debt       1 × 1.2 = 1.2 -> ceil 2 (v3.5)  / half-up 1 (v3.3)
    coll = reserve(0, lt=8000, price=1, decimals=0, income=RAY * 3 // 2)
    debt = reserve(1, lt=8000, price=1, decimals=0, debt_index=RAY * 12 // 10)
    u = user({0: 3}, {1: 1})
    v35 = account_data(market(9, coll, debt), u)
    v33 = account_data(market(7, coll, debt), u)
    assert (v35.total_collateral_base, v35.total_debt_base) == (4, 2)
    assert (v33.total_collateral_base, v33.total_debt_base) == (5, 1)
    assert v35.collateral_legs[0].balance == 4 and v35.debt_legs[0].balance == 2
    assert v33.collateral_legs[0].balance == 5 and v33.debt_legs[0].balance == 1
    # HF: v3.5 floor(wadDiv(4·8000, 2)/1e4) = 1.6e18; v3.3 wadDiv(percentMul(5, 8000), 1) = 4e18.
    assert v35.health_factor == 16 * 10**17
    assert v33.health_factor == 4 * WAD


def test_v35_debt_value_rounds_up_to_one_base_unit() -> None:
    # 1 wei of an 18-decimal token at $1 is 1e8/1e18 base units: ceil -> 1 (v3.5), floor -> 0 (v3.3).
    coll = reserve(0, lt=8000, price=10**8)
    debt = reserve(1, lt=8000, price=10**8)
    u = user({0: 10**18}, {1: 1})
    assert account_data(market(9, coll, debt), u).total_debt_base == 1
    assert account_data(market(10, coll, debt), u).total_debt_base == 1
    v33 = account_data(market(7, coll, debt), u)
    assert v33.total_debt_base == 0
    assert v33.health_factor == MAX


def test_v35_collateral_value_floors_below_one_base_unit() -> None:
    # 0.5 base unit of collateral: floor -> 0 in both families (value is floored in both).
    coll = reserve(0, lt=8000, price=5 * 10**7, decimals=8)
    debt = reserve(1, lt=8000, price=10**8)
    u = user({0: 1}, {1: 10**18})
    for rev in (7, 9):
        assert account_data(market(rev, coll, debt), u).total_collateral_base == 0
        assert account_data(market(rev, coll, debt), u).health_factor == 0


# --- LT gate ---------------------------------------------------------------------------------------
def _lt_zero_case(revision: int) -> AaveAccountData:
    m = market(revision, reserve(0, lt=8000, price=10**8), reserve(1, lt=0, ltv=0, price=3 * 10**8), reserve(2, lt=8000, price=10**8))
    return account_data(m, user({0: 100 * 10**18, 1: 50 * 10**18}, {2: 40 * 10**18}))


@pytest.mark.parametrize("revision", [7, 8, 9])
def test_lt_zero_collateral_excluded_through_v35(revision: int) -> None:
    data = _lt_zero_case(revision)
    assert data.total_collateral_base == 100 * 10**8
    assert data.current_liquidation_threshold == 8000
    assert data.health_factor == 2 * WAD  # 100·0.8 / 40
    leg = next(leg for leg in data.collateral_legs if leg.reserve_id == 1)
    assert not leg.counted and leg.liquidation_threshold == 0


@pytest.mark.parametrize("revision", [10, 11])
def test_lt_zero_collateral_counted_from_v36(revision: int) -> None:
    data = _lt_zero_case(revision)
    assert data.total_collateral_base == 250 * 10**8  # 100 + 50·3
    assert data.current_liquidation_threshold == 100 * 8000 // 250  # 3200: LT-0 adds 0 to the sum
    assert data.health_factor == 2 * WAD  # numerator unchanged vs v3.5
    leg = next(leg for leg in data.collateral_legs if leg.reserve_id == 1)
    assert leg.counted


def test_lt_zero_reserve_excluded_even_when_emode_gives_it_an_lt() -> None:
    # PROTOCOLS §10.2: the gate is the *reserve* LT, even in an eMode that covers the reserve.
    cat = AaveEModeCategory(1, 9000, 9300, 10100, collateral_bitmap=0b11, borrowable_bitmap=0b111, legacy=False)
    m = market(9, reserve(0, lt=8000, price=10**8), reserve(1, lt=0, ltv=0, price=10**8), reserve(2, lt=8000, price=10**8), emode={1: cat})
    data = account_data(m, user({0: 100 * 10**18, 1: 100 * 10**18}, {2: 50 * 10**18}, emode=1))
    assert data.total_collateral_base == 100 * 10**8
    assert data.health_factor == 100 * 9300 * WAD // (50 * 10000)


# --- eMode -----------------------------------------------------------------------------------------
def _emode_market(revision: int, cat: AaveEModeCategory, *, legacy_ids: tuple[int, int] = (0, 0)) -> AaveMarket:
    return market(
        revision,
        reserve(0, lt=8000, price=10**8, legacy_emode=legacy_ids[0]),
        reserve(1, lt=7000, price=10**8, legacy_emode=legacy_ids[1]),
        reserve(2, lt=8000, price=10**8),
        emode={cat.category_id: cat},
    )


EMODE_U = dict(collateral={0: 100 * 10**18, 1: 100 * 10**18}, debt={2: 100 * 10**18})


@pytest.mark.parametrize("revision", [7, 9])
def test_emode_lt_applies_only_to_bitmap_reserves(revision: int) -> None:
    cat = AaveEModeCategory(1, 9000, 9500, 10100, collateral_bitmap=0b001, borrowable_bitmap=0b111, legacy=False)
    m = _emode_market(revision, cat, legacy_ids=(0, 1))  # reserve 1's legacy bits must be ignored here
    in_emode = account_data(m, user(EMODE_U["collateral"], EMODE_U["debt"], emode=1))
    assert [leg.liquidation_threshold for leg in in_emode.collateral_legs] == [9500, 7000]
    assert in_emode.current_liquidation_threshold == (9500 + 7000) // 2
    assert in_emode.health_factor == (100 * 9500 + 100 * 7000) * WAD // (100 * 10000)  # 1.65e18
    no_emode = account_data(m, user(EMODE_U["collateral"], EMODE_U["debt"], emode=0))
    assert [leg.liquidation_threshold for leg in no_emode.collateral_legs] == [8000, 7000]
    assert no_emode.health_factor == 15 * 10**17


def test_emode_category_not_in_market_falls_back_to_reserve_lt() -> None:
    cat = AaveEModeCategory(1, 9000, 9500, 10100, collateral_bitmap=0b011, borrowable_bitmap=0b111, legacy=False)
    data = account_data(_emode_market(9, cat), user(EMODE_U["collateral"], EMODE_U["debt"], emode=2))
    assert [leg.liquidation_threshold for leg in data.collateral_legs] == [8000, 7000]


@pytest.mark.parametrize("revision", [7, 9])
def test_legacy_emode_uses_config_bits_168_175(revision: int) -> None:
    # Legacy category 3: reserve 1 carries category 3 in bits 168-175; the bitmap (naming reserve 0) is ignored.
    cat = AaveEModeCategory(3, 9000, 9700, 10100, collateral_bitmap=0b001, borrowable_bitmap=0, legacy=True)
    m = _emode_market(revision, cat, legacy_ids=(2, 3))
    assert (m.reserves[1].configuration >> 168) & 0xFF == 3  # type: ignore[union-attr]
    data = account_data(m, user(EMODE_U["collateral"], EMODE_U["debt"], emode=3))
    assert [leg.liquidation_threshold for leg in data.collateral_legs] == [8000, 9700]
    assert data.health_factor == (100 * 8000 + 100 * 9700) * WAD // (100 * 10000)


# --- no debt / empty -------------------------------------------------------------------------------
@pytest.mark.parametrize("revision", [7, 9, 10])
def test_no_debt_health_factor_is_uint_max(revision: int) -> None:
    m = market(revision, reserve(0, lt=8000, price=10**8))
    data = account_data(m, user({0: 10**18}, {}))
    assert data.total_collateral_base == 10**8
    assert data.total_debt_base == 0
    assert data.health_factor == MAX


@pytest.mark.parametrize("revision", [7, 9, 10])
def test_empty_configuration(revision: int) -> None:
    m = market(revision, reserve(0, lt=8000, price=10**8), reserve(1, lt=8000, price=10**8))
    # Balances without any configuration bit do not count.
    data = account_data(m, user({0: 10**18}, {1: 10**18}, config=0))
    assert (
        data.total_collateral_base,
        data.total_debt_base,
        data.available_borrows_base,
        data.current_liquidation_threshold,
        data.ltv,
        data.health_factor,
    ) == (0, 0, 0, 0, 0, MAX)


def test_dropped_reserve_slot_is_skipped_and_ids_stay_aligned() -> None:
    m = market(9, None, reserve(1, lt=8000, price=10**8), reserve(2, lt=8000, price=10**8))
    data = account_data(m, user({1: 100 * 10**18}, {2: 50 * 10**18}, config=0b11 | (0b10 << 2) | (0b01 << 4)))
    assert [leg.reserve_id for leg in data.collateral_legs] == [1]
    assert data.health_factor == 16 * 10**17


# --- monotonicity (hypothesis) -----------------------------------------------------------------------
index_st = st.integers(min_value=RAY, max_value=2 * RAY)
decimals_st = st.sampled_from([0, 6, 8, 18])
price_st = st.integers(min_value=1, max_value=10**13)
lt_st = st.integers(min_value=1, max_value=10_000)


@st.composite
def accounts(draw, *, same_lt: bool):  # type: ignore[no-untyped-def]
    """Two collaterals and one debt reserve, random decimals/indexes/prices/balances."""
    lt_a = draw(lt_st)
    lt_b = lt_a if same_lt else draw(lt_st)
    reserves = []
    for rid, lt in ((0, lt_a), (1, lt_b), (2, 8000)):
        dec = draw(decimals_st)
        reserves.append(
            reserve(rid, lt=lt, ltv=0, price=draw(price_st), decimals=dec, income=draw(index_st), debt_index=draw(index_st))
        )
    scaled = st.integers(min_value=1, max_value=10**30)
    u = user({0: draw(scaled), 1: draw(scaled)}, {2: draw(scaled)})
    return reserves, u


def _bumped(reserves: list[AaveReserve], rid: int, extra: int) -> list[AaveReserve]:
    return [replace(r, price=r.price + extra) if r.reserve_id == rid else r for r in reserves]


@PROPS
@given(case=accounts(same_lt=False), rid=st.sampled_from([0, 1]), extra=st.integers(min_value=1, max_value=10**13))
def test_hf_monotone_in_collateral_price_rev9(case, rid, extra) -> None:  # type: ignore[no-untyped-def]
    reserves, u = case
    before = account_data(market(9, *reserves), u).health_factor
    after = account_data(market(9, *_bumped(reserves, rid, extra)), u).health_factor
    assert after >= before


@PROPS
@given(case=accounts(same_lt=True), rid=st.sampled_from([0, 1]), extra=st.integers(min_value=1, max_value=10**13))
def test_hf_monotone_in_collateral_price_rev7(case, rid, extra) -> None:  # type: ignore[no-untyped-def]
    # Equal LTs: the legacy floored average LT is exact, so the legacy formula is monotone. With
    # different LTs it is not (see test_rev7_is_not_monotone_with_mixed_lts: a protocol property).
    reserves, u = case
    before = account_data(market(7, *reserves), u).health_factor
    after = account_data(market(7, *_bumped(reserves, rid, extra)), u).health_factor
    assert after >= before


@PROPS
@given(case=accounts(same_lt=False), extra=st.integers(min_value=1, max_value=10**13), revision=st.sampled_from([7, 9]))
def test_hf_non_increasing_in_debt_price(case, extra, revision) -> None:  # type: ignore[no-untyped-def]
    reserves, u = case
    before = account_data(market(revision, *reserves), u).health_factor
    after = account_data(market(revision, *_bumped(reserves, 2, extra)), u).health_factor
    assert after <= before


def test_rev7_is_not_monotone_with_mixed_lts() -> None:
    # Documents the legacy protocol arithmetic (not a bug of the indexer): Σc·floor(Σc·LT/Σc) loses up to
    # Σc, so one more unit of a low-LT collateral can lower percentMul(Σc, avgLT) and the HF.
    def hf(p0: int) -> int:
        m = market(7, reserve(0, lt=5000, ltv=0, price=p0, decimals=0), reserve(1, lt=9000, ltv=0, price=10**12, decimals=0), reserve(2, lt=9000, price=1, decimals=0))
        return account_data(m, user({0: 1, 1: 1}, {2: 10**12})).health_factor

    c = 2 * 10**12 + 1  # Σc after the bump; avgLT = floor((5000(1e12+1) + 9000e12) / c) = 6999
    assert hf(10**12) == half_up_wad_div(half_up_percent_mul(2 * 10**12, 7000), 10**12)  # 1.4e18
    assert hf(10**12 + 1) == half_up_wad_div(half_up_percent_mul(c, (5000 * (10**12 + 1) + 9000 * 10**12) // c), 10**12)
    assert hf(10**12 + 1) < hf(10**12)


# --- liquidation verdict -----------------------------------------------------------------------------
def _underwater(revision: int, *, coll_kwargs=None, coll2_kwargs=None, debt_kwargs=None, debt2_kwargs=None, sentinel=None):  # type: ignore[no-untyped-def]
    """Collaterals 0 ($100, LT 80%) and 1 ($50, LT 80%), debts 2 ($100) and 3 ($60): HF = 120/160 = 0.75."""
    m = market(
        revision,
        reserve(0, lt=8000, price=10**8, **(coll_kwargs or {})),
        reserve(1, **{"lt": 8000, "price": 10**8, **(coll2_kwargs or {})}),
        reserve(2, lt=8000, price=10**8, **(debt_kwargs or {})),
        reserve(3, lt=8000, price=10**8, **(debt2_kwargs or {})),
        sentinel=sentinel,
    )
    u = user({0: 100 * 10**18, 1: 50 * 10**18}, {2: 100 * 10**18, 3: 60 * 10**18})
    return m, u, account_data(m, u)


@pytest.mark.parametrize("revision", [7, 9, 10])
def test_verdict_liquidatable_picks_largest_legs(revision: int) -> None:
    m, u, data = _underwater(revision)
    assert data.health_factor == 75 * 10**16
    v = liquidation_verdict(m, u, data)
    assert v.liquidatable
    assert (v.collateral_asset, v.debt_asset) == ("0xASSET0", "0xASSET2")


@pytest.mark.parametrize("hf", [WAD, WAD + 1, MAX])
def test_verdict_not_liquidatable_at_or_above_one(hf: int) -> None:
    m, u, data = _underwater(9)
    assert not liquidation_verdict(m, u, replace(data, health_factor=hf)).liquidatable


def test_verdict_liquidatable_just_below_one() -> None:
    m, u, data = _underwater(9)
    assert liquidation_verdict(m, u, replace(data, health_factor=WAD - 1)).liquidatable


@pytest.mark.parametrize(
    "blocked",
    [dict(paused=True), dict(active=False), dict(grace=NOW), dict(grace=NOW + 3600)],
    ids=["paused", "inactive", "grace-until-now", "grace-future"],
)
def test_verdict_blocked_when_every_collateral_unusable(blocked) -> None:  # type: ignore[no-untyped-def]
    m, u, data = _underwater(9, coll_kwargs=blocked, coll2_kwargs=blocked)
    assert data.health_factor < WAD
    v = liquidation_verdict(m, u, data)
    assert not v.liquidatable and v.collateral_asset is None


@pytest.mark.parametrize(
    "blocked",
    [dict(paused=True), dict(active=False), dict(grace=NOW)],
    ids=["paused", "inactive", "grace"],
)
def test_verdict_uses_the_other_collateral_when_one_is_unusable(blocked) -> None:  # type: ignore[no-untyped-def]
    m, u, data = _underwater(9, coll_kwargs=blocked)
    v = liquidation_verdict(m, u, data)
    assert v.liquidatable and v.collateral_asset == "0xASSET1"


def test_verdict_grace_period_over_one_second_before() -> None:
    m, u, data = _underwater(9, coll_kwargs=dict(grace=NOW - 1), coll2_kwargs=dict(grace=NOW - 1))
    assert liquidation_verdict(m, u, data).liquidatable


def test_verdict_blocked_when_every_debt_reserve_paused() -> None:
    m, u, data = _underwater(9, debt_kwargs=dict(paused=True), debt2_kwargs=dict(paused=True))
    assert data.health_factor < WAD
    v = liquidation_verdict(m, u, data)
    assert not v.liquidatable and v.debt_asset is None


def test_verdict_uses_the_other_debt_when_one_is_paused() -> None:
    m, u, data = _underwater(9, debt_kwargs=dict(paused=True))
    v = liquidation_verdict(m, u, data)
    assert v.liquidatable and v.debt_asset == "0xASSET3"


@pytest.mark.parametrize(("revision", "expected"), [(7, False), (9, False), (10, True)])
def test_verdict_lt_zero_collateral_through_v35(revision: int, expected: bool) -> None:
    # Collateral 0 is paused; collateral 1 has reserve LT 0. Debt $100 vs $100·0.8 -> HF < 1 either way.
    m = market(
        revision,
        reserve(0, lt=8000, price=10**8, paused=True),
        reserve(1, lt=0, ltv=0, price=10**8),
        reserve(2, lt=8000, price=10**8),
    )
    u = user({0: 100 * 10**18, 1: 100 * 10**18}, {2: 100 * 10**18})
    data = account_data(m, u)
    assert data.health_factor < WAD
    v = liquidation_verdict(m, u, data)
    assert v.liquidatable is expected
    if expected:
        assert v.collateral_asset == "0xASSET1"


@pytest.mark.parametrize(
    ("sentinel", "hf", "expected"),
    [
        (False, 95 * 10**16, False),
        (False, WAD - 1, False),
        (False, 95 * 10**16 - 1, True),
        (False, 10**16, True),
        (True, WAD - 1, True),
        (None, WAD - 1, True),
        (True, 95 * 10**16, True),
    ],
)
def test_verdict_sentinel(sentinel, hf: int, expected: bool) -> None:  # type: ignore[no-untyped-def]
    m, u, data = _underwater(9, sentinel=sentinel)
    assert liquidation_verdict(m, u, replace(data, health_factor=hf)).liquidatable is expected


# --- price drop to liquidation -------------------------------------------------------------------------
SCALE = 10**9


@st.composite
def single_pairs(draw):  # type: ignore[no-untyped-def]
    revision = draw(st.sampled_from([7, 9, 10]))
    coll = reserve(0, lt=draw(st.integers(1, 10_000)), ltv=0, price=draw(st.integers(1, 10**13)), decimals=draw(decimals_st), income=draw(index_st))
    debt = reserve(1, lt=8000, price=draw(st.integers(1, 10**13)), decimals=draw(decimals_st), debt_index=draw(index_st))
    u = user({0: draw(st.integers(1, 10**30))}, {1: draw(st.integers(1, 10**30))})
    return market(revision, coll, debt), u


@PROPS
@given(case=single_pairs())
def test_price_drop_is_the_exact_threshold(case) -> None:  # type: ignore[no-untyped-def]
    m, u = case
    data = account_data(m, u)
    hf = data.health_factor
    d = price_drop_to_liquidation(m, u)
    if data.total_debt_base == 0:  # legacy floors a tiny debt to 0 base units: no debt, no drop
        assert d is None
        return
    assert d is not None
    if hf < WAD:
        assert d == 0.0
        return
    assert 0.0 < d <= 1.0
    keep = SCALE - round(d * SCALE)
    assert abs((SCALE - keep) / SCALE - d) < 1e-15  # d sits on the 1e-9 grid
    at = with_collateral_prices_scaled(m, {"0xASSET0"}, keep, SCALE)
    assert account_data(at, u).health_factor < WAD
    above = with_collateral_prices_scaled(m, {"0xASSET0"}, keep + 1, SCALE)
    assert account_data(above, u).health_factor >= WAD


def test_price_drop_hand_example() -> None:
    # $100 collateral at LT 80 %, $40 debt: HF 2 -> liquidatable once the price drops by more than 50 %.
    m = market(9, reserve(0, lt=8000, price=100 * 10**8), reserve(1, lt=8000, price=10**8))
    u = user({0: 10**18}, {1: 40 * 10**18})
    d = price_drop_to_liquidation(m, u)
    assert d is not None and abs(d - (0.5 + 1e-9)) < 1e-12


def test_price_drop_none_without_debt() -> None:
    m = market(9, reserve(0, lt=8000, price=10**8), reserve(1, lt=8000, price=10**8))
    assert price_drop_to_liquidation(m, user({0: 10**18}, {})) is None


def test_price_drop_zero_when_already_below_one() -> None:
    m, u, data = _underwater(9)
    assert data.health_factor < WAD
    assert price_drop_to_liquidation(m, u) == 0.0


def test_price_drop_none_when_the_debt_falls_with_the_collateral() -> None:
    # Same reserve as collateral and debt: dropping its price lowers both, HF never falls below 1.
    m = market(9, reserve(0, lt=8000, price=10**8))
    u = user({0: 10 * 10**18}, {0: 10**18}, config=0b11)
    assert account_data(m, u).health_factor >= WAD
    assert price_drop_to_liquidation(m, u) is None


def test_wad_div_rounds_half_up_in_both_families() -> None:
    # decimals 0, price 1: collateral 2 at LT 100 %, debt 3.
    # v3.3: wadDiv(percentMul(2, 10000), 3) = floor((2e18 + 1) / 3) = 666…667 (half-up, not floor).
    # v3.5: floor(wadDiv(2·10000, 3) / 1e4) = floor(6666…6667 / 1e4) = 666…666.
    coll = reserve(0, lt=10_000, price=1, decimals=0)
    debt = reserve(1, lt=8000, price=1, decimals=0)
    u = user({0: 2}, {1: 3})
    assert account_data(market(7, coll, debt), u).health_factor == 666_666_666_666_666_667
    assert account_data(market(9, coll, debt), u).health_factor == 666_666_666_666_666_666
