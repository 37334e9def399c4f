"""Risk answers over the store: the pure ``risk`` functions fed with stored positions, history and ``[risk]``.

The CLI, the report and the HTTP API call these, so that each surface shows the same numbers:

- ``haircut_book(engine, risk)``: the haircut models of ``[risk]`` with the realized volatility of every asset
  over the last ``volatility_window_days`` of stored oracle history (leg symbols merged into their book
  symbol through ``asset_aliases``);
- ``account_portfolio(engine, risk, address)``: one address's portfolio (``risk.portfolio``), with its
  liquidation levels;
- ``portfolios(engine, risk)``: every address's portfolio (without levels, which cost model evaluations);
- ``store_solvency(engine, risk)``: the solvency audit per protocol instance (``risk.solvency``).
"""

from __future__ import annotations

from collections import defaultdict

from sqlalchemy import Engine

from indexer.config import RiskConfig
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
