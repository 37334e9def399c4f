"""Small hand-checkable position models for the pure risk tests (stress, levels, VaR, cascade).

``LinearLending``: collateral legs with liquidation thresholds against debt legs, Aave-like (HF = sum of
collateral value x threshold / debt, liquidatable below 1, strict). ``LinearPerp``: a perp with margin,
entry price and a maintenance margin fraction of the notional. Prices are raw oracle answers: USD x 1e8 per
whole token for lending, USD x 1e18 per unit for perps; amounts are 1e18 units.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from indexer.constants import UINT256_MAX, USD_SCALE, WAD
from indexer.domain import BlockRef, PositionLeg
from indexer.risk.reprice.base import FALLING, RISING, Evaluation, OraclePrice, PositionModel, symbol_key

BLOCK = BlockRef(chain_id=31337, number=1, hash="0x" + "00" * 32, timestamp=1_700_000_000)
UNIT = 10**18
PRICE = 10**8  # lending answers: USD x 1e8


def usd(dollars: float | int) -> int:
    """Whole dollars as USD x 1e18 (exact for integers)."""
    return int(dollars) * USD_SCALE if float(dollars).is_integer() else round(dollars * USD_SCALE)


class LinearLending(PositionModel):
    kind = "linear_lending"

    def __init__(
        self,
        account: str,
        *,
        prices: Mapping[str, float],
        collateral: Mapping[str, tuple[float, int]],
        debt: Mapping[str, float],
        protocol: str = "lend",
        kind: str = "linear_lending",
    ) -> None:
        super().__init__(protocol=protocol, account=account, market="", block=BLOCK)
        self.kind = kind
        self.answers = {s: round(p * PRICE) for s, p in prices.items()}
        self.collateral = {s: (round(a * UNIT), lt) for s, (a, lt) in collateral.items()}
        self.debt = {s: round(a * UNIT) for s, a in debt.items()}

    def oracle_prices(self) -> dict[str, OraclePrice]:
        out = {}
        for s in {**self.collateral, **self.debt}:
            direction = FALLING if s in self.collateral else RISING
            out[symbol_key(s)] = OraclePrice(s, "0x" + "11" * 20, self.answers[s], 8, "USD x 1e8 per token", direction)
        return out

    def evaluate_at(self, answers: Mapping[str, int]) -> Evaluation:
        def price(s: str) -> int:
            return answers.get(symbol_key(s), self.answers[s])

        legs = []
        risk_adjusted = collateral = debt = 0
        for s, (amount, lt) in self.collateral.items():
            value = amount * price(s) // PRICE
            collateral += value
            risk_adjusted += value * lt // 10_000
            legs.append(PositionLeg("0x" + "11" * 20, s, "collateral", amount, 18, value, lt))
        for s, amount in self.debt.items():
            value = amount * price(s) // PRICE
            debt += value
            legs.append(PositionLeg("0x" + "22" * 20, s, "debt", amount, 18, value, 0))
        hf = risk_adjusted * WAD // debt if debt else UINT256_MAX
        return Evaluation(hf, hf < WAD, collateral, debt, collateral - debt, tuple(legs))


class LinearPerp(PositionModel):
    kind = "linear_perp"

    def __init__(self, account: str, *, symbol: str, size: float, entry: float, price: float, margin: float, maintenance_bps: int = 500, protocol: str = "perps") -> None:
        super().__init__(protocol=protocol, account=account, market="0x" + "33" * 20, block=BLOCK)
        self.symbol = symbol
        self.size = round(size * UNIT)
        self.entry = round(entry * UNIT)
        self.answer = round(price * UNIT)
        self.margin = usd(margin)
        self.maintenance_bps = maintenance_bps

    def oracle_prices(self) -> dict[str, OraclePrice]:
        direction = FALLING if self.size > 0 else RISING
        return {symbol_key(self.symbol): OraclePrice(self.symbol, "0x" + "33" * 20, self.answer, 18, "USD x 1e18 per unit", direction)}

    def evaluate_at(self, answers: Mapping[str, int]) -> Evaluation:
        p = answers.get(symbol_key(self.symbol), self.answer)
        pnl = self.size * (p - self.entry) // UNIT
        remaining = self.margin + pnl
        notional = abs(self.size) * p // UNIT
        maintenance = notional * self.maintenance_bps // 10_000
        hf = max(remaining, 0) * WAD // maintenance if maintenance else UINT256_MAX
        legs = (
            PositionLeg("0x" + "33" * 20, "sUSD", "collateral", self.margin, 18, self.margin, 0),
            PositionLeg("0x" + "33" * 20, self.symbol, "long" if self.size > 0 else "short", abs(self.size), 18, notional, 0),
        )
        return Evaluation(hf, remaining <= maintenance, self.margin, 0, remaining, legs)


@dataclass(frozen=True)
class Row:
    """The fields of ``store.db.PositionRow`` the risk functions read."""

    address: str
    protocol: str
    kind: str
    market: str
    liquidatable: bool
    health_factor: int
    legs: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class Stored:
    row: Row
    model: PositionModel | None


def stored(model: PositionModel) -> Stored:
    """A stored position whose row is the model at its stored prices (as a snapshot would have it)."""
    ev = model.evaluate(None)
    legs = [{**asdict(leg), "amount": str(leg.amount), "value_usd": str(leg.value_usd)} for leg in ev.legs]
    return Stored(Row(model.account, model.protocol, model.kind, model.market_id, ev.liquidatable, ev.health_factor, legs), model)


def without_model(account: str, *, protocol: str = "old", legs: list[dict[str, Any]] | None = None) -> Stored:
    return Stored(Row(account, protocol, "aave_v3", "", False, 2 * WAD, legs or []), None)


class FlatHaircuts:
    """Stand-in haircut book: each asset loses a fixed fraction (bps) in a forced sale."""

    def __init__(self, bps: Mapping[str, int], default_bps: int = 0) -> None:
        self.bps = {symbol_key(k): v for k, v in bps.items()}
        self.default_bps = default_bps
        self.calls: list[tuple[str, int]] = []

    def liquidation_value(self, symbol: str, value_usd: int) -> int:
        self.calls.append((symbol, value_usd))
        return value_usd * (10_000 - self.bps.get(symbol_key(symbol), self.default_bps)) // 10_000
