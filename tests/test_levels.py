"""Liquidation levels: positions land in the bin of their liquidation drop; CSV, JSON and the chart."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from indexer.charts import levels_chart
from indexer.risk.levels import liquidation_levels
from tests.linear_models import LinearLending, LinearPerp, stored, usd, without_model

ALIASES = {"sETH": "WETH", "ETH": "WETH"}
PRICES = {"WETH": 1000, "WBTC": 30_000, "USDC": 1}


def _book() -> list:  # type: ignore[type-arg]
    return [
        # liquidatable below 875 (drop > 12.5 %): bin (10 %, 15 %]
        stored(LinearLending("0x1", prices=PRICES, collateral={"WETH": (10, 8000)}, debt={"USDC": 7_000})),
        # at 750 HF is exactly 1 (not liquidatable): first edge 30 %, bin (25 %, 30 %]
        stored(LinearLending("0x2", prices=PRICES, collateral={"WETH": (5, 8000)}, debt={"USDC": 3_000})),
        # needs a 68.75 % drop: beyond -50 %
        stored(LinearLending("0x3", prices=PRICES, collateral={"WETH": (2, 8000)}, debt={"USDC": 500})),
        # liquidatable now
        stored(LinearLending("0x4", prices=PRICES, collateral={"WETH": (1, 8000)}, debt={"USDC": 900})),
        # holds no WETH
        stored(LinearLending("0x5", prices=PRICES, collateral={"WBTC": (1, 8000)}, debt={"USDC": 20_000})),
        # a long sETH perp: 2000 + 10 (p - 1000) <= 0.5 p at p <= 842.1: bin (15 %, 20 %], its notional 10000
        stored(LinearPerp("0x6", symbol="sETH", size=10, entry=1000, price=1000, margin=2000)),
        # a short is hurt by a rise: not counted
        stored(LinearPerp("0x7", symbol="sETH", size=-10, entry=1000, price=1000, margin=2000)),
        without_model("0x8", legs=[{"symbol": "WETH", "side": "collateral"}]),
        without_model("0x9", legs=[{"symbol": "LINK", "side": "collateral"}]),
    ]


def test_bins_hand_checked() -> None:
    r = liquidation_levels(_book(), "WETH", max_drop=0.5, bins=10, aliases=ALIASES)
    assert [(row.collateral_usd, row.positions) for row in r.rows] == [
        (0, 0), (0, 0), (usd(10_000), 1), (usd(10_000), 1), (0, 0), (usd(5_000), 1), (0, 0), (0, 0), (0, 0), (0, 0),
    ]  # fmt: skip
    assert [row.drop_to for row in r.rows] == [k / 20 for k in range(1, 11)]
    assert r.cumulative_usd()[-1] == usd(25_000)
    assert (r.already_liquidatable_positions, r.already_liquidatable_usd) == (1, usd(1_000))
    assert (r.beyond_positions, r.beyond_usd) == (1, usd(2_000))
    assert r.positions == 5 and [s.address for s in r.skipped] == ["0x8"]
    assert r.current_price == 1000.0


def test_csv_and_json() -> None:
    r = liquidation_levels(_book(), "weth", max_drop=0.5, bins=10, aliases=ALIASES)
    rows = list(csv.DictReader(io.StringIO(r.to_csv())))
    assert len(rows) == 10
    assert rows[2] == {"drop_from": "0.1", "drop_to": "0.15", "price_from": "900", "price_to": "850",
                       "collateral_usd": "10000", "positions": "1", "cumulative_usd": "10000"}  # fmt: skip
    assert rows[-1]["cumulative_usd"] == "25000"
    data = json.loads(r.to_json())
    assert data["rows"][5]["collateral_usd"] == 5000 and data["rows"][5]["cumulative_usd"] == 25000
    assert data["already_liquidatable"] == {"positions": 1, "collateral_usd": 1000}


def test_chart_is_a_png(tmp_path: Path) -> None:
    r = liquidation_levels(_book(), "WETH", max_drop=0.5, bins=10, aliases=ALIASES)
    out = levels_chart(r, tmp_path / "levels_WETH.png")
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="bins"):
        liquidation_levels(_book(), "WETH", max_drop=0.5, bins=0, aliases=ALIASES)
    with pytest.raises(ValueError, match="max_drop"):
        liquidation_levels(_book(), "WETH", max_drop=1.5, bins=10, aliases=ALIASES)


@settings(max_examples=60, deadline=None)
@given(
    amount=st.integers(1, 1000),
    debt=st.integers(1, 900_000),
    lt=st.integers(1000, 9500),
    bins=st.integers(1, 40),
    max_drop=st.sampled_from([0.1, 0.25, 0.5, 0.9, 1.0]),
)
def test_bisection_finds_the_first_liquidating_edge(amount: int, debt: int, lt: int, bins: int, max_drop: float) -> None:
    """The bin is the one a scan of every edge finds: (d_{k-1}, d_k] with d_k the first liquidating edge."""
    model = LinearLending("0x1", prices=PRICES, collateral={"WETH": (amount, lt)}, debt={"USDC": debt})
    r = liquidation_levels([stored(model)], "WETH", max_drop=max_drop, bins=bins, aliases={})
    from fractions import Fraction

    top = Fraction(str(max_drop))
    flags = [model.evaluate({"WETH": 1 - top * k / bins}).liquidatable for k in range(bins + 1)]
    placed = [i for i, row in enumerate(r.rows) if row.positions]
    if flags[0]:
        assert r.already_liquidatable_positions == 1 and not placed
    elif not flags[-1]:
        assert r.beyond_positions == 1 and not placed
    else:
        assert placed == [flags.index(True) - 1]
        assert r.rows[placed[0]].collateral_usd == model.evaluate().collateral_usd
