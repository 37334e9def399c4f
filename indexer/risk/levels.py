"""Liquidation levels: how much of an asset's collateral becomes liquidatable as its price falls.

For one price-book asset (``WETH``), every position holding it as collateral (or long, for perps; any leg
symbol aliasing to it counts) is recomputed with its exact model at the asset's price multiplied by
``1 - d``, every other price as stored. Its liquidation drop ``d*`` is found by bisection over the bin edges
``d_k = k * max_drop / bins`` (``k = 0..bins``): the first edge where ``model.evaluate`` says liquidatable;
the position lands in the bin ``(d_{k-1}, d_k]`` with the value (at the stored prices) of its legs in the
asset. Positions already liquidatable, and those not liquidatable even at ``-max_drop``, are counted apart.
The verdict is assumed monotone in the price, as ``PositionModel.liquidation_answer`` assumes.

>>> r = LevelsResult("WETH", 0.5, 2, 2000.0, (LevelBin(0.0, 0.25, 5 * 10**18, 1), LevelBin(0.25, 0.5, 0, 0)), 0, 0, 0, 0, 0, ())
>>> print(r.to_csv().strip())
drop_from,drop_to,price_from,price_to,collateral_usd,positions,cumulative_usd
0,0.25,2000,1500,5,1,5
0.25,0.5,1500,1000,0,0,5
"""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from indexer.constants import USD_SCALE
from indexer.risk.reprice.base import first_true, symbol_key
from indexer.risk.scenarios import book_symbol
from indexer.risk.stress import Skipped, StoredLike

# Sides of a leg that lose value when its price falls: what "holding the asset" means here.
HOLDING_SIDES = ("collateral", "long")


@dataclass(frozen=True, slots=True)
class LevelBin:
    """Collateral that becomes liquidatable for a price drop in ``(drop_from, drop_to]``."""

    drop_from: float  # 0..1
    drop_to: float  # 0..1
    collateral_usd: int  # value (at the stored prices) of the asset's legs of those positions, USD x 1e18
    positions: int  # positions whose liquidation drop falls in the bin


@dataclass(frozen=True, slots=True)
class LevelsResult:
    """Liquidatable collateral of one asset by price drop."""

    symbol: str  # price-book symbol
    max_drop: float  # 0..1
    bins: int  # number of bins
    current_price: float | None  # USD per unit: the most common of the models' answers (``answer / 10**decimals``); None: none
    rows: tuple[LevelBin, ...]  # bins from 0 to -max_drop
    already_liquidatable_usd: int  # positions liquidatable now (not in the bins)
    already_liquidatable_positions: int
    beyond_usd: int  # holding the asset, not liquidatable even at -max_drop
    beyond_positions: int
    positions: int  # positions holding the asset that were evaluated
    skipped: tuple[Skipped, ...]  # positions without a model

    def cumulative_usd(self) -> list[int]:
        """Collateral liquidatable once the price has fallen by each bin's upper edge (USD x 1e18)."""
        out, acc = [], 0
        for row in self.rows:
            acc += row.collateral_usd
            out.append(acc)
        return out

    def price_at(self, drop: float) -> float | None:
        return None if self.current_price is None else self.current_price * (1 - drop)

    def to_csv(self) -> str:
        """One line per bin; USD columns in dollars (exact decimals), prices empty when unknown."""
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["drop_from", "drop_to", "price_from", "price_to", "collateral_usd", "positions", "cumulative_usd"])
        for row, cum in zip(self.rows, self.cumulative_usd(), strict=True):
            w.writerow([_g(row.drop_from), _g(row.drop_to), _g(self.price_at(row.drop_from)), _g(self.price_at(row.drop_to)),
                        usd_text(row.collateral_usd), row.positions, usd_text(cum)])  # fmt: skip
        return buf.getvalue()

    def to_dict(self) -> dict[str, Any]:
        return {
            "symbol": self.symbol,
            "max_drop": self.max_drop,
            "bins": self.bins,
            "current_price": self.current_price,
            "positions": self.positions,
            "already_liquidatable": {"positions": self.already_liquidatable_positions, "collateral_usd": self.already_liquidatable_usd / USD_SCALE},
            "beyond_max_drop": {"positions": self.beyond_positions, "collateral_usd": self.beyond_usd / USD_SCALE},
            "skipped": [s.to_json() for s in self.skipped],
            "rows": [
                {
                    "drop_from": r.drop_from,
                    "drop_to": r.drop_to,
                    "price_from": self.price_at(r.drop_from),
                    "price_to": self.price_at(r.drop_to),
                    "collateral_usd": r.collateral_usd / USD_SCALE,
                    "positions": r.positions,
                    "cumulative_usd": c / USD_SCALE,
                }
                for r, c in zip(self.rows, self.cumulative_usd(), strict=True)
            ],
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)


def usd_text(value: int) -> str:
    """USD x 1e18 as exact decimal text (``1500000000000000000`` -> ``1.5``)."""
    sign, v = ("-", -value) if value < 0 else ("", value)
    return sign + f"{v // USD_SCALE}.{v % USD_SCALE:018d}".rstrip("0").rstrip(".")


def _g(x: float | None) -> str:
    return "" if x is None else f"{x:.10g}"


def held_symbols(stored: Iterable[StoredLike], aliases: Mapping[str, str]) -> set[str]:
    """The book symbols held as collateral or long by some stored position (what ``levels`` accepts)."""
    out = set()
    for sp in stored:
        for leg in sp.row.legs:
            if leg["side"] in HOLDING_SIDES:
                out.add(book_symbol(leg["symbol"], aliases))
    return out


def liquidation_levels(stored: Iterable[StoredLike], symbol: str, *, max_drop: float, bins: int, aliases: Mapping[str, str]) -> LevelsResult:
    """Collateral of ``symbol`` becoming liquidatable per price-drop bin (see the module docstring)."""
    if not 0 < max_drop <= 1:
        raise ValueError(f"max_drop must be in (0, 1], got {max_drop}")
    if bins < 1:
        raise ValueError(f"bins must be >= 1, got {bins}")
    key = symbol_key(symbol)
    top = Fraction(str(max_drop))
    edges = [top * k / bins for k in range(bins + 1)]
    leg_symbols = [s for s, target in aliases.items() if symbol_key(target) == key]
    amounts = [0] * bins
    counts = [0] * bins
    already = already_n = beyond = beyond_n = evaluated = 0
    skipped: list[Skipped] = []
    prices: Counter[float] = Counter()
    for sp in stored:
        row = sp.row
        if sp.model is None:
            if any(symbol_key(book_symbol(leg["symbol"], aliases)) == key and leg["side"] in HOLDING_SIDES for leg in row.legs):
                skipped.append(Skipped(row.protocol, row.address, row.market, "no stored state (snapshot taken by an older release)"))
            continue
        model = sp.model
        ev0 = model.evaluate(None)
        legs = [leg for leg in ev0.legs if leg.side in HOLDING_SIDES and symbol_key(book_symbol(leg.symbol, aliases)) == key]
        if not legs:
            continue
        held = sum(leg.value_usd for leg in legs)
        evaluated += 1
        for op in model.oracle_prices().values():
            if symbol_key(book_symbol(op.symbol, aliases)) == key:
                prices[float(f"{op.answer / 10**op.decimals:.6g}")] += 1

        def liquidatable_at(k: int, model: Any = model) -> bool:
            m = 1 - edges[k]
            return bool(model.evaluate({symbol: m, **{s: m for s in leg_symbols}}).liquidatable)

        if ev0.liquidatable:
            already += held
            already_n += 1
            continue
        if not liquidatable_at(bins):
            beyond += held
            beyond_n += 1
            continue
        hi = first_true(liquidatable_at, 0, bins)  # not liquidatable at edge 0, liquidatable at edge bins
        amounts[hi - 1] += held
        counts[hi - 1] += 1
    rows = tuple(LevelBin(float(edges[i]), float(edges[i + 1]), amounts[i], counts[i]) for i in range(bins))
    current = prices.most_common(1)[0][0] if prices else None
    return LevelsResult(symbol, max_drop, bins, current, rows, already, already_n, beyond, beyond_n, evaluated, tuple(skipped))
