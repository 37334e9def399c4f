"""Stress tests: every stored position recomputed with its protocol's exact rule under a scenario's shocks.

For each position with a model (``risk.reprice``) the verdict and values at the stored prices ("before") and
at the shocked prices ("after") come from ``model.evaluate``, i.e. the protocol's own integer arithmetic.
Reported per position, per protocol instance, per asset and in total:

- **newly liquidatable**: liquidatable after the shock, not before;
- **collateral liquidatable**: the collateral (legs of side ``collateral``, valued at the shocked prices) of
  the positions liquidatable after the shock, and of the newly liquidatable ones;
- **bad debt**: debt above collateral, ``max(0, -NLV)`` at the shocked prices (for perps the negative
  remaining margin), and **after liquidation costs**: ``max(0, -(NLV - cost))`` where ``cost`` is what the
  legs a liquidation sells or closes lose in a forced sale (``value - book.liquidation_value(asset, value)``
  per collateral, supply and perp leg, as the portfolio's liquidation NLV counts them).
  "Created" is after minus before.

Per asset (the price-book symbol a leg's symbol aliases to): collateral by the collateral legs' asset; bad
debt attributed to the position's debt legs in proportion to their value (to its collateral legs when it
has no debt leg, as perps), floored, so the per-asset sums may fall short of the totals by a few 1e-18 USD.

Positions without a model (their snapshot stored no state) are counted as skipped, with the reason.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, Protocol

from indexer.constants import UINT256_MAX, USD_SCALE
from indexer.domain import PositionLeg
from indexer.risk.reprice.base import Evaluation, PositionModel
from indexer.risk.portfolio import SOLD_SIDES
from indexer.risk.scenarios import Scenario, book_symbol


class StoredLike(Protocol):
    """What the risk functions read of a stored position (``store.risk_state.StoredPosition``)."""

    @property
    def row(self) -> Any: ...  # store.db.PositionRow: address, protocol, kind, market, liquidatable, health_factor, legs

    @property
    def model(self) -> PositionModel | None: ...


class HaircutLike(Protocol):
    """A haircut book (``risk.haircut.HaircutBook``): what an asset fetches in a forced sale."""

    def liquidation_value(self, symbol: str, value_usd: int) -> int: ...


@dataclass(frozen=True, slots=True)
class PositionStress:
    """One position before and after the shock."""

    protocol: str  # protocol instance
    kind: str  # adapter kind
    address: str  # account
    market: str  # market id ("" for single-market instances)
    stored_liquidatable: bool  # the stored verdict (the snapshot's)
    liquidatable_before: bool  # the model's verdict at the stored prices
    liquidatable_after: bool  # the model's verdict at the shocked prices
    health_factor_before: int  # WAD; UINT256_MAX without debt
    health_factor_after: int  # WAD; UINT256_MAX without debt
    collateral_before_usd: int  # USD x 1e18
    collateral_after_usd: int  # USD x 1e18
    debt_after_usd: int  # USD x 1e18
    nlv_before_usd: int  # USD x 1e18, signed
    nlv_after_usd: int  # USD x 1e18, signed
    bad_debt_before_usd: int  # max(0, -NLV) before, USD x 1e18
    bad_debt_after_usd: int  # max(0, -NLV) after
    bad_debt_costs_before_usd: int  # max(0, -(NLV - liquidation cost)) before
    bad_debt_costs_after_usd: int  # ... after

    @property
    def newly_liquidatable(self) -> bool:
        return self.liquidatable_after and not self.liquidatable_before

    def to_json(self) -> dict[str, Any]:
        return {
            "protocol": self.protocol,
            "kind": self.kind,
            "address": self.address,
            "market": self.market,
            "stored_liquidatable": self.stored_liquidatable,
            "liquidatable_before": self.liquidatable_before,
            "liquidatable_after": self.liquidatable_after,
            "newly_liquidatable": self.newly_liquidatable,
            "health_factor_before": hf_json(self.health_factor_before),
            "health_factor_after": hf_json(self.health_factor_after),
            "collateral_before_usd": usd(self.collateral_before_usd),
            "collateral_after_usd": usd(self.collateral_after_usd),
            "debt_after_usd": usd(self.debt_after_usd),
            "nlv_before_usd": usd(self.nlv_before_usd),
            "nlv_after_usd": usd(self.nlv_after_usd),
            "bad_debt_after_usd": usd(self.bad_debt_after_usd),
            "bad_debt_created_usd": usd(self.bad_debt_after_usd - self.bad_debt_before_usd),
            "bad_debt_after_costs_usd": usd(self.bad_debt_costs_after_usd),
        }


@dataclass(slots=True)
class StressTotals:
    """Sums over a set of positions (a protocol instance, an asset, all). USD x 1e18."""

    positions: int = 0  # positions evaluated
    liquidatable_before: int = 0
    liquidatable_after: int = 0
    newly_liquidatable: int = 0
    collateral_liquidatable_usd: int = 0  # collateral (after prices) of positions liquidatable after the shock
    new_collateral_liquidatable_usd: int = 0  # ... of the newly liquidatable ones
    bad_debt_before_usd: int = 0
    bad_debt_after_usd: int = 0
    bad_debt_costs_before_usd: int = 0  # after liquidation costs
    bad_debt_costs_after_usd: int = 0
    skipped: int = 0  # positions without a model

    @property
    def bad_debt_created_usd(self) -> int:
        return self.bad_debt_after_usd - self.bad_debt_before_usd

    @property
    def bad_debt_costs_created_usd(self) -> int:
        return self.bad_debt_costs_after_usd - self.bad_debt_costs_before_usd

    def to_json(self) -> dict[str, Any]:
        return {
            "positions": self.positions,
            "skipped": self.skipped,
            "liquidatable_before": self.liquidatable_before,
            "liquidatable_after": self.liquidatable_after,
            "newly_liquidatable": self.newly_liquidatable,
            "collateral_liquidatable_usd": usd(self.collateral_liquidatable_usd),
            "new_collateral_liquidatable_usd": usd(self.new_collateral_liquidatable_usd),
            "bad_debt_before_usd": usd(self.bad_debt_before_usd),
            "bad_debt_after_usd": usd(self.bad_debt_after_usd),
            "bad_debt_created_usd": usd(self.bad_debt_created_usd),
            "bad_debt_after_costs_before_usd": usd(self.bad_debt_costs_before_usd),
            "bad_debt_after_costs_usd": usd(self.bad_debt_costs_after_usd),
            "bad_debt_after_costs_created_usd": usd(self.bad_debt_costs_created_usd),
        }


@dataclass(frozen=True, slots=True)
class Skipped:
    """A position the stress test could not recompute."""

    protocol: str
    address: str
    market: str
    reason: str

    def to_json(self) -> dict[str, str]:
        return {"protocol": self.protocol, "address": self.address, "market": self.market, "reason": self.reason}


@dataclass(frozen=True, slots=True)
class StressResult:
    """A scenario applied to every stored position."""

    scenario: Scenario  # the scenario
    shocks: dict[str, Fraction]  # the multipliers the models got (book symbols and their aliases)
    positions: tuple[PositionStress, ...]  # newly liquidatable first, then by health factor after
    skipped: tuple[Skipped, ...]  # positions without a model, with the reason
    total: StressTotals  # over every position
    by_protocol: dict[str, StressTotals] = field(default_factory=dict)  # per protocol instance
    by_asset: dict[str, StressTotals] = field(default_factory=dict)  # per book symbol (see the module doc)

    def to_json(self, *, positions: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {
            "scenario": self.scenario.to_json(),
            "shocks": {k: float(v) for k, v in sorted(self.shocks.items())},
            "total": self.total.to_json(),
            "by_protocol": {k: v.to_json() for k, v in sorted(self.by_protocol.items())},
            "by_asset": {k: v.to_json() for k, v in sorted(self.by_asset.items())},
            "skipped": [s.to_json() for s in self.skipped],
        }
        if positions:
            out["positions"] = [p.to_json() for p in self.positions]
        return out


def usd(value: int) -> float:
    """USD x 1e18 as a float, for display."""
    return value / USD_SCALE


def hf_json(hf: int) -> str:
    """A health factor as the CLI's JSON gives it: the integer x 1e18 as a string, or "inf" without debt."""
    return "inf" if hf == UINT256_MAX else str(hf)


def liquidation_cost(legs: Iterable[PositionLeg], book: HaircutLike, aliases: Mapping[str, str]) -> int:
    """What the legs a liquidation sells or closes lose in a forced sale (collateral, supply, perp notional;
    the same legs as the portfolio's liquidation NLV, ``risk.portfolio.SOLD_SIDES``): sum of
    ``value - liquidation_value`` (>= 0)."""
    cost = 0
    for leg in legs:
        if leg.side in SOLD_SIDES and leg.value_usd > 0:
            cost += leg.value_usd - min(leg.value_usd, book.liquidation_value(book_symbol(leg.symbol, aliases), leg.value_usd))
    return cost


def bad_debt(ev: Evaluation) -> int:
    """Debt above collateral at the evaluation's prices: ``max(0, -NLV)``, USD x 1e18."""
    return max(0, -ev.nlv_usd)


def bad_debt_after_costs(ev: Evaluation, book: HaircutLike, aliases: Mapping[str, str]) -> int:
    """Bad debt with the collateral at its liquidation value: ``max(0, -(NLV - cost))``."""
    return max(0, liquidation_cost(ev.legs, book, aliases) - ev.nlv_usd)


def run_stress(stored: Iterable[StoredLike], scenario: Scenario, book: HaircutLike, aliases: Mapping[str, str]) -> StressResult:
    """Apply ``scenario`` to every position of ``stored`` with its model (see the module docstring)."""
    shocks = scenario.shocks_for(aliases)
    results: list[PositionStress] = []
    skipped: list[Skipped] = []
    total = StressTotals()
    by_protocol: dict[str, StressTotals] = {}
    by_asset: dict[str, StressTotals] = {}
    for sp in stored:
        row = sp.row
        proto = by_protocol.setdefault(row.protocol, StressTotals())
        if sp.model is None:
            skipped.append(Skipped(row.protocol, row.address, row.market, "no stored state (snapshot taken by an older release)"))
            total.skipped += 1
            proto.skipped += 1
            continue
        before = sp.model.evaluate(None)
        after = sp.model.evaluate(shocks)
        ps = PositionStress(
            protocol=row.protocol,
            kind=row.kind,
            address=row.address,
            market=row.market,
            stored_liquidatable=bool(row.liquidatable),
            liquidatable_before=before.liquidatable,
            liquidatable_after=after.liquidatable,
            health_factor_before=before.health_factor,
            health_factor_after=after.health_factor,
            collateral_before_usd=before.collateral_usd,
            collateral_after_usd=after.collateral_usd,
            debt_after_usd=after.debt_usd,
            nlv_before_usd=before.nlv_usd,
            nlv_after_usd=after.nlv_usd,
            bad_debt_before_usd=bad_debt(before),
            bad_debt_after_usd=bad_debt(after),
            bad_debt_costs_before_usd=bad_debt_after_costs(before, book, aliases),
            bad_debt_costs_after_usd=bad_debt_after_costs(after, book, aliases),
        )
        results.append(ps)
        for t in (total, proto):
            _add(t, ps, _collateral(after.legs))
        _add_assets(by_asset, ps, before, after, aliases)
    results.sort(key=lambda p: (not p.newly_liquidatable, p.health_factor_after, p.protocol, p.address, p.market))
    return StressResult(scenario, shocks, tuple(results), tuple(skipped), total, by_protocol, by_asset)


def _collateral(legs: Iterable[PositionLeg]) -> int:
    return sum(leg.value_usd for leg in legs if leg.side == "collateral")


def _add(t: StressTotals, ps: PositionStress, collateral_after: int) -> None:
    t.positions += 1
    t.liquidatable_before += ps.liquidatable_before
    t.liquidatable_after += ps.liquidatable_after
    t.newly_liquidatable += ps.newly_liquidatable
    if ps.liquidatable_after:
        t.collateral_liquidatable_usd += collateral_after
    if ps.newly_liquidatable:
        t.new_collateral_liquidatable_usd += collateral_after
    t.bad_debt_before_usd += ps.bad_debt_before_usd
    t.bad_debt_after_usd += ps.bad_debt_after_usd
    t.bad_debt_costs_before_usd += ps.bad_debt_costs_before_usd
    t.bad_debt_costs_after_usd += ps.bad_debt_costs_after_usd


def _add_assets(by_asset: dict[str, StressTotals], ps: PositionStress, before: Evaluation, after: Evaluation, aliases: Mapping[str, str]) -> None:
    collateral_legs = [leg for leg in after.legs if leg.side == "collateral"]
    debt_legs = [leg for leg in after.legs if leg.side == "debt"]
    touched: set[str] = set()
    for leg in collateral_legs:
        t = by_asset.setdefault(book_symbol(leg.symbol, aliases), StressTotals())
        if ps.liquidatable_after:
            t.collateral_liquidatable_usd += leg.value_usd
        if ps.newly_liquidatable:
            t.new_collateral_liquidatable_usd += leg.value_usd
    # Positions and verdict counts per asset held as collateral (once per position and asset).
    for leg in collateral_legs:
        name = book_symbol(leg.symbol, aliases)
        if name in touched:
            continue
        touched.add(name)
        t = by_asset[name]
        t.positions += 1
        t.liquidatable_before += ps.liquidatable_before
        t.liquidatable_after += ps.liquidatable_after
        t.newly_liquidatable += ps.newly_liquidatable
    # Bad debt attributed to the debt legs (or the collateral legs without debt) in proportion to value.
    owners = [leg for leg in debt_legs if leg.value_usd > 0] or [leg for leg in collateral_legs if leg.value_usd > 0]
    weight = sum(leg.value_usd for leg in owners)
    if not weight:
        return
    for leg in owners:
        t = by_asset.setdefault(book_symbol(leg.symbol, aliases), StressTotals())
        t.bad_debt_before_usd += ps.bad_debt_before_usd * leg.value_usd // weight
        t.bad_debt_after_usd += ps.bad_debt_after_usd * leg.value_usd // weight
        t.bad_debt_costs_before_usd += ps.bad_debt_costs_before_usd * leg.value_usd // weight
        t.bad_debt_costs_after_usd += ps.bad_debt_costs_after_usd * leg.value_usd // weight
