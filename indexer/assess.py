"""Risk answers over the store: the pure ``risk`` functions fed with stored positions, history and ``[risk]``.

The CLI, the report and the HTTP API call these, so that each surface shows the same numbers:

- ``haircut_book(engine, risk)``: the haircut models of ``[risk]`` with the realized volatility of every asset
  over the last ``volatility_window_days`` of stored oracle history (leg symbols merged into their book
  symbol through ``asset_aliases``);
- ``account_portfolio(engine, risk, address)``: one address's portfolio (``risk.portfolio``), with its
  liquidation levels;
- ``portfolios(engine, risk)``: every address's portfolio (without levels, which cost model evaluations);
- ``store_solvency(engine, risk)``: the solvency audit per protocol instance (``risk.solvency``);
- ``scenario_named`` / ``asset_named``: a user's scenario or asset name resolved as every surface resolves it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Engine

from indexer.config import RiskConfig
from indexer.errors import ConfigError
from indexer.risk.levels import held_symbols
from indexer.risk.reprice.base import symbol_key
from indexer.risk.scenarios import Scenario, ScenarioError, book_symbol, load_scenarios
from indexer.risk.haircut import HaircutBook, realized_volatility
from indexer.risk.portfolio import Portfolio, build_portfolio, build_portfolios
from indexer.risk.solvency import ProtocolSolvency, solvency
from indexer.store.history import latest_timestamp, price_history
from indexer.store.risk_state import StoredPosition, latest_positions

SECONDS_PER_DAY = 86_400


def volatilities(engine: Engine, risk: RiskConfig) -> dict[str, float]:
    """Annualized realized volatility per book symbol over the configured window (assets with >= 2 points)."""
    newest = latest_timestamp(engine)
    if newest is None:
        return {}
    since = newest - int(risk.volatility_window_days * SECONDS_PER_DAY)
    aliases = {k.upper(): v for k, v in risk.asset_aliases.items()}
    points: dict[str, dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))
    for symbol, series in price_history(engine, since_timestamp=since).items():
        book_symbol = aliases.get(symbol.upper(), symbol)
        for t, price in series:
            points[book_symbol][t].append(price)
    out = {}
    for symbol, by_time in points.items():
        vol = realized_volatility([(t, sum(ps) / len(ps)) for t, ps in by_time.items()])
        if vol is not None:
            out[symbol] = vol
    return out


def haircut_book(engine: Engine, risk: RiskConfig) -> HaircutBook:
    """The ``[risk]`` haircut models with the stored history's realized volatilities."""
    return HaircutBook.build(
        models={symbol: cfg.model() for symbol, cfg in risk.haircuts.items()},
        default=risk.default_haircut.model(),
        stable_default=risk.stable_haircut.model(),
        stable_assets=risk.stable_assets,
        aliases=risk.asset_aliases,
        volatilities=volatilities(engine, risk),
    )


def account_portfolio(engine: Engine, risk: RiskConfig, address: str, *, book: HaircutBook | None = None) -> Portfolio | None:
    """The portfolio of ``address`` (checksummed) with its liquidation levels; None without positions."""
    stored = latest_positions(engine, account=address)
    if not stored:
        return None
    return build_portfolio(stored, book or haircut_book(engine, risk), warning_hf=risk.warning_hf_wad, critical_hf=risk.critical_hf_wad, levels=True)


def portfolios(engine: Engine, risk: RiskConfig, *, stored: list[StoredPosition] | None = None, book: HaircutBook | None = None) -> list[Portfolio]:
    """Every address's portfolio (no liquidation levels), by address."""
    positions = latest_positions(engine) if stored is None else stored
    return build_portfolios(positions, book or haircut_book(engine, risk), warning_hf=risk.warning_hf_wad, critical_hf=risk.critical_hf_wad)


def store_solvency(
    engine: Engine, risk: RiskConfig, *, stored: list[StoredPosition] | None = None, book: HaircutBook | None = None
) -> tuple[list[ProtocolSolvency], ProtocolSolvency]:
    """The solvency audit of the latest positions: (per protocol instance, total)."""
    positions = latest_positions(engine) if stored is None else stored
    return solvency(positions, book or haircut_book(engine, risk))


def scenario_named(risk: RiskConfig, name: str, scenarios_file: str | None) -> Scenario:
    """The scenario ``name`` of ``scenarios_file`` (else ``[risk] scenarios_file``, else the packaged file)."""
    source = scenarios_file or risk.scenarios_file
    try:
        scenarios = load_scenarios(source)
    except ScenarioError as exc:
        raise ConfigError(f"{'--scenarios' if scenarios_file else 'risk.scenarios_file'}: {exc}", key=exc.key) from None
    by_key = {k.lower(): s for k, s in scenarios.items()}
    if name.lower() not in by_key:
        raise ConfigError(f"--scenario: unknown scenario {name!r} (known: {', '.join(scenarios)})", key="scenario")
    return by_key[name.lower()]


def asset_named(stored: Sequence[Any], asset: str, aliases: dict[str, str]) -> str:
    """The book symbol ``asset`` names (case-insensitive, through the aliases); ConfigError when no stored
    position holds it as collateral or long."""
    held = held_symbols(stored, aliases)
    wanted = symbol_key(book_symbol(asset, aliases))
    for s in sorted(held):
        if symbol_key(s) == wanted:
            return s
    raise ConfigError(f"--asset: no stored position holds {asset!r} as collateral or long (held: {', '.join(sorted(held)) or 'none'})", key="asset")
