"""Aave V3 health factor and liquidation verdict, exactly as the Pool computes them.

Two formula families, chosen by ``POOL_REVISION`` (PROTOCOLS.md §1.5):

* revision <= 8 (v3.2-v3.4): balances with half-up ``rayMul``, ``avgLT = floor(sum(c*LT)/sum(c))``,
  ``HF = wadDiv(percentMul(sum(c), avgLT), sum(d))``; collateral counted only when the reserve LT != 0.
* revision 9 (v3.5): collateral floored, debt ceiled, ``HF = wadDiv(sum(c*LT), sum(d)) // 10000``.
* revision >= 10 (v3.6+): as v3.5, but LT-0 collateral is counted in the total collateral (it adds 0 to
  the threshold sum).

Everything here is pure: the adapter gathers the state at one block, these functions decide.

>>> from indexer.constants import RAY
>>> r = AaveReserve(reserve_id=0, asset="0xA", symbol="A", configuration=make_configuration(
...     ltv=8000, liquidation_threshold=8500, liquidation_bonus=10500, decimals=18),
...     normalized_income=RAY, normalized_debt=RAY, price=2 * 10**8, grace_period_until=0)
>>> m = AaveMarket(revision=9, reserves=(r,), emode_categories={}, base_currency_unit=10**8,
...     block_timestamp=1, sentinel_allows_liquidation=None)
>>> u = AaveUser(account="0xU", configuration=0b11, emode_category=0,
...     scaled_collateral={0: 10**18}, scaled_debt={0: 5 * 10**17})
>>> account_data(m, u).health_factor
1700000000000000000
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from indexer.constants import (
    AAVE_MIN_HF_LIQUIDATION_THRESHOLD,
    PERCENTAGE_FACTOR,
    PRICE_DROP_RESOLUTION,
    UINT256_MAX,
    WAD,
)
from indexer.risk.distance import uniform_price_drop
from indexer.risk.fixed_point import HALF_PERCENT, ceil_div, percent_mul, ray_mul, ray_mul_ceil, ray_mul_floor, wad_div

REVISION_V3_5 = 9
REVISION_V3_6 = 10


# --- reserve configuration bitmap (PROTOCOLS.md §1.3) -------------------------------------------
def _bits(data: int, start: int, width: int) -> int:
    return (data >> start) & ((1 << width) - 1)


def make_configuration(
    *,
    ltv: int,
    liquidation_threshold: int,
    liquidation_bonus: int,
    decimals: int,
    active: bool = True,
    frozen: bool = False,
    borrowing_enabled: bool = True,
    paused: bool = False,
    reserve_factor: int = 1000,
    liquidation_protocol_fee: int = 1000,
    legacy_emode_category: int = 0,
) -> int:
    """Build a reserve configuration bitmap from its fields (for fixtures and tests)."""
    data = ltv | (liquidation_threshold << 16) | (liquidation_bonus << 32) | (decimals << 48)
    data |= (int(active) << 56) | (int(frozen) << 57) | (int(borrowing_enabled) << 58) | (int(paused) << 60)
    data |= reserve_factor << 64
    data |= liquidation_protocol_fee << 152
    data |= legacy_emode_category << 168
    return data


@dataclass(frozen=True, slots=True)
class AaveReserve:
    """One reserve of the pool at the pinned block."""

    reserve_id: int  # index in getReservesList, used by the user bitmaps
    asset: str  # underlying token address
    symbol: str  # underlying symbol, for display
    configuration: int  # getConfiguration bitmap
    normalized_income: int  # getReserveNormalizedIncome, RAY
    normalized_debt: int  # getReserveNormalizedVariableDebt, RAY
    price: int  # AaveOracle.getAssetPrice, base units
    grace_period_until: int  # getLiquidationGracePeriod (0 where the pool has none)

    @property
    def ltv(self) -> int:
        return self.configuration & 0xFFFF  # bits 0-15 (inlined: read per leg in the hot loops)

    @property
    def liquidation_threshold(self) -> int:
        return (self.configuration >> 16) & 0xFFFF

    @property
    def liquidation_bonus(self) -> int:
        return _bits(self.configuration, 32, 16)

    @property
    def decimals(self) -> int:
        return (self.configuration >> 48) & 0xFF

    @property
    def active(self) -> bool:
        return bool(_bits(self.configuration, 56, 1))

    @property
    def frozen(self) -> bool:
        return bool(_bits(self.configuration, 57, 1))

    @property
    def paused(self) -> bool:
        return bool(_bits(self.configuration, 60, 1))

    @property
    def liquidation_protocol_fee(self) -> int:
        return _bits(self.configuration, 152, 16)

    @property
    def legacy_emode_category(self) -> int:
        return _bits(self.configuration, 168, 8)


@dataclass(frozen=True, slots=True)
class AaveEModeCategory:
    """An eMode category (v3.2+ bitmaps, or the legacy per-reserve category id)."""

    category_id: int  # category id, 1..255
    ltv: int  # bps
    liquidation_threshold: int  # bps
    liquidation_bonus: int  # bps including 100 %
    collateral_bitmap: int  # bit i set: reserve i is eMode collateral (v3.2+)
    borrowable_bitmap: int  # bit i set: reserve i may be borrowed in the category (v3.2+)
    legacy: bool  # True: eligibility is the reserve's config bits 168-175 (pre-3.2)

    def covers(self, reserve: AaveReserve) -> bool:
        """Whether this category's collateral parameters apply to the reserve."""
        if self.legacy:
            return reserve.legacy_emode_category == self.category_id
        return bool((self.collateral_bitmap >> reserve.reserve_id) & 1)


@dataclass(frozen=True, slots=True)
class AaveMarket:
    """Pool-wide state at the pinned block."""

    revision: int  # POOL_REVISION
    reserves: tuple[AaveReserve | None, ...]  # by reserve id; None for a dropped (address(0)) slot
    emode_categories: dict[int, AaveEModeCategory]  # categories in use, by id
    base_currency_unit: int  # AaveOracle.BASE_CURRENCY_UNIT (1e8 for USD)
    block_timestamp: int  # timestamp of the pinned block
    sentinel_allows_liquidation: bool | None  # PriceOracleSentinel answer; None where there is none


@dataclass(frozen=True, slots=True)
class AaveUser:
    """One account's raw Aave state at the pinned block."""

    account: str  # account address
    configuration: int  # getUserConfiguration bitmap: bit 2i borrowing, 2i+1 collateral
    emode_category: int  # getUserEMode
    scaled_collateral: dict[int, int]  # reserve id -> aToken.scaledBalanceOf
    scaled_debt: dict[int, int]  # reserve id -> variableDebtToken.scaledBalanceOf

    def is_borrowing(self, reserve_id: int) -> bool:
        return bool((self.configuration >> (2 * reserve_id)) & 1)

    def is_collateral(self, reserve_id: int) -> bool:
        return bool((self.configuration >> (2 * reserve_id + 1)) & 1)


@dataclass(frozen=True, slots=True)
class AaveLegValue:
    """One reserve's contribution to the account data, in base units as the pool rounds it."""

    reserve_id: int  # reserve id
    balance: int  # token balance (aToken or debt token) as the pool computes it
    value_base: int  # value in base currency units
    liquidation_threshold: int  # LT applied (eMode-aware); 0 for debt
    counted: bool  # whether the pool counts it (collateral with LT gate)


@dataclass(frozen=True, slots=True)
class AaveAccountData:
    """What ``Pool.getUserAccountData`` returns, plus the per-reserve legs behind it."""

    total_collateral_base: int  # totalCollateralBase
    total_debt_base: int  # totalDebtBase
    available_borrows_base: int  # availableBorrowsBase
    current_liquidation_threshold: int  # weighted LT, bps
    ltv: int  # weighted LTV, bps
    health_factor: int  # WAD, UINT256_MAX without debt
    collateral_legs: tuple[AaveLegValue, ...]  # collateral reserves (counted or not)
    debt_legs: tuple[AaveLegValue, ...]  # borrowed reserves


def _emode_for(market: AaveMarket, user: AaveUser) -> AaveEModeCategory | None:
    if user.emode_category == 0:
        return None
    return market.emode_categories.get(user.emode_category)


def _collateral_params(reserve: AaveReserve, emode: AaveEModeCategory | None) -> tuple[int, int]:
    """(LTV, LT) applied to a collateral reserve: the eMode ones iff the category covers it."""
    if emode is not None and emode.covers(reserve):
        return emode.ltv, emode.liquidation_threshold
    return reserve.ltv, reserve.liquidation_threshold


def account_data(market: AaveMarket, user: AaveUser) -> AaveAccountData:
    """Reproduce ``getUserAccountData`` to the wei for the market's revision."""
    if user.configuration == 0:
        return AaveAccountData(0, 0, 0, 0, 0, UINT256_MAX, (), ())
    legacy = market.revision < REVISION_V3_5
    lt_gate = market.revision < REVISION_V3_6
    emode = _emode_for(market, user)
    total_coll = total_debt = weighted_lt = weighted_ltv = 0
    coll_legs: list[AaveLegValue] = []
    debt_legs: list[AaveLegValue] = []
    configuration = user.configuration
    for rid, reserve in enumerate(market.reserves):
        bits = (configuration >> (2 * rid)) & 0b11  # bit 2i borrowing, 2i+1 collateral (``AaveUser``)
        if not bits or reserve is None:
            continue
        borrowing, collateral = bits & 1, bits & 2
        unit = 10**reserve.decimals
        if collateral:
            ltv, lt = _collateral_params(reserve, emode)
            counted = not (lt_gate and reserve.liquidation_threshold == 0)
            scaled = user.scaled_collateral.get(rid, 0)
            if legacy:
                balance = ray_mul(scaled, reserve.normalized_income)
            else:
                balance = ray_mul_floor(scaled, reserve.normalized_income)
            value = balance * reserve.price // unit
            if counted:
                total_coll += value
                if reserve.ltv != 0:
                    weighted_ltv += value * ltv
                weighted_lt += value * lt
            coll_legs.append(AaveLegValue(rid, balance, value, lt if counted else 0, counted))
        if borrowing:
            scaled = user.scaled_debt.get(rid, 0)
            if legacy:
                balance = ray_mul(scaled, reserve.normalized_debt)
                value = balance * reserve.price // unit
            else:
                balance = ray_mul_ceil(scaled, reserve.normalized_debt)
                value = ceil_div(balance * reserve.price, unit)
            total_debt += value
            debt_legs.append(AaveLegValue(rid, balance, value, 0, True))
    avg_ltv = weighted_ltv // total_coll if total_coll else 0
    avg_lt = weighted_lt // total_coll if total_coll else 0
    if total_debt == 0:
        hf = UINT256_MAX
    elif legacy:
        hf = wad_div(percent_mul(total_coll, avg_lt), total_debt)
    else:
        hf = wad_div(weighted_lt, total_debt) // PERCENTAGE_FACTOR
    # availableBorrows is informational (not part of any verdict): percentMul of the average LTV.
    borrowable = percent_mul(total_coll, avg_ltv)
    available = borrowable - total_debt if borrowable > total_debt else 0
    return AaveAccountData(total_coll, total_debt, available, avg_lt, avg_ltv, hf, tuple(coll_legs), tuple(debt_legs))


@dataclass(frozen=True, slots=True)
class AaveVerdict:
    """Whether some ``liquidationCall`` on the account passes the pool's validation at this block."""

    liquidatable: bool  # True iff at least one (collateral, debt) pair can be liquidated
    collateral_asset: str | None  # the largest liquidatable collateral, for a liquidationCall
    debt_asset: str | None  # the largest liquidatable debt
    reason: str  # "liquidatable" or why not (first failing rule)


def _reserve_usable(reserve: AaveReserve, now: int) -> bool:
    return reserve.active and not reserve.paused and reserve.grace_period_until < now


def liquidation_verdict(market: AaveMarket, user: AaveUser, data: AaveAccountData) -> AaveVerdict:
    """Apply ``validateLiquidationCall`` (PROTOCOLS.md §1.5, §1.7) over every reserve pair.

    HF < 1e18 strictly; both reserves active, unpaused and past their grace period; the collateral
    enabled for the user (and, through v3.5, with a non-zero reserve LT); debt in the debt reserve; and
    with a sentinel, HF < 0.95e18 or the sentinel allowing liquidations.
    """
    if data.health_factor >= WAD:
        return AaveVerdict(False, None, None, "health factor >= 1")
    if market.sentinel_allows_liquidation is False and data.health_factor >= AAVE_MIN_HF_LIQUIDATION_THRESHOLD:
        return AaveVerdict(False, None, None, "price oracle sentinel disallows liquidation")
    now = market.block_timestamp
    lt_gate = market.revision < REVISION_V3_6
    colls = []
    for leg in data.collateral_legs:
        reserve = market.reserves[leg.reserve_id]
        if reserve is None or not _reserve_usable(reserve, now):
            continue
        if lt_gate and reserve.liquidation_threshold == 0:
            # Through v3.5 a collateral with reserve LT 0 cannot be liquidated (PROTOCOLS.md §1.5).
            continue
        if leg.balance == 0:
            continue
        colls.append((leg.value_base, reserve.asset))
    debts = []
    for leg in data.debt_legs:
        reserve = market.reserves[leg.reserve_id]
        if reserve is None or not _reserve_usable(reserve, now) or leg.balance == 0:
            continue
        debts.append((leg.value_base, reserve.asset))
    if not colls:
        return AaveVerdict(False, None, None, "no liquidatable collateral reserve")
    if not debts:
        return AaveVerdict(False, None, None, "no liquidatable debt reserve")
    return AaveVerdict(True, max(colls)[1], max(debts)[1], "liquidatable")


def with_collateral_prices_scaled(market: AaveMarket, assets: set[str], numerator: int, denominator: int) -> AaveMarket:
    """The market with the oracle prices of ``assets`` multiplied by numerator/denominator (floored)."""
    reserves = tuple(
        replace(r, price=r.price * numerator // denominator) if r is not None and r.asset in assets else r
        for r in market.reserves
    )
    return replace(market, reserves=reserves)


def price_drop_to_liquidation(market: AaveMarket, user: AaveUser, data: AaveAccountData | None = None) -> float | None:
    """The uniform drop (0..1) of the user's collateral prices at which HF first falls below 1.

    Exact integer search over the rule above with a resolution of 1e-9; 0.0 when already below 1,
    None when no drop liquidates (no debt, or the debt falls with the collateral). ``data`` is
    ``account_data(market, user)`` when the caller has it already.
    """
    if data is None:
        data = account_data(market, user)
    if data.total_debt_base == 0:
        return None
    if data.health_factor < WAD:
        return 0.0
    reserves = market.reserves
    assets = {
        reserves[leg.reserve_id].asset  # type: ignore[union-attr]
        for leg in data.collateral_legs
        if leg.counted
    }
    if not assets:
        return None
    # Only prices move in the search: every leg's balance (and so which legs count, and their LTs) is the one in
    # ``data``. Each probe sums the legs' values at the scaled prices as ``account_data`` does on the market
    # ``with_collateral_prices_scaled`` returns, without building that market (the same integers, far faster).
    legacy = market.revision < REVISION_V3_5
    coll: list[tuple[int, int, int, int]] = []  # (balance, price, unit, LT): the counted legs, all in ``assets``
    for leg in data.collateral_legs:
        if leg.counted:
            r = reserves[leg.reserve_id]
            coll.append((leg.balance, r.price, 10**r.decimals, leg.liquidation_threshold))  # type: ignore[union-attr]
    debt: list[tuple[int, int, int]] = []  # (balance, price, unit): debt legs whose price moves too (a collateral asset)
    fixed_debt = 0  # value of the debt legs whose price stays
    for leg in data.debt_legs:
        r = reserves[leg.reserve_id]
        if r.asset in assets:  # type: ignore[union-attr]
            debt.append((leg.balance, r.price, 10**r.decimals))  # type: ignore[union-attr]
        else:
            fixed_debt += leg.value_base

    def liquidatable_at(keep: int, scale: int) -> bool:
        total_coll = weighted_lt = 0
        for balance, price, unit, lt in coll:
            value = balance * (price * keep // scale) // unit
            total_coll += value
            weighted_lt += value * lt
        total_debt = fixed_debt
        for balance, price, unit in debt:
            if legacy:
                total_debt += balance * (price * keep // scale) // unit
            else:
                total_debt -= -balance * (price * keep // scale) // unit  # ceil
        if total_debt == 0:
            return False  # health factor UINT256_MAX
        if legacy:  # wadDiv(percentMul(total, avgLT), debt), both half-up
            avg_lt = weighted_lt // total_coll if total_coll else 0
            return ((total_coll * avg_lt + HALF_PERCENT) // PERCENTAGE_FACTOR * WAD + total_debt // 2) // total_debt < WAD
        return (weighted_lt * WAD + total_debt // 2) // total_debt // PERCENTAGE_FACTOR < WAD  # wadDiv, then / 1e4

    if legacy or debt:
        # The verdict need not be monotone in the drop here (the legacy average LT is floored; a debt priced with
        # the collateral moves with it): the shared bisection, whose probes decide the answer.
        return uniform_price_drop(liquidatable_at)
    # From v3.5 on, with the debt's prices fixed, HF only falls with the prices: the boundary is unique, and any
    # search that keeps it bracketed finds the bisection's answer. HF is near-linear in the prices, so it starts
    # at the linear guess and widens the bracket from there: a handful of probes instead of ~32.
    return uniform_price_drop(liquidatable_at, guess=PRICE_DROP_RESOLUTION * WAD // data.health_factor)

