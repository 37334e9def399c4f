"""Liquidation cascades: liquidations sell collateral, the sales move prices, lower prices liquidate more.

Start from a scenario's shocked prices and repeat, each round at that round's prices:

1. every position not yet liquidated is recomputed with its exact model (``model.evaluate``);
2. each liquidatable one is liquidated whole, by a simple rule per position type:
   - **debt against collateral** (lending: the position has debt legs): the liquidator repays the whole
     debt ``D`` (close factor 1: the cascade asks what the eventual liquidations sell) and seizes collateral
     worth ``min(C, D * (1 + bonus))``, taken from the collateral legs in proportion to their value; when
     the collateral falls short (``C < D * (1 + bonus)``) the debt it does not cover, ``D - C / (1 + bonus)``,
     is bad debt. ``bonus`` is the kind's liquidation bonus (``LiquidationRule``, defaults below);
   - **perps** (no debt legs): the position is closed; its negative remaining margin (``max(0, -NLV)``)
     is bad debt. Nothing is sold on the spot market (the margin is the system's dollar or stays in the pool);
3. the seized collateral is sold; the cumulative sale ``S_a`` (USD at the prices it was sold at) of each
   price-book asset moves its price by square-root impact, ``impact_a = min(1, k_a * sqrt(S_a / depth_a))``,
   with ``k`` and ``depth`` from the asset's liquidation value model (``risk.haircut.HaircutModel``'s
   ``impact_coefficient`` and ``depth_usd``): the next round's multiplier is ``shock_a * (1 - impact_a)``.

Prices only fall and each position is liquidated at most once, so the rounds reach a fixed point (a round
that liquidates nothing) within as many rounds as there are positions; ``max_rounds`` caps them anyway. The
impact is exact rational arithmetic (an integer square root at 1e-18), so the verdicts stay exact.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from indexer.constants import USD_SCALE
from indexer.risk.reprice.base import Evaluation, symbol_key
from indexer.risk.scenarios import Scenario, book_symbol, expand_shocks
from indexer.risk.stress import Skipped, StoredLike, hf_json

DEFAULT_MAX_ROUNDS = 50  # a cap well above the rounds real books take (each round must liquidate someone)
_SQRT_SCALE = 10**18  # resolution of the impact's square root


@dataclass(frozen=True, slots=True)
class LiquidationRule:
    """How a kind's liquidation seizes collateral: ``debt * (1 + bonus)``."""

    bonus: Fraction  # liquidation bonus (incentive) over the repaid debt, e.g. 1/20 = 5 %


# Liquidation bonuses by adapter kind: typical values of the protocols' main markets.
# Aave V3: 5 % (WETH/WBTC reserves' liquidationBonus 105 %); Compound V3: absorb values collateral at its
# liquidationFactor (~93 %), a 7 % discount; Morpho Blue: the liquidation incentive factor of a 86 % LLTV
# market, min(1.15, 1 / (0.3 * 0.86 + 0.7)) ~ 1.044.
DEFAULT_RULES: dict[str, LiquidationRule] = {
    "aave_v3": LiquidationRule(Fraction(5, 100)),
    "compound_v3": LiquidationRule(Fraction(7, 100)),
    "morpho_blue": LiquidationRule(Fraction(44, 1000)),
}
DEFAULT_RULE = LiquidationRule(Fraction(5, 100))


@dataclass(frozen=True, slots=True)
class SqrtImpact:
    """Square-root price impact of selling an asset: ``min(1, coefficient * sqrt(sold / depth))``."""

    coefficient: Fraction  # impact of a sale of ``depth_usd``
    depth_usd: int  # market depth, USD x 1e18 (> 0)

    def drop(self, sold_usd: int) -> Fraction:
        """The price's fractional fall after selling ``sold_usd`` (USD x 1e18) in total.

        >>> SqrtImpact(Fraction(1), 1_000_000 * 10**18).drop(40_000 * 10**18)
        Fraction(1, 5)
        """
        if sold_usd <= 0:
            return Fraction(0)
        root = Fraction(math.isqrt(sold_usd * _SQRT_SCALE**2 // self.depth_usd), _SQRT_SCALE)
        return min(Fraction(1), self.coefficient * root)


def impact_from_haircuts(book: Any) -> Callable[[str], SqrtImpact]:
    """Impact per book symbol from a ``HaircutBook``'s models (``impact_coefficient``, ``depth_usd``)."""

    def impact(symbol: str) -> SqrtImpact:
        m = book.model(symbol)
        return SqrtImpact(Fraction(str(m.impact_coefficient)), int(Fraction(str(m.depth_usd)) * USD_SCALE))

    return impact


@dataclass(frozen=True, slots=True)
class Liquidation:
    """One position liquidated in a round."""

    protocol: str
    kind: str
    address: str
    market: str
    health_factor: int  # WAD, at the round's prices (JSON: integer string, "inf" without debt)
    debt_usd: int  # repaid or written off, USD x 1e18
    collateral_usd: int  # the position's collateral at the round's prices
    seized_usd: int  # collateral seized (and sold, for lending positions)
    bad_debt_usd: int  # debt left uncovered

    def to_json(self) -> dict[str, Any]:
        return {
            "protocol": self.protocol,
            "kind": self.kind,
            "address": self.address,
            "market": self.market,
            "health_factor": hf_json(self.health_factor),
            "debt_usd": self.debt_usd / USD_SCALE,
            "collateral_usd": self.collateral_usd / USD_SCALE,
            "seized_usd": self.seized_usd / USD_SCALE,
            "bad_debt_usd": self.bad_debt_usd / USD_SCALE,
        }


@dataclass(frozen=True, slots=True)
class CascadeRound:
    """One round: the prices it was evaluated at, whom it liquidated, what was sold, the bad debt."""

    number: int  # 0 = at the scenario's prices
    multipliers: dict[str, Fraction]  # price multiplier per book symbol (vs the stored prices)
    liquidations: tuple[Liquidation, ...]
    sold_usd: dict[str, int]  # collateral sold per book symbol, USD x 1e18
    bad_debt_usd: int  # created in this round

    def to_json(self) -> dict[str, Any]:
        return {
            "round": self.number,
            "multipliers": {k: float(v) for k, v in sorted(self.multipliers.items())},
            "positions_liquidated": len(self.liquidations),
            "sold_usd": {k: v / USD_SCALE for k, v in sorted(self.sold_usd.items())},
            "bad_debt_usd": self.bad_debt_usd / USD_SCALE,
            "liquidations": [liq.to_json() for liq in self.liquidations],
        }


@dataclass(frozen=True, slots=True)
class CascadeResult:
    """The rounds of a cascade and where it stopped."""

    scenario: Scenario
    rounds: tuple[CascadeRound, ...]  # rounds that liquidated someone
    final_multipliers: dict[str, Fraction]  # prices at the fixed point (or after the last round)
    converged: bool  # a round liquidated nothing (False: stopped at max_rounds)
    positions: int  # positions evaluated
    skipped: tuple[Skipped, ...] = field(default=())  # positions without a model
    assets: tuple[str, ...] = ()  # book symbols the positions' models price (the prices that matter here)

    @property
    def liquidated(self) -> int:
        return sum(len(r.liquidations) for r in self.rounds)

    @property
    def bad_debt_usd(self) -> int:
        return sum(r.bad_debt_usd for r in self.rounds)

    @property
    def sold_usd(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for r in self.rounds:
            for k, v in r.sold_usd.items():
                out[k] = out.get(k, 0) + v
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario.to_json(),
            "converged": self.converged,
            "positions": self.positions,
            "skipped": [s.to_json() for s in self.skipped],
            "positions_liquidated": self.liquidated,
            "bad_debt_usd": self.bad_debt_usd / USD_SCALE,
            "sold_usd": {k: v / USD_SCALE for k, v in sorted(self.sold_usd.items())},
            "final_multipliers": {k: float(v) for k, v in sorted(self.final_multipliers.items())},
            "rounds": [r.to_json() for r in self.rounds],
        }


def liquidate(ev: Evaluation, rule: LiquidationRule, aliases: Mapping[str, str]) -> tuple[int, int, dict[str, int]]:
    """(seized USD, bad debt USD, sold USD per book symbol) of liquidating a position evaluated as ``ev``."""
    collateral_legs = [leg for leg in ev.legs if leg.side == "collateral" and leg.value_usd > 0]
    if not any(leg.side == "debt" for leg in ev.legs):  # a perp: closed, no spot sale
        return 0, max(0, -ev.nlv_usd), {}
    debt = ev.debt_usd
    collateral = sum(leg.value_usd for leg in collateral_legs)
    factor = 1 + rule.bonus
    wanted = debt * factor
    if collateral >= wanted:
        seized = math.floor(wanted)
        bad = 0
    else:
        seized = collateral
        bad = max(0, debt - math.floor(collateral / factor))
    sold: dict[str, int] = {}
    if collateral:
        for leg in collateral_legs:
            name = book_symbol(leg.symbol, aliases)
            sold[name] = sold.get(name, 0) + seized * leg.value_usd // collateral
    return seized, bad, sold


def run_cascade(
    stored: Iterable[StoredLike],
    scenario: Scenario,
    *,
    impact: Callable[[str], SqrtImpact],
    aliases: Mapping[str, str],
    rules: Mapping[str, LiquidationRule] | None = None,
    default_rule: LiquidationRule = DEFAULT_RULE,
    max_rounds: int = DEFAULT_MAX_ROUNDS,
) -> CascadeResult:
    """The cascade started by ``scenario`` (see the module docstring)."""
    if max_rounds < 1:
        raise ValueError(f"max_rounds must be >= 1, got {max_rounds}")
    kind_rules = {**DEFAULT_RULES, **(rules or {})}
    skipped: list[Skipped] = []
    live: list[Any] = []
    for sp in stored:
        if sp.model is None:
            skipped.append(Skipped(sp.row.protocol, sp.row.address, sp.row.market, "no stored state (snapshot taken by an older release)"))
        else:
            live.append(sp)
    base = {symbol_key(k): (k, m) for k, m in scenario.book_multipliers().items()}
    sold_total: dict[str, int] = {}  # by book symbol as named by the sales
    impacts: dict[str, SqrtImpact] = {}
    rounds: list[CascadeRound] = []
    done: set[int] = set()
    converged = False
    current = _multipliers(base, sold_total, impacts, impact)
    for number in range(max_rounds):
        shocks = expand_shocks(current, aliases)
        liquidations: list[Liquidation] = []
        round_sold: dict[str, int] = {}
        round_bad = 0
        for i, sp in enumerate(live):
            if i in done:
                continue
            ev = sp.model.evaluate(shocks)
            if not ev.liquidatable:
                continue
            done.add(i)
            rule = kind_rules.get(sp.row.kind, default_rule)
            seized, bad, sold = liquidate(ev, rule, aliases)
            collateral = sum(leg.value_usd for leg in ev.legs if leg.side == "collateral")
            liquidations.append(Liquidation(sp.row.protocol, sp.row.kind, sp.row.address, sp.row.market, ev.health_factor, ev.debt_usd, collateral, seized, bad))
            round_bad += bad
            for k, v in sold.items():
                round_sold[k] = round_sold.get(k, 0) + v
        if not liquidations:
            converged = True
            break
        rounds.append(CascadeRound(number, dict(current), tuple(liquidations), round_sold, round_bad))
        for k, v in round_sold.items():
            sold_total[k] = sold_total.get(k, 0) + v
        current = _multipliers(base, sold_total, impacts, impact)
    assets = sorted({book_symbol(op.symbol, aliases) for sp in live for op in sp.model.oracle_prices().values()})
    return CascadeResult(scenario, tuple(rounds), current, converged, len(live), tuple(skipped), tuple(assets))


def _multipliers(
    base: Mapping[str, tuple[str, Fraction]], sold: Mapping[str, int], cache: dict[str, SqrtImpact], impact: Callable[[str], SqrtImpact]
) -> dict[str, Fraction]:
    """Book multipliers: the scenario's shock times ``1 - impact`` of the cumulative sales."""
    out = {name: m for name, m in base.values()}
    names = {symbol_key(k): k for k in out}
    for symbol, amount in sold.items():
        if symbol not in cache:
            cache[symbol] = impact(symbol)
        key = symbol_key(symbol)
        name = names.setdefault(key, symbol)
        out[name] = out.get(name, Fraction(1)) * (1 - cache[symbol].drop(amount))
    return {k: v for k, v in out.items() if v != 1}
