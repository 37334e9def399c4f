"""Per-address portfolios across protocols and chains: NLV, liquidation NLV, tiers, exposures, liquidation levels.

- **Market NLV**: the sum of the positions' stored NLV (collateral + supply + perp margin and PnL - debt - fees).
- **Liquidation NLV**: market NLV minus what a forced sale loses: every collateral, supply and perp leg (long
  or short notional) pays its asset's haircut (``risk.haircut``); debt is repaid at par. Each leg is
  valued as its own sale, as protocols liquidate positions one by one.
- **Lowest health factor** and the position it belongs to; the **tier** (``tier_of``) of that health factor,
  "liquidation" when any position is liquidatable.
- **Exposure per asset**: signed USD per price-book symbol (collateral, supply and long legs count +, debt
  and short legs -; a leg's symbol goes through the aliases, ``sETH`` -> ``WETH``). ``other`` is the rest of
  the NLV (a perp's USD side: entry notional, PnL and fees). Shares are exposure / market NLV (NLV > 0).
- **Liquidation levels**: all volatile (non-stable) oracle prices of the address's positions fall together
  by a drop ``d`` (multiplier ``1 - d``); each position is recomputed with its protocol's exact rule
  (``PositionModel.evaluate``). Reported: the smallest drop at which a first position is liquidatable, at
  which every position is, and at which the liquidation NLV reaches zero. Searched downwards on a 1 % grid
  from 0 to 99.99 %, then refined by bisection inside the first grid step where it holds, to 1e-4.

Pure: positions come in as anything with ``.row`` (``store.db.PositionRow``'s fields) and ``.model``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, Protocol

from indexer.constants import UINT256_MAX, USD_SCALE, WAD
from indexer.domain import PositionLeg
from indexer.risk.haircut import HaircutBook
from indexer.risk.reprice.base import Evaluation, PositionModel, first_true

TIERS = ("healthy", "warning", "critical", "liquidation")  # best to worst
POSITIVE_SIDES = ("collateral", "supply", "long")  # legs that add to the exposure
NEGATIVE_SIDES = ("debt", "short")
SOLD_SIDES = ("collateral", "supply", "long", "short")  # legs a liquidation sells (or closes): they pay the haircut
OTHER = "other"  # exposure key of the NLV that no leg shows (a perp's USD side)

# Liquidation level search: drops in units of 1e-4, a 1 % grid, never a zero price (at most 99.99 %).
LEVEL_RESOLUTION = 10_000
LEVEL_GRID_STEP = 100
LEVEL_MAX_DROP = LEVEL_RESOLUTION - 1


def tier_of(health_factor: int, liquidatable: bool, *, warning_hf: int, critical_hf: int) -> str:
    """The status tier of a health factor (WAD) and the protocol's verdict.

    >>> tier_of(2 * WAD, False, warning_hf=125 * 10**16, critical_hf=105 * 10**16)
    'healthy'
    >>> tier_of(12 * 10**17, False, warning_hf=125 * 10**16, critical_hf=105 * 10**16)
    'warning'
    >>> tier_of(104 * 10**16, False, warning_hf=125 * 10**16, critical_hf=105 * 10**16)
    'critical'
    >>> tier_of(WAD, True, warning_hf=125 * 10**16, critical_hf=105 * 10**16)   # perps: HF 1.0 is liquidatable
    'liquidation'
    """
    if liquidatable:
        return "liquidation"
    if health_factor < critical_hf:
        return "critical"
    if health_factor < warning_hf:
        return "warning"
    return "healthy"


class StoredLike(Protocol):
    """A stored position with its model (``store.risk_state.StoredPosition``)."""

    @property
    def row(self) -> Any: ...  # store.db.PositionRow

    @property
    def model(self) -> PositionModel | None: ...


@dataclass(frozen=True, slots=True)
class LegValue:
    """One leg as the portfolio counts it."""

    symbol: str  # the leg's own symbol
    side: str  # collateral, supply, debt, long, short
    value_usd: int  # USD x 1e18, >= 0


def leg_values(legs: Iterable[PositionLeg | Mapping[str, Any]]) -> list[LegValue]:
    """Legs of a model's evaluation (``PositionLeg``) or of a stored row (JSON objects, values as text)."""
    out = []
    for leg in legs:
        if isinstance(leg, PositionLeg):
            out.append(LegValue(leg.symbol, leg.side, max(0, leg.value_usd)))
        else:
            out.append(LegValue(str(leg["symbol"]), str(leg["side"]), max(0, int(leg["value_usd"]))))
    return out


def haircut_loss(legs: Iterable[LegValue], book: HaircutBook) -> int:
    """What a forced sale of the sold legs loses: sum of value - liquidation value, USD x 1e18 (>= 0)."""
    return sum(leg.value_usd - book.liquidation_value(leg.symbol, leg.value_usd) for leg in legs if leg.side in SOLD_SIDES)


def exposures(legs: Iterable[LegValue], book: HaircutBook) -> dict[str, int]:
    """Signed USD exposure per price-book symbol."""
    out: dict[str, int] = defaultdict(int)
    for leg in legs:
        if leg.side in POSITIVE_SIDES:
            out[book.canonical(leg.symbol)] += leg.value_usd
        elif leg.side in NEGATIVE_SIDES:
            out[book.canonical(leg.symbol)] -= leg.value_usd
    return dict(out)


@dataclass(frozen=True, slots=True)
class LiquidationPrice:
    """The oracle answer of one volatile asset at which a position becomes liquidatable, the other prices as
    stored (``PositionModel.liquidation_answer``: exact; liquidatable there, not one unit back)."""

    symbol: str  # asset symbol as the position's legs name it
    direction: str  # "falling" (collateral, longs) or "rising" (debt, shorts): the move that hurts
    answer: int  # the oracle's raw answer now
    liquidation_answer: int | None  # the raw answer at which it becomes liquidatable; None: no answer in range does
    decimals: int  # decimals of both answers
    unit: str  # what the answers mean (a USD price, or a Morpho market's collateral/loan ratio)

    @property
    def move(self) -> float | None:
        """The relative move from now to the liquidation answer (negative: a fall); None without one."""
        if self.liquidation_answer is None or self.answer == 0:
            return None
        return self.liquidation_answer / self.answer - 1

    def to_json(self) -> dict[str, Any]:
        return {
            "symbol": self.symbol,
            "direction": self.direction,
            "answer": str(self.answer),
            "liquidation_answer": None if self.liquidation_answer is None else str(self.liquidation_answer),
            "decimals": self.decimals,
            "unit": self.unit,
            "price": self.answer / 10**self.decimals,
            "liquidation_price": None if self.liquidation_answer is None else self.liquidation_answer / 10**self.decimals,
            "move": self.move,
        }


def liquidation_prices(model: PositionModel, book: HaircutBook) -> tuple[LiquidationPrice, ...]:
    """Per volatile asset of the position (stablecoins left out), the price at which it becomes liquidatable."""
    out = []
    for _, op in sorted(model.oracle_prices().items()):
        if book.is_stable(op.symbol):
            continue
        out.append(LiquidationPrice(op.symbol, op.direction, op.answer, model.liquidation_answer(op.symbol), op.decimals, op.unit))
    return tuple(out)


@dataclass(frozen=True, slots=True)
class PositionRisk:
    """One position of a portfolio."""

    protocol: str  # protocol instance
    kind: str  # adapter kind
    chain: str  # chain name
    market: str  # market id ("" for single-market instances)
    health_factor: int  # WAD; UINT256_MAX without debt
    liquidatable: bool  # the protocol's verdict
    tier: str  # tier_of
    nlv_usd: int  # market NLV, USD x 1e18
    liquidation_nlv_usd: int  # NLV minus the haircut loss of the sold legs, USD x 1e18
    modelled: bool  # its snapshot stored the rule's inputs (liquidation levels can recompute it)
    liquidation_prices: tuple[LiquidationPrice, ...] = ()  # per volatile asset; computed with the levels


@dataclass(frozen=True, slots=True)
class AssetShare:
    """The address's net exposure to one asset."""

    symbol: str  # price-book symbol, or ``OTHER``
    exposure_usd: int  # signed, USD x 1e18
    share: float | None  # exposure / market NLV; None when the NLV is not positive


@dataclass(frozen=True, slots=True)
class PortfolioLevels:
    """Uniform drops (0..1, multiples of 1e-4) of every volatile price of the address's positions."""

    first_liquidation: float | None  # a first position becomes liquidatable (0: one is already); None: not up to 99.99 %
    first_position: tuple[str, str] | None  # (protocol, market) of that position
    all_liquidatable: float | None  # every modelled position is liquidatable; None: some never is
    liquidation_nlv_zero: float | None  # liquidation NLV reaches zero or below; None: it stays positive
    shocked: tuple[str, ...]  # the symbols shocked (as the models name them)
    unmodelled: int  # positions without stored state: in the NLV at their current values, never liquidated


@dataclass(frozen=True, slots=True)
class Portfolio:
    """One address across protocols and chains."""

    address: str  # account, checksummed
    positions: tuple[PositionRisk, ...]  # by protocol, market
    market_nlv_usd: int  # sum of the positions' NLV, USD x 1e18
    liquidation_nlv_usd: int  # sum of their liquidation NLV, USD x 1e18
    collateral_usd: int  # sum of collateral, USD x 1e18
    debt_usd: int  # sum of debt, USD x 1e18
    lowest_health_factor: int  # WAD; UINT256_MAX when no position has debt
    lowest_position: tuple[str, str]  # (protocol, market) with the lowest health factor
    liquidatable: int  # positions liquidatable now
    tier: str  # tier_of(lowest health factor, any liquidatable)
    assets: tuple[AssetShare, ...]  # largest absolute exposure first, ``other`` last
    levels: PortfolioLevels | None = field(default=None)  # None when not asked for

    @property
    def chains(self) -> tuple[str, ...]:
        return tuple(sorted({p.chain for p in self.positions}))

    def to_json(self) -> dict[str, Any]:
        """JSON object: USD as floats, health factors as integer strings (x 1e18) or "inf" plus a float."""
        return {
            "address": self.address,
            "chains": list(self.chains),
            "market_nlv_usd": _usd(self.market_nlv_usd),
            "liquidation_nlv_usd": _usd(self.liquidation_nlv_usd),
            "collateral_usd": _usd(self.collateral_usd),
            "debt_usd": _usd(self.debt_usd),
            "lowest_health_factor": _hf(self.lowest_health_factor),
            "lowest_health_factor_float": _hf_float(self.lowest_health_factor),
            "lowest_position": {"protocol": self.lowest_position[0], "market": self.lowest_position[1]},
            "tier": self.tier,
            "liquidatable": self.liquidatable,
            "assets": [{"symbol": a.symbol, "exposure_usd": _usd(a.exposure_usd), "share": a.share} for a in self.assets],
            "positions": [
                {
                    "protocol": p.protocol,
                    "kind": p.kind,
                    "chain": p.chain,
                    "market": p.market,
                    "health_factor": _hf(p.health_factor),
                    "liquidatable": p.liquidatable,
                    "tier": p.tier,
                    "nlv_usd": _usd(p.nlv_usd),
                    "liquidation_nlv_usd": _usd(p.liquidation_nlv_usd),
                    "modelled": p.modelled,
                    "liquidation_prices": [lp.to_json() for lp in p.liquidation_prices],
                }
                for p in self.positions
            ],
            "levels": None
            if self.levels is None
            else {
                "first_liquidation": self.levels.first_liquidation,
                "first_position": None
                if self.levels.first_position is None
                else {"protocol": self.levels.first_position[0], "market": self.levels.first_position[1]},
                "all_liquidatable": self.levels.all_liquidatable,
                "liquidation_nlv_zero": self.levels.liquidation_nlv_zero,
                "shocked": list(self.levels.shocked),
                "unmodelled": self.levels.unmodelled,
            },
        }


def _usd(value: int) -> float:
    return value / USD_SCALE


def _hf(hf: int) -> str:
    return "inf" if hf == UINT256_MAX else str(hf)


def _hf_float(hf: int) -> float | None:
    return None if hf == UINT256_MAX else hf / WAD


def position_risk(stored: StoredLike, book: HaircutBook, *, warning_hf: int, critical_hf: int, prices: bool = False) -> PositionRisk:
    """One stored position's tier and liquidation NLV (from its stored legs); with ``prices``, also the
    liquidation price of each volatile asset (from its model)."""
    r = stored.row
    loss = haircut_loss(leg_values(r.legs), book)
    return PositionRisk(
        protocol=r.protocol,
        kind=r.kind,
        chain=r.chain,
        market=r.market,
        health_factor=r.health_factor,
        liquidatable=r.liquidatable,
        tier=tier_of(r.health_factor, r.liquidatable, warning_hf=warning_hf, critical_hf=critical_hf),
        nlv_usd=r.nlv_usd,
        liquidation_nlv_usd=r.nlv_usd - loss,
        modelled=stored.model is not None,
        liquidation_prices=liquidation_prices(stored.model, book) if prices and stored.model is not None else (),
    )


def build_portfolio(
    stored: Iterable[StoredLike], book: HaircutBook, *, warning_hf: int, critical_hf: int, levels: bool = True
) -> Portfolio:
    """The portfolio of one address's positions (``stored`` must be non-empty and of one address); ``levels``
    adds its liquidation levels and each position's liquidation prices."""
    items = sorted(stored, key=lambda s: (s.row.protocol, s.row.market, s.row.chain))
    if not items:
        raise ValueError("a portfolio needs at least one position")
    addresses = {s.row.address for s in items}
    if len(addresses) != 1:
        raise ValueError(f"positions of several addresses: {sorted(addresses)}")
    risks = tuple(position_risk(s, book, warning_hf=warning_hf, critical_hf=critical_hf, prices=levels) for s in items)
    nlv = sum(p.nlv_usd for p in risks)
    lowest = min(risks, key=lambda p: p.health_factor)
    any_liquidatable = any(p.liquidatable for p in risks)
    exposure: dict[str, int] = defaultdict(int)
    for s in items:
        for symbol, value in exposures(leg_values(s.row.legs), book).items():
            exposure[symbol] += value
    rest = nlv - sum(exposure.values())
    shares = sorted(
        (AssetShare(sym, value, value / nlv if nlv > 0 else None) for sym, value in exposure.items() if value != 0),
        key=lambda a: (-abs(a.exposure_usd), a.symbol),
    )
    if rest != 0:
        shares.append(AssetShare(OTHER, rest, rest / nlv if nlv > 0 else None))
    return Portfolio(
        address=items[0].row.address,
        positions=risks,
        market_nlv_usd=nlv,
        liquidation_nlv_usd=sum(p.liquidation_nlv_usd for p in risks),
        collateral_usd=sum(s.row.collateral_usd for s in items),
        debt_usd=sum(s.row.debt_usd for s in items),
        lowest_health_factor=lowest.health_factor,
        lowest_position=(lowest.protocol, lowest.market),
        liquidatable=sum(p.liquidatable for p in risks),
        tier=tier_of(lowest.health_factor, any_liquidatable, warning_hf=warning_hf, critical_hf=critical_hf),
        assets=tuple(shares),
        levels=portfolio_levels(items, book) if levels else None,
    )


def build_portfolios(
    stored: Iterable[StoredLike], book: HaircutBook, *, warning_hf: int, critical_hf: int, levels: bool = False
) -> list[Portfolio]:
    """One portfolio per address of ``stored``, by address. ``levels`` also searches each address's
    liquidation levels (a few hundred model evaluations per position)."""
    by_address: dict[str, list[StoredLike]] = defaultdict(list)
    for s in stored:
        by_address[s.row.address].append(s)
    return [build_portfolio(by_address[a], book, warning_hf=warning_hf, critical_hf=critical_hf, levels=levels) for a in sorted(by_address)]


# --- liquidation levels -----------------------------------------------------------------------------------
def volatile_shocks(model: PositionModel, book: HaircutBook, multiplier: Fraction) -> dict[str, Fraction]:
    """``multiplier`` for every non-stable oracle price the model uses (symbols as the model names them)."""
    return {op.symbol: multiplier for op in model.oracle_prices().values() if not book.is_stable(op.symbol)}


def _first_drop(holds: Callable[[int], bool]) -> int | None:
    """The smallest drop (units of 1e-4) at which ``holds``: the first 1 % grid point where it holds, then
    bisection down to the previous grid point (assumes no re-crossing inside one grid step)."""
    if holds(0):
        return 0
    prev = 0
    for g in [*range(LEVEL_GRID_STEP, LEVEL_MAX_DROP, LEVEL_GRID_STEP), LEVEL_MAX_DROP]:
        if holds(g):
            return first_true(holds, prev, g)  # not at prev, at g
        prev = g
    return None


def portfolio_levels(stored: Iterable[StoredLike], book: HaircutBook) -> PortfolioLevels:
    """The address's liquidation levels (see the module docstring)."""
    items = list(stored)
    modelled = [s for s in items if s.model is not None]
    models = [s.model for s in items if s.model is not None]
    fixed = sum(s.row.nlv_usd - haircut_loss(leg_values(s.row.legs), book) for s in items if s.model is None)
    cache: dict[tuple[int, int], Evaluation] = {}

    def evaluation(i: int, drop: int) -> Evaluation:
        key = (i, drop)
        if key not in cache:
            cache[key] = models[i].evaluate(volatile_shocks(models[i], book, Fraction(LEVEL_RESOLUTION - drop, LEVEL_RESOLUTION)))
        return cache[key]

    firsts = [_first_drop(lambda d, i=i: evaluation(i, d).liquidatable) for i in range(len(modelled))]

    def liquidation_nlv(drop: int) -> int:
        total = fixed
        for i in range(len(modelled)):
            ev = evaluation(i, drop)
            total += ev.nlv_usd - haircut_loss(leg_values(ev.legs), book)
        return total

    nlv_zero = _first_drop(lambda d: liquidation_nlv(d) <= 0) if items else None
    known = [(d, i) for i, d in enumerate(firsts) if d is not None]
    first = min(known) if known else None
    shocked = sorted({sym for m in models for sym in volatile_shocks(m, book, Fraction(1))})
    return PortfolioLevels(
        first_liquidation=None if first is None else first[0] / LEVEL_RESOLUTION,
        first_position=None if first is None else (modelled[first[1]].row.protocol, modelled[first[1]].row.market),
        all_liquidatable=max(firsts) / LEVEL_RESOLUTION if firsts and None not in firsts else None,  # type: ignore[type-var]
        liquidation_nlv_zero=None if nlv_zero is None else nlv_zero / LEVEL_RESOLUTION,
        shocked=tuple(shocked),
        unmodelled=len(items) - len(modelled),
    )
