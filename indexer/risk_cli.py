"""The risk commands' glue: scenarios from the configuration, argument checks, and rich tables.

``indexer stress``, ``levels``, ``var`` and ``cascade`` (in ``cli.py``) read the store only; the numbers come
from the pure ``risk`` functions, fed here with the stored positions and ``[risk]``.
"""

from __future__ import annotations

import math
from typing import Any

from rich.table import Table

from indexer.constants import UINT256_MAX, USD_SCALE, WAD
from indexer.errors import ConfigError
from indexer.risk.cascade import CascadeResult
from indexer.risk.levels import LevelsResult
from indexer.risk.reprice.base import symbol_key
from indexer.risk.stress import StressResult, StressTotals
from indexer.risk.var import VarResult

# Rows of the newly liquidatable positions `indexer stress` lists (all of them are in --json).
STRESS_TOP_POSITIONS = 15


def check_range(option: str, value: float, *, low: float, high: float | None = None, low_open: bool = False) -> None:
    """ConfigError naming ``option`` unless ``low (<|<=) value (<= high)`` (and finite)."""
    if not math.isfinite(value):
        raise ConfigError(f"{option}: {value} is not a finite number: pass a number", key=option.lstrip("-"))
    ok = (value > low if low_open else value >= low) and (high is None or value <= high)
    if not ok:
        bound = f"{'>' if low_open else '>='} {_num(low)}" + (f" and <= {_num(high)}" if high is not None else "")
        raise ConfigError(f"{option}: {_num(value)} must be {bound}", key=option.lstrip("-"))


def _num(value: float) -> str:
    return f"{value:,.0f}" if float(value).is_integer() and abs(value) < 1e15 else f"{value:g}"


def _usd(value: int) -> str:
    return f"{value / USD_SCALE:,.0f}"


def _hf(hf: int) -> str:
    return "inf" if hf == UINT256_MAX else f"{hf / WAD:.4f}"


def _pct(m: Any) -> str:
    return f"{float(m) - 1:+.1%}"


def _totals_table(title: str, first: str, rows: dict[str, StressTotals]) -> Table:
    table = Table(title=title)
    for col in (first, "positions", "liq. before", "liq. after", "newly liq.", "new coll. liq. $", "coll. liq. $", "bad debt created $", "after costs $"):
        table.add_column(col, justify="left" if col == first else "right")
    for name, t in rows.items():
        table.add_row(
            name, str(t.positions), str(t.liquidatable_before), str(t.liquidatable_after), str(t.newly_liquidatable),
            _usd(t.new_collateral_liquidatable_usd), _usd(t.collateral_liquidatable_usd), _usd(t.bad_debt_created_usd),
            _usd(t.bad_debt_costs_created_usd),
        )  # fmt: skip
    return table


def stress_tables(r: StressResult) -> list[Any]:
    """The summary lines and tables of ``indexer stress``."""
    s = r.scenario
    shocks = ", ".join(f"{k} {_pct(m)}" for k, m in sorted(s.book_multipliers().items())) or "none"
    t = r.total
    out: list[Any] = [
        f"scenario [bold]{s.name}[/]: {s.description}",
        f"shocks: {shocks}",
        f"{t.positions} positions recomputed ({t.skipped} skipped without stored state); "
        f"{t.newly_liquidatable} newly liquidatable, {t.liquidatable_after} liquidatable after (before: {t.liquidatable_before}); "
        f"collateral newly liquidatable ${_usd(t.new_collateral_liquidatable_usd)}; bad debt created ${_usd(t.bad_debt_created_usd)} "
        f"(after liquidation costs ${_usd(t.bad_debt_costs_created_usd)})",
        _totals_table("per protocol", "protocol", {**dict(sorted(r.by_protocol.items())), "total": t}),
        _totals_table("per asset (collateral held; bad debt by debt asset)", "asset", dict(sorted(r.by_asset.items()))),
    ]
    newly = [p for p in r.positions if p.newly_liquidatable]
    if newly:
        table = Table(title=f"newly liquidatable ({len(newly)}; first {min(len(newly), STRESS_TOP_POSITIONS)})")
        for col in ("account", "protocol", "HF before", "HF after", "collateral after $", "debt after $", "bad debt $"):
            table.add_column(col, justify="left" if col in ("account", "protocol") else "right")
        for p in newly[:STRESS_TOP_POSITIONS]:
            table.add_row(p.address, p.protocol, _hf(p.health_factor_before), _hf(p.health_factor_after),
                          _usd(p.collateral_after_usd), _usd(p.debt_after_usd), _usd(p.bad_debt_after_usd))  # fmt: skip
        out.append(table)
    return out


def levels_table(r: LevelsResult, *, rows: int = 10) -> Table:
    """Cumulative liquidatable collateral at about ``rows`` evenly spaced drops."""
    price = f", now ${r.current_price:,.2f}" if r.current_price is not None else ""
    table = Table(title=f"{r.symbol} liquidation levels ({r.positions} positions{price}; already liquidatable ${_usd(r.already_liquidatable_usd)}, "
                  f"beyond -{r.max_drop:.0%} ${_usd(r.beyond_usd)})")  # fmt: skip
    for col in ("drop", "price", "positions", "cumulative liquidatable $"):
        table.add_column(col, justify="right")
    step = max(1, len(r.rows) // rows)
    cumulative = r.cumulative_usd()
    count = 0
    for i, row in enumerate(r.rows):
        count += row.positions
        if (i + 1) % step == 0 or i == len(r.rows) - 1:
            price_at = r.price_at(row.drop_to)
            table.add_row(f"-{row.drop_to:.1%}", "-" if price_at is None else f"{price_at:,.2f}", str(count), _usd(cumulative[i]))
    return table


def var_tables(r: VarResult) -> list[Any]:
    m = r.market
    assets = Table(title=f"asset moves over {r.horizon_days:g} days ({r.paths} paths, seed {r.seed})")
    for col in ("asset", "volatility (annual)", "source"):
        assets.add_column(col, justify="left" if col != "volatility (annual)" else "right")
    for i, s in enumerate(m.symbols):
        assets.add_row(s, f"{m.volatilities[i]:.1%}", m.sources[s])
    measures = Table(title=f"{r.positions} positions ({len(r.skipped)} skipped); now: bad debt ${r.current_bad_debt_usd:,.0f}, "
                     f"liquidatable collateral ${r.current_liquidated_usd:,.0f}")  # fmt: skip
    for col in ("measure", *(f"VaR {x.level:.0%}" for x in r.bad_debt), *(f"ES {x.level:.0%}" for x in r.bad_debt), "mean"):
        measures.add_column(col, justify="left" if col == "measure" else "right")
    for name, ms, paths in (("bad debt $", r.bad_debt, r.bad_debt_paths), ("liquidated collateral $", r.liquidated, r.liquidated_paths)):
        measures.add_row(name, *(f"{x.var:,.0f}" for x in ms), *(f"{x.es:,.0f}" for x in ms), f"{float(paths.mean()):,.0f}")
    return [assets, measures]


def cascade_tables(r: CascadeResult) -> list[Any]:
    s = r.scenario
    held = {symbol_key(a) for a in r.assets}

    def prices(multipliers: dict[str, Any]) -> str:  # the prices of assets the positions hold
        shown = {k: m for k, m in multipliers.items() if symbol_key(k) in held}
        return ", ".join(f"{k} {_pct(m)}" for k, m in sorted(shown.items())) or "unchanged"

    state = "fixed point reached" if r.converged else "stopped at the round cap"
    out: list[Any] = [
        f"scenario [bold]{s.name}[/]: {s.description}",
        f"{r.positions} positions ({len(r.skipped)} skipped); {len(r.rounds)} rounds, {state}; {r.liquidated} liquidated, "
        f"bad debt ${_usd(r.bad_debt_usd)}; final prices: {prices(r.final_multipliers)}",
    ]
    table = Table(title="rounds")
    for col in ("round", "prices (vs stored)", "liquidated", "collateral sold $", "bad debt $"):
        table.add_column(col, justify="right" if col in ("round", "liquidated", "bad debt $") else "left")
    for rd in r.rounds:
        sold = ", ".join(f"{k} {_usd(v)}" for k, v in sorted(rd.sold_usd.items())) or "-"
        table.add_row(str(rd.number), prices(rd.multipliers), str(len(rd.liquidations)), sold, _usd(rd.bad_debt_usd))
    out.append(table)
    return out
