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


def uncapped_pnl_usd(p: GmxPosition, index_price: tuple[int, int]) -> int:
    """``getPositionPnlUsd`` before the pool-wide cap: long at the index min price, short at the max."""
    value = p.size_in_tokens * (index_price[0] if p.is_long else index_price[1])
    return value - p.size_in_usd if p.is_long else p.size_in_usd - value


def pnl_usd_at(p: GmxPosition, index_price: tuple[int, int]) -> int:
    """The position's PnL at ``index_price``: the Reader's ``basePnlUsd`` at the prices it was read at;
    elsewhere the uncapped PnL, a positive one scaled by the cap ratio the Reader applied (GMX caps
    positive PnL pool-wide; the ratio is held, an estimate far from liquidation)."""
    if index_price == p.index_price:
        return p.base_pnl_usd
    pnl = uncapped_pnl_usd(p, index_price)
    read = uncapped_pnl_usd(p, p.index_price)
    if pnl > 0 and 0 <= p.base_pnl_usd < read:
        return pnl * p.base_pnl_usd // read
    return pnl


def cost_amount_at(p: GmxPosition, collateral_min: int) -> int:
    """``totalCostAmount`` (collateral units) with the collateral token's min price at ``collateral_min``:
    the position and borrowing fee amounts re-derived from their USD values as GMX derives them
    (``usd / collateralPrice.min``); the funding amount and the rest (UI fee, discounts) held."""
    now_min = p.collateral_price[0]
    if collateral_min == now_min:
        return p.total_cost_amount
    if collateral_min <= 0:
        return 0
    others = p.total_cost_amount - (p.position_fee_usd // now_min + p.borrowing_fee_usd // now_min + p.funding_fee_amount)
    return p.position_fee_usd // collateral_min + p.borrowing_fee_usd // collateral_min + p.funding_fee_amount + others


def remaining_at_prices(p: GmxPosition, index_price: tuple[int, int], collateral_price: tuple[int, int]) -> int:
    """Remaining collateral (1e30 USD) with the index and the collateral token priced independently
    (each a (min, max) pair per unit x 1e30); at the prices ``p`` was read at it is exactly
    ``remaining_collateral_usd(p)``. The fee USD values (pending borrowing in particular) are held: on
    chain they move a little with the prices (see ``BoundarySearch``)."""
    cmin = collateral_price[0]
    return p.collateral_amount * cmin + pnl_usd_at(p, index_price) + liquidation_impact(p) - cost_amount_at(p, cmin) * cmin


def remaining_at_index_price(p: GmxPosition, price: int, spread: tuple[int, int] | None = None) -> int:
    """Remaining collateral with the index price moved to ``price`` (min = max = price unless ``spread``
    gives (min - price, max - price)), the collateral repriced too when it is the index token, and the
    fee amounts re-derived from their USD values at the new collateral price as GMX derives them.
    PnL is not capped here (the cap only lowers positive PnL, far from liquidation)."""
    lo, hi = (price, price) if spread is None else (price + spread[0], price + spread[1])
    pnl = uncapped_pnl_usd(p, (lo, hi))
    cmin = lo if p.collateral_is_index else p.collateral_price[0]
    return p.collateral_amount * cmin + pnl + liquidation_impact(p) - cost_amount_at(p, cmin) * cmin


def liquidation_price(p: GmxPosition, start: int | None = None) -> int | None:
    """The model's index price (per unit x 1e30, no spread) nearest ``start`` (default: the current mid)
    at which the verdict flips: liquidatable there, not one unit towards safety (up for longs, down for
    shorts). For a position liquidatable now it is the price it must recover to, less one unit. None
    when no positive price liquidates it (e.g. a long whose collateral alone covers the threshold).

    The model holds the fee USD values of ``p`` fixed, so it is exact near the price ``p`` was read at;
    ``BoundarySearch`` re-reads the position at the model's answer until the chain agrees.
    """

    def under(price: int) -> bool:
        return is_liquidatable_remaining(p, remaining_at_index_price(p, price))[0]

    s = 1 if p.is_long else -1
    x = max(1, (p.index_price[0] + p.index_price[1]) // 2 if start is None else start)
    step = 1
    if under(x):  # walk towards safety until healthy
        lo = x
        while True:
            hi = lo + s * step
            if hi < 1 or step > 2**200:
                return None
            if not under(hi):
                break
            lo, step = hi, step * 2
    else:  # walk towards danger until liquidatable
        hi = x
        while True:
            lo = max(1, hi - s * step)
            if under(lo):
                break
            if lo == 1 or step > 2**200:
                return None
            hi, step = lo, step * 2
    while abs(hi - lo) > 1:  # under(lo), not under(hi)
        m = (lo + hi) // 2
        if under(m):
            lo = m
        else:
            hi = m
    return lo


@dataclass(slots=True)
class BoundarySearch:
    """Settles a position's liquidation index price with verdicts the protocol itself computes.

    The model (``liquidation_price``) holds the pending borrowing rate fixed; on-chain that rate (and the
    pending funding amount, divided by the collateral token's price) moves with the prices passed in.
    Each round the caller evaluates ``propose()`` (x and the next unit towards safety) with the Reader at
    those prices and reports the verdict at both, plus the model's answer
    re-anchored on what the Reader returned at x. It ends when x is liquidatable and x + toward_safety is
    not, the definition the tests check. The proposals are kept inside the bracket of points the chain
    has classified; a proposal outside it, or a round that did not halve it, is replaced by bisection,
    which always ends at an adjacent pair.

    >>> truth = lambda x: x <= 1234  # liquidatable at and below 1234
    >>> s = BoundarySearch(start=1000, toward_safety=1)
    >>> while s.result is None and not s.failed:
    ...     a, b = (truth(x) for x in s.propose())
    ...     s.observe(a, b, proposal=s.x + 100)  # a poor model: bisection finishes the job
    >>> s.result
    1234
    """

    start: int
    toward_safety: int  # +1: safer as the price rises (longs), -1: shorts
    x: int = 0
    liq: int | None = None  # the chain says liquidatable here ...
    safe: int | None = None  # ... and healthy here; liq is before safe in the toward_safety direction
    result: int | None = None
    failed: bool = False
    last_width: int | None = None
    stride: int = 1

    def __post_init__(self) -> None:
        self.x = max(1, self.start)

    def propose(self) -> tuple[int, int]:
        return self.x, self.x + self.toward_safety

    def _note(self, price: int, liquidatable: bool) -> None:
        s = self.toward_safety
        inside_liq = self.liq is None or (price - self.liq) * s > 0
        inside_safe = self.safe is None or (self.safe - price) * s > 0
        if liquidatable and inside_liq and inside_safe:
            self.liq = price
        elif not liquidatable and inside_safe and inside_liq:
            self.safe = price

    def observe(self, at_x: bool, at_next: bool, proposal: int | None) -> None:
        s, x = self.toward_safety, self.x
        if at_x and not at_next:
            self.result = x
            return
        self._note(x, at_x)
        self._note(x + s, at_next)
        nxt = proposal
        if self.liq is not None and self.safe is not None:
            width = (self.safe - self.liq) * s
            if width == 1:
                self.result = self.liq
                return
            halved = self.last_width is None or width * 2 <= self.last_width
            if nxt is None or not 0 < (nxt - self.liq) * s < width or not halved:
                nxt = self.liq + s * (width // 2)  # bisection
            self.last_width = width
        else:  # one side known: a proposal on the known side gives way to a doubling step past it
            self.stride *= 2
            if self.liq is not None and (nxt is None or (nxt - self.liq) * s <= 0):
                nxt = self.liq + s * self.stride
            elif self.safe is not None and (nxt is None or (self.safe - nxt) * s <= 0):
                nxt = self.safe - s * self.stride
        if nxt < 1:
            self.failed = True
            return
        self.x = nxt
