"""Value at risk and expected shortfall of liquidations and bad debt: a Monte Carlo of correlated prices.

**Prices.** Each price-book asset follows a driftless lognormal move over the horizon ``t`` (years):
``m = exp(sigma * sqrt(t) * x - sigma**2 * t / 2)`` with ``x`` standard normal, correlated across assets
through the correlation matrix (its nearest positive semi-definite form: negative eigenvalues clipped). The
volatilities (annualized) and correlations come from the indexer's stored oracle history
(``estimate_market``), from the configuration where it names them, else ``default_volatility`` (stable
assets without history: 0) and correlation 0. Draws come from ``numpy.random.default_rng(seed)``: a seed
repeats a run exactly.

**Positions: a linear approximation.** Evaluating every position's exact rule on every path would cost
paths x positions model calls, so each position is reduced once, from its model at the stored prices
(``model.evaluate()``: its legs with their values and thresholds), to linear exposures per asset:

- NLV: ``nlv(m) = nlv0 + sum_a e_a (m_a - 1)``, ``e_a`` the signed value of its price-sensitive legs in
  ``a`` (collateral, supply and long legs count +, debt and short legs -). Exact for lending positions and
  for a perp's PnL; it ignores funding and fees that move with the price.
- Liquidation: a linear buffer ``b(m) = b0 + sum_a g_a (m_a - 1)``, liquidatable when ``b < 0``. Positions
  with liquidation thresholds (lending) use ``g_a = sum(collateral value x threshold) - sum(debt value)`` per
  asset and ``b0`` the same sum over all legs: ``b(m)`` is then the risk-adjusted collateral minus the debt,
  exact up to the legs' rounding. Positions without thresholds (perps: margin against a maintenance margin
  the legs do not carry) use ``g_a`` = +-leg value and calibrate ``b0`` on the model's exact liquidation
  price along their largest exposure (``liquidation_answer``): ``b0 = g (1 - m*)``; none in range: never.
  A position liquidatable now is liquidated on every path; one that is not has ``b0 >= 0``, so at the
  stored prices the approximation reproduces the exact verdicts.
- Liquidated volume: the collateral legs' value ``c(m)`` of the positions with ``b(m) < 0``.
- Bad debt: ``max(0, -nlv(m))`` summed over positions (whether or not liquidated).

Only legs whose symbol the model prices (``model.oracle_prices()``) move; the others (a perp's sUSD margin)
stay at their value. Floats throughout: this is a report, not a verdict.

**Measures.** For each level ``alpha``: the tail is the ``k = ceil((1 - alpha) * paths)`` worst paths;
VaR is the smallest loss in the tail and ES the tail's mean, computed as ``VaR + mean(tail - VaR)`` (so a
distribution of identical values has ES equal to that value exactly).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from indexer.constants import USD_SCALE
from indexer.risk.reprice.base import symbol_key
from indexer.risk.scenarios import book_symbol
from indexer.risk.stress import Skipped, StoredLike

DAYS_PER_YEAR = 365.0  # crypto markets trade every day: volatilities are annualized over 365 days
SECONDS_PER_YEAR = DAYS_PER_YEAR * 86400
# Fewest returns a volatility (and common returns a correlation) is estimated from; fewer: configured default.
MIN_VOLATILITY_RETURNS = 2
MIN_CORRELATION_RETURNS = 3
# Paths evaluated per block: bounds the (paths x positions) matrices to a few tens of MB.
PATH_CHUNK = 2048
# Sides of a leg whose value rises with its price (the others fall).
_LONG_SIDES = ("collateral", "supply", "long")
_SHORT_SIDES = ("debt", "short")


@dataclass(frozen=True, eq=False)
class Exposures:
    """Each position's linear exposures per asset (USD floats); row i is ``labels[i]``."""

    symbols: tuple[str, ...]  # price-book symbols, the columns
    labels: tuple[tuple[str, str, str], ...]  # (protocol, address, market) per row
    nlv0: np.ndarray  # (P,) NLV at the stored prices
    nlv_exposure: np.ndarray  # (P, A) dNLV / dm_a
    buffer0: np.ndarray  # (P,) liquidation buffer at the stored prices; -inf: liquidatable now, +inf: never
    buffer_exposure: np.ndarray  # (P, A)
    collateral0: np.ndarray  # (P,) collateral value at the stored prices
    collateral_exposure: np.ndarray  # (P, A)
    skipped: tuple[Skipped, ...]  # positions without a model


@dataclass(frozen=True, eq=False)
class MarketModel:
    """Annualized volatilities and correlations of the price-book assets."""

    symbols: tuple[str, ...]
    volatilities: np.ndarray  # (A,) annualized
    correlation: np.ndarray  # (A, A) symmetric, unit diagonal
    sources: dict[str, str]  # per symbol: "configured", "history", "stable" or "default"


@dataclass(frozen=True, slots=True)
class RiskMeasure:
    """VaR and ES of one loss distribution at one level, USD."""

    level: float  # e.g. 0.99
    var: float
    es: float


@dataclass(frozen=True, eq=False)
class VarResult:
    """The Monte Carlo's distributions and their measures."""

    horizon_days: float
    paths: int
    seed: int
    market: MarketModel
    positions: int  # positions simulated
    skipped: tuple[Skipped, ...]
    current_bad_debt_usd: float  # bad debt at the stored prices (the same arithmetic as a path)
    current_liquidated_usd: float  # collateral of the positions liquidatable at the stored prices
    bad_debt: tuple[RiskMeasure, ...]  # per level
    liquidated: tuple[RiskMeasure, ...]  # per level
    bad_debt_paths: np.ndarray = field(repr=False)  # (paths,) USD
    liquidated_paths: np.ndarray = field(repr=False)  # (paths,) USD

    def to_json(self) -> dict[str, Any]:
        m = self.market
        return {
            "horizon_days": self.horizon_days,
            "paths": self.paths,
            "seed": self.seed,
            "positions": self.positions,
            "skipped": len(self.skipped),
            "assets": {
                s: {"volatility": float(m.volatilities[i]), "source": m.sources[s]} for i, s in enumerate(m.symbols)
            },
            "correlation": {f"{a}/{b}": float(m.correlation[i, j]) for i, a in enumerate(m.symbols) for j, b in enumerate(m.symbols) if i < j},
            "current": {"bad_debt_usd": self.current_bad_debt_usd, "liquidated_usd": self.current_liquidated_usd},
            "bad_debt": {
                "mean_usd": float(self.bad_debt_paths.mean()),
                "max_usd": float(self.bad_debt_paths.max()),
                **{_level_key(r.level): {"var_usd": r.var, "es_usd": r.es} for r in self.bad_debt},
            },
            "liquidated": {
                "mean_usd": float(self.liquidated_paths.mean()),
                "max_usd": float(self.liquidated_paths.max()),
                **{_level_key(r.level): {"var_usd": r.var, "es_usd": r.es} for r in self.liquidated},
            },
        }


def _level_key(level: float) -> str:
    return f"{level:g}"


def _f(value_usd: int) -> float:
    return value_usd / USD_SCALE


def linear_exposures(stored: Iterable[StoredLike], aliases: Mapping[str, str]) -> Exposures:
    """Reduce every stored position to its linear exposures (see the module docstring)."""
    rows: list[tuple[float, dict[str, float], float, dict[str, float], float, dict[str, float]]] = []
    labels: list[tuple[str, str, str]] = []
    skipped: list[Skipped] = []
    symbols: dict[str, None] = {}
    for sp in stored:
        row = sp.row
        model = sp.model
        if model is None:
            skipped.append(Skipped(row.protocol, row.address, row.market, "no stored state (snapshot taken by an older release)"))
            continue
        ev = model.evaluate(None)
        priced = model.oracle_prices()
        thresholds = any(leg.side == "collateral" and leg.liquidation_threshold_bps > 0 for leg in ev.legs)
        nlv_e: dict[str, float] = {}
        buf_by_leg: dict[str, float] = {}  # per priced leg symbol key
        col_e: dict[str, float] = {}
        collateral0 = 0.0
        buffer_legs = 0.0
        for leg in ev.legs:
            value = _f(leg.value_usd)
            sign = 1.0 if leg.side in _LONG_SIDES else -1.0 if leg.side in _SHORT_SIDES else 0.0
            if leg.side == "collateral":
                weight = leg.liquidation_threshold_bps / 10_000 if thresholds else 1.0
            elif leg.side == "supply":
                weight = 0.0  # lent, not collateral: no part in the liquidation rule
            else:
                weight = 1.0
            g = sign * weight * value
            buffer_legs += g
            if leg.side == "collateral":
                collateral0 += value
            key = symbol_key(leg.symbol)
            if key not in priced:
                continue
            asset = book_symbol(priced[key].symbol, aliases)
            symbols.setdefault(asset, None)
            nlv_e[asset] = nlv_e.get(asset, 0.0) + sign * value
            buf_by_leg[key] = buf_by_leg.get(key, 0.0) + g
            if leg.side == "collateral":
                col_e[asset] = col_e.get(asset, 0.0) + value
        buf_e: dict[str, float] = {}
        for key, g in buf_by_leg.items():
            asset = book_symbol(priced[key].symbol, aliases)
            buf_e[asset] = buf_e.get(asset, 0.0) + g
        if ev.liquidatable:
            b0 = -math.inf
        elif thresholds:
            b0 = max(buffer_legs, 0.0)
        else:
            b0 = _calibrated_buffer(model, buf_by_leg)
        rows.append((_f(ev.nlv_usd), nlv_e, b0, buf_e, collateral0, col_e))
        labels.append((row.protocol, row.address, row.market))
    cols = tuple(sorted(symbols))
    index = {s: i for i, s in enumerate(cols)}
    n, a = len(rows), len(cols)
    nlv0, b0s, c0 = np.zeros(n), np.zeros(n), np.zeros(n)
    ne, be, ce = np.zeros((n, a)), np.zeros((n, a)), np.zeros((n, a))
    for i, (nv, nd, bv, bd, cv, cd) in enumerate(rows):
        nlv0[i], b0s[i], c0[i] = nv, bv, cv
        for target, d in ((ne, nd), (be, bd), (ce, cd)):
            for s, v in d.items():
                target[i, index[s]] = v
    return Exposures(cols, tuple(labels), nlv0, ne, b0s, be, c0, ce, tuple(skipped))


def _calibrated_buffer(model: Any, buf_by_leg: Mapping[str, float]) -> float:
    """``g (1 - m*)`` along the largest exposure, ``m*`` the exact liquidation multiplier; +inf without one."""
    if not buf_by_leg:
        return math.inf
    key = max(buf_by_leg, key=lambda k: (abs(buf_by_leg[k]), k))
    g = buf_by_leg[key]
    op = model.oracle_prices()[key]
    answer = model.liquidation_answer(op.symbol)
    if answer is None or op.answer <= 0 or g == 0:
        return math.inf
    return max(g * (1.0 - answer / op.answer), 0.0)


def estimate_market(
    history: Mapping[str, Sequence[tuple[int, float]]],
    symbols: Sequence[str],
    *,
    default_volatility: float,
    volatilities: Mapping[str, float] | None = None,
    correlations: Mapping[str, float] | None = None,
    stable_assets: Iterable[str] = (),
    aliases: Mapping[str, str] | None = None,
) -> MarketModel:
    """Volatilities and correlations of ``symbols``: configured (``volatilities``, ``correlations`` keyed
    "A/B") first, else estimated from ``history`` (symbol -> [(timestamp, USD price)], a leg symbol's series
    standing in for its book symbol through ``aliases``), else 0 for ``stable_assets`` and
    ``default_volatility`` for the rest; correlations default to 0.

    Returns are log returns between consecutive distinct timestamps; the annualized variance is
    ``sum(r**2) / sum(dt)`` (zero mean, irregular spacing allowed); a correlation is
    ``sum(r_a r_b) / sqrt(sum(r_a**2) sum(r_b**2))`` over the timestamps both series share.
    """
    conf_vol = {symbol_key(k): float(v) for k, v in (volatilities or {}).items()}
    stables = {symbol_key(s) for s in stable_assets}
    series = _series(history, symbols, aliases or {})
    vols = np.zeros(len(symbols))
    sources: dict[str, str] = {}
    for i, s in enumerate(symbols):
        key = symbol_key(s)
        est = _volatility(series.get(s, {}))
        if key in conf_vol:
            vols[i], sources[s] = conf_vol[key], "configured"
        elif est is not None:
            vols[i], sources[s] = est, "history"
        elif key in stables:
            vols[i], sources[s] = 0.0, "stable"
        else:
            vols[i], sources[s] = float(default_volatility), "default"
        if not math.isfinite(vols[i]) or vols[i] < 0:
            raise ValueError(f"volatility of {s} must be a finite number >= 0, got {vols[i]}")
    corr = np.eye(len(symbols))
    conf_corr: dict[frozenset[str], float] = {}
    for pair, value in (correlations or {}).items():
        a, _, b = pair.partition("/")
        if not b or not -1 <= float(value) <= 1:
            raise ValueError(f"correlation {pair!r} = {value}: the key must be 'A/B' and the value in [-1, 1]")
        conf_corr[frozenset((symbol_key(a), symbol_key(b)))] = float(value)
    for i, a in enumerate(symbols):
        for j in range(i + 1, len(symbols)):
            b = symbols[j]
            pair = frozenset((symbol_key(a), symbol_key(b)))
            c = conf_corr.get(pair)
            if c is None:
                c = _correlation(series.get(a, {}), series.get(b, {}))
            corr[i, j] = corr[j, i] = c if c is not None else 0.0
    return MarketModel(tuple(symbols), vols, corr, sources)


def _series(history: Mapping[str, Sequence[tuple[int, float]]], symbols: Sequence[str], aliases: Mapping[str, str]) -> dict[str, dict[int, float]]:
    """Per book symbol: timestamp -> price (its own series, else an alias's; the last price per timestamp)."""
    by_key: dict[str, list[tuple[int, float]]] = {}
    for name, points in history.items():
        by_key.setdefault(symbol_key(name), []).extend(points)
    out: dict[str, dict[int, float]] = {}
    for s in symbols:
        candidates = [symbol_key(s)] + sorted(symbol_key(leg) for leg, target in aliases.items() if symbol_key(target) == symbol_key(s))
        for key in candidates:
            points = by_key.get(key)
            if points:
                out[s] = {int(t): float(p) for t, p in sorted(points) if p > 0 and math.isfinite(p)}
                break
    return out


def _returns(points: Mapping[int, float]) -> dict[int, tuple[float, float]]:
    """Timestamp -> (log return since the previous point, years since it)."""
    ts = sorted(points)
    return {t1: (math.log(points[t1] / points[t0]), (t1 - t0) / SECONDS_PER_YEAR) for t0, t1 in zip(ts, ts[1:]) if t1 > t0}


def _volatility(points: Mapping[int, float]) -> float | None:
    r = _returns(points)
    if len(r) < MIN_VOLATILITY_RETURNS:
        return None
    years = sum(dt for _, dt in r.values())
    return math.sqrt(sum(x * x for x, _ in r.values()) / years) if years > 0 else None


def _correlation(a: Mapping[int, float], b: Mapping[int, float]) -> float | None:
    common = sorted(set(a) & set(b))
    ra = _returns({t: a[t] for t in common})
    rb = _returns({t: b[t] for t in common})
    if len(ra) < MIN_CORRELATION_RETURNS:
        return None
    xs = [ra[t][0] for t in ra]
    ys = [rb[t][0] for t in ra]
    sxx, syy = sum(x * x for x in xs), sum(y * y for y in ys)
    if sxx == 0 or syy == 0:
        return None
    return max(-1.0, min(1.0, sum(x * y for x, y in zip(xs, ys, strict=True)) / math.sqrt(sxx * syy)))


def _factor(corr: np.ndarray) -> np.ndarray:
    """``L`` with ``L @ L.T`` the nearest PSD correlation (eigenvalues clipped at 0, diagonal restored)."""
    if corr.shape[0] == 0:
        return corr
    w, v = np.linalg.eigh(corr)
    root = v * np.sqrt(np.clip(w, 0.0, None))
    norms = np.sqrt((root * root).sum(axis=1))
    norms[norms == 0] = 1.0
    return root / norms[:, None]


def multipliers(market: MarketModel, *, horizon_days: float, paths: int, seed: int) -> np.ndarray:
    """(paths, A) price multipliers over the horizon."""
    if horizon_days <= 0:
        raise ValueError(f"horizon_days must be > 0, got {horizon_days}")
    if paths < 1:
        raise ValueError(f"paths must be >= 1, got {paths}")
    t = horizon_days / DAYS_PER_YEAR
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((paths, len(market.symbols)))
    x = z @ _factor(market.correlation).T
    sigma = market.volatilities
    return np.exp(sigma * math.sqrt(t) * x - sigma * sigma * t / 2)


def losses(exp: Exposures, m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(bad debt, liquidated volume) per row of multipliers ``m`` (n, A), USD."""
    bad = np.empty(m.shape[0])
    liq = np.empty(m.shape[0])
    for start in range(0, m.shape[0], PATH_CHUNK):
        d = m[start : start + PATH_CHUNK] - 1.0
        nlv = exp.nlv0 + d @ exp.nlv_exposure.T
        buffer = exp.buffer0 + d @ exp.buffer_exposure.T
        collateral = exp.collateral0 + d @ exp.collateral_exposure.T
        bad[start : start + PATH_CHUNK] = np.maximum(-nlv, 0.0).sum(axis=1)
        liq[start : start + PATH_CHUNK] = np.where(buffer < 0, collateral, 0.0).sum(axis=1)
    return bad, liq


def measure(values: np.ndarray, level: float) -> RiskMeasure:
    """VaR and ES of a loss sample at ``level`` (see the module docstring)."""
    if not 0 < level < 1:
        raise ValueError(f"a VaR level must be in (0, 1), got {level}")
    k = max(1, math.ceil((1 - level) * len(values) - 1e-9))
    tail = np.sort(values)[len(values) - k :]
    var = float(tail[0])
    return RiskMeasure(level, var, var + float((tail - var).mean()))


def simulate(exp: Exposures, market: MarketModel, *, horizon_days: float, paths: int, seed: int, levels: Sequence[float]) -> VarResult:
    """The Monte Carlo over ``exp`` with ``market``'s asset moves (its symbols must cover ``exp.symbols``)."""
    missing = [s for s in exp.symbols if s not in market.symbols]
    if missing:
        raise ValueError(f"no volatility for {', '.join(missing)}")
    order = [market.symbols.index(s) for s in exp.symbols]
    sub = MarketModel(exp.symbols, market.volatilities[order], market.correlation[np.ix_(order, order)], {s: market.sources[s] for s in exp.symbols})
    m = multipliers(sub, horizon_days=horizon_days, paths=paths, seed=seed)
    bad, liq = losses(exp, m)
    now_bad, now_liq = losses(exp, np.ones((1, len(exp.symbols))))
    return VarResult(
        horizon_days=horizon_days,
        paths=paths,
        seed=seed,
        market=sub,
        positions=len(exp.labels),
        skipped=exp.skipped,
        current_bad_debt_usd=float(now_bad[0]),
        current_liquidated_usd=float(now_liq[0]),
        bad_debt=tuple(measure(bad, lv) for lv in levels),
        liquidated=tuple(measure(liq, lv) for lv in levels),
        bad_debt_paths=bad,
        liquidated_paths=liq,
    )


def run_var(
    stored: Iterable[StoredLike],
    history: Mapping[str, Sequence[tuple[int, float]]],
    *,
    aliases: Mapping[str, str],
    horizon_days: float,
    paths: int,
    seed: int,
    levels: Sequence[float],
    default_volatility: float,
    volatilities: Mapping[str, float] | None = None,
    correlations: Mapping[str, float] | None = None,
    stable_assets: Iterable[str] = (),
) -> VarResult:
    """Exposures of ``stored``, the market estimated from ``history`` and the configuration, the simulation."""
    exp = linear_exposures(stored, aliases)
    market = estimate_market(
        history, exp.symbols, default_volatility=default_volatility, volatilities=volatilities, correlations=correlations,
        stable_assets=stable_assets, aliases=aliases,
    )  # fmt: skip
    return simulate(exp, market, horizon_days=horizon_days, paths=paths, seed=seed, levels=levels)

