"""VaR / ES: zero volatility gives today's bad debt exactly, a seed repeats, more volatility never lowers ES,
the linear exposures agree with the exact models, and volatilities and correlations come from history."""

from __future__ import annotations

import math
import random
from fractions import Fraction

import numpy as np
import pytest

from indexer.risk.var import SECONDS_PER_YEAR, estimate_market, linear_exposures, measure, multipliers, run_var, simulate
from tests.linear_models import LinearLending, LinearPerp, stored

ALIASES = {"sETH": "WETH"}
PRICES = {"WETH": 2000, "WBTC": 50_000, "USDC": 1}


def _book() -> list:  # type: ignore[type-arg]
    return [
        stored(LinearLending("0x1", prices=PRICES, collateral={"WETH": (10, 8000)}, debt={"USDC": 15_000})),
        stored(LinearLending("0x2", prices=PRICES, collateral={"WETH": (5, 8000), "WBTC": (1, 7000)}, debt={"USDC": 30_000})),
        # bad debt now: collateral 2000 < debt 2500 (and liquidatable)
        stored(LinearLending("0x3", prices=PRICES, collateral={"WETH": (1, 8000)}, debt={"USDC": 2_500})),
        stored(LinearPerp("0x4", symbol="sETH", size=10, entry=2000, price=2000, margin=3000)),
        stored(LinearPerp("0x5", symbol="sETH", size=-5, entry=1900, price=2000, margin=2000)),
    ]


def _var(book, *, vol: float, seed: int = 7, paths: int = 4000):  # type: ignore[no-untyped-def]
    return run_var(
        book, {}, aliases=ALIASES, horizon_days=1, paths=paths, seed=seed, levels=[0.95, 0.99],
        default_volatility=vol, stable_assets=["USDC"],
    )  # fmt: skip


def test_zero_volatility_equals_current_bad_debt_exactly() -> None:
    r = _var(_book(), vol=0.0)
    assert r.current_bad_debt_usd == 500.0  # only 0x3 is under water: 2500 - 2000
    assert r.current_liquidated_usd == 2000.0  # 0x3 is liquidatable now: its collateral
    assert np.all(r.bad_debt_paths == r.current_bad_debt_usd)
    for m in (*r.bad_debt, *r.liquidated):
        assert m.var == m.es
    assert [m.es for m in r.bad_debt] == [500.0, 500.0]
    assert [m.var for m in r.liquidated] == [2000.0, 2000.0]


def test_a_seed_repeats_exactly_and_another_differs() -> None:
    a, b, c = _var(_book(), vol=0.9), _var(_book(), vol=0.9), _var(_book(), vol=0.9, seed=8)
    assert np.array_equal(a.bad_debt_paths, b.bad_debt_paths) and np.array_equal(a.liquidated_paths, b.liquidated_paths)
    assert a.to_json() == b.to_json()
    assert not np.array_equal(a.liquidated_paths, c.liquidated_paths)


def test_more_volatility_never_lowers_expected_shortfall() -> None:
    # Long collateral against stablecoin debt, and a long perp: losses grow with the downside.
    book = [
        stored(LinearLending(f"0x{i}", prices=PRICES, collateral={"WETH": (10, 8000)}, debt={"USDC": 10_000 + 1_000 * i})) for i in range(8)
    ] + [stored(LinearPerp("0xp", symbol="sETH", size=10, entry=2000, price=2000, margin=4000))]
    previous = None
    for vol in (0.0, 0.2, 0.5, 1.0, 2.0, 4.0):
        r = _var(book, vol=vol, paths=5000)
        es = [m.es for m in r.bad_debt]
        if previous is not None:
            assert all(x >= p for x, p in zip(es, previous, strict=True)), (vol, es, previous)
        previous = es
    assert previous is not None and previous[-1] > 0


def test_linear_exposures_match_the_exact_models() -> None:
    """Lending is linear: the buffer's sign is the exact verdict and the NLV the exact NLV away from the edge;
    a perp's buffer crosses zero at its exact liquidation price."""
    book = _book()
    exp = linear_exposures(book, ALIASES)
    assert exp.symbols == ("USDC", "WBTC", "WETH")
    rng = random.Random(3)
    seen = set()
    for _ in range(300):
        m = {"WETH": rng.uniform(0.3, 1.6), "WBTC": rng.uniform(0.3, 1.6), "USDC": rng.uniform(0.8, 1.2)}
        d = np.array([m[s] - 1 for s in exp.symbols])
        buffer = exp.buffer0 + exp.buffer_exposure @ d
        nlv = exp.nlv0 + exp.nlv_exposure @ d
        for i, sp in enumerate(book[:3]):
            ev = sp.model.evaluate({k: Fraction(v) for k, v in m.items()})
            assert nlv[i] == pytest.approx(ev.nlv_usd / 1e18, abs=1e-2)  # the oracle answers floor at 1e-8
            if not sp.model.evaluate().liquidatable and abs(buffer[i]) > 1e-2:
                assert (buffer[i] < 0) == ev.liquidatable
                seen.add(ev.liquidatable)
    assert seen == {True, False}
    # The long perp: b0 + g (m* - 1) = 0 at the exact liquidation multiplier.
    perp = book[3].model
    op = perp.oracle_prices()["SETH"]
    m_star = perp.liquidation_answer("sETH") / op.answer
    i = exp.labels.index(("perps", "0x4", perp.market_id))
    w = exp.symbols.index("WETH")
    assert exp.buffer0[i] + exp.buffer_exposure[i, w] * (m_star - 1) == pytest.approx(0, abs=1e-6)
    assert exp.buffer0[2] == -math.inf  # 0x3 is liquidatable now


def test_volatility_and_correlation_from_history() -> None:
    day = 86_400
    a = [(0, 100.0), (day, 110.0), (2 * day, 99.0), (3 * day, 99.0), (4 * day, 105.0)]
    b = [(t, p * 3) for t, p in a]  # the same returns
    c = [(t, 100.0 if k % 2 else 101.0) for k, (t, _) in enumerate(a)]
    m = estimate_market(
        {"WETH": a, "sBTC": b, "LINK": c, "ARB": a[:2]}, ["WETH", "WBTC", "LINK", "ARB", "USDC", "OP"],
        default_volatility=0.8, volatilities={"OP": 1.5}, correlations={"LINK/WETH": -0.25},
        stable_assets=["USDC"], aliases={"sBTC": "WBTC"},
    )  # fmt: skip
    r = [math.log(110 / 100), math.log(99 / 110), 0.0, math.log(105 / 99)]
    expected = math.sqrt(sum(x * x for x in r) / (4 * day / SECONDS_PER_YEAR))
    assert m.volatilities[0] == pytest.approx(expected) and m.volatilities[1] == pytest.approx(expected)
    assert [m.sources[s] for s in m.symbols] == ["history", "history", "history", "default", "stable", "configured"]
    assert list(m.volatilities[3:]) == [0.8, 0.0, 1.5]
    assert m.correlation[0, 1] == pytest.approx(1.0)  # WBTC (through its alias sBTC) moved exactly as WETH
    assert m.correlation[0, 2] == -0.25  # configured
    assert m.correlation[0, 3] == 0.0  # too little common history


def test_inconsistent_correlations_are_made_positive_semidefinite() -> None:
    m = estimate_market({}, ["A", "B", "C"], default_volatility=1.0, correlations={"A/B": 0.9, "B/C": 0.9, "A/C": -0.9})
    paths = multipliers(m, horizon_days=1, paths=20_000, seed=1)
    logs = np.log(paths)
    assert np.all(np.isfinite(logs))
    assert np.corrcoef(logs.T)[0, 1] > 0.3 and np.corrcoef(logs.T)[0, 2] < 0.3


def test_measure_takes_the_worst_tail() -> None:
    values = np.arange(100, dtype=float)  # 0..99
    r = measure(values, 0.95)  # the 5 worst: 95..99
    assert (r.var, r.es) == (95.0, 97.0)
    with pytest.raises(ValueError):
        measure(values, 1.0)


def test_simulate_refuses_a_market_without_an_asset() -> None:
    exp = linear_exposures(_book(), ALIASES)
    m = estimate_market({}, ["WETH"], default_volatility=0.5)
    with pytest.raises(ValueError, match="WBTC"):
        simulate(exp, m, horizon_days=1, paths=10, seed=1, levels=[0.9])
