"""Asset liquidation values (risk.haircut), realized volatility, the stored price history and the [risk] settings."""

from __future__ import annotations

import math
import random
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import update
from sqlmodel import Session

from indexer.config import load_settings
from indexer.domain import BlockRef, PriceReading, Snapshot
from indexer.errors import ConfigError
from indexer.risk.haircut import BUILTIN_MODELS, DEFAULT_STABLE, DEFAULT_VOLATILE, HaircutBook, HaircutModel, realized_volatility
from indexer.store.db import make_engine, write_snapshot
from indexer.store.history import price_history
from indexer.store.models import SnapshotRun
from tests.conftest import indexer

USD = 10**18
PROPS = settings(max_examples=300, deadline=None)

models = st.builds(
    HaircutModel,
    base_haircut=st.floats(0, 0.3),
    impact_coefficient=st.floats(0, 2),
    depth_usd=st.floats(1e3, 1e10),
    reference_volatility=st.floats(0.01, 3),
    max_haircut=st.floats(0.3, 2 / 3),
)
values = st.integers(0, 10**12 * USD)  # up to a trillion dollars
vols = st.none() | st.floats(0, 10)


# --- the model -------------------------------------------------------------------------------------------------
@PROPS
@given(models, values, vols)
def test_liquidation_value_is_never_above_market_value_nor_negative(m: HaircutModel, v: int, vol: float | None) -> None:
    lv = m.liquidation_value(v, vol)
    assert 0 <= lv <= v
    assert lv >= v * (1 - m.max_haircut) - 1 - v / 10**6, "the cap bounds the haircut (up to the ppm rounding)"


@PROPS
@given(models, values, values, vols)
def test_liquidation_value_per_unit_does_not_rise_with_size(m: HaircutModel, a: int, b: int, vol: float | None) -> None:
    small, large = sorted((a, b))
    assert m.haircut_ppm(small, vol) <= m.haircut_ppm(large, vol)
    # per unit: L(large) / large <= L(small) / small, up to the floor of L(small) (one 1e-18 USD unit)
    assert m.liquidation_value(large, vol) * small <= (m.liquidation_value(small, vol) + 1) * large


@PROPS
@given(models, values, values, vols)
def test_a_larger_sale_never_fetches_less_in_total(m: HaircutModel, a: int, b: int, vol: float | None) -> None:
    """With max_haircut <= 2/3 the total is non-decreasing in the size (up to one ppm of rounding)."""
    small, large = sorted((a, b))
    assert m.liquidation_value(small, vol) <= m.liquidation_value(large, vol) + large // 10**6 + 1


@PROPS
@given(models, values, st.floats(0, 10), st.floats(0, 10))
def test_liquidation_value_does_not_rise_with_volatility(m: HaircutModel, v: int, x: float, y: float) -> None:
    calm, wild = sorted((x, y))
    assert m.liquidation_value(v, wild) <= m.liquidation_value(v, calm) <= m.liquidation_value(v, None)
    if calm <= m.reference_volatility:  # never scaled down below the base model: a calm market is the model itself
        assert m.liquidation_value(v, calm) == m.liquidation_value(v, None)


def test_the_formula_by_hand() -> None:
    m = HaircutModel(base_haircut=0.02, impact_coefficient=0.1, depth_usd=4_000_000, reference_volatility=0.5, max_haircut=0.6)
    # 1M of a 4M-deep market: 2 % + 0.1 * sqrt(1/4) = 7 %; at volatility 1.0 (twice the reference): 14 %
    assert m.haircut_ppm(1_000_000 * USD) == 70_000
    assert m.liquidation_value(1_000_000 * USD) == 930_000 * USD
    assert m.liquidation_value(1_000_000 * USD, 1.0) == 860_000 * USD
    assert m.liquidation_value(1_000_000 * USD, 0.25) == 930_000 * USD, "volatility below the reference never lowers the haircut"
    assert m.liquidation_value(10**15 * USD) == 400 * 10**12 * USD, "capped at 60 %"
    assert m.liquidation_value(0) == 0
    # the value is floored: 1 unit of 1e-18 USD keeps nothing after a 2 % haircut
    assert m.liquidation_value(1) == 0
    with pytest.raises(ValueError):
        m.liquidation_value(-1)
    with pytest.raises(ValueError):
        HaircutModel(base_haircut=0.5, impact_coefficient=0.1, depth_usd=1, reference_volatility=1, max_haircut=0.4)


def test_the_book_picks_models_by_symbol_alias_and_class() -> None:
    own = HaircutModel(base_haircut=0.1, impact_coefficient=0, depth_usd=1, reference_volatility=1, max_haircut=0.5)
    book = HaircutBook.build(models={"link": own}, stable_assets=["USDC", "sUSD"], aliases={"sETH": "WETH"}, volatilities={"weth": 2.1})
    assert book.model("LINK") is own and book.model("Link") is own, "symbols compare case-insensitively"
    assert book.model("sETH") is BUILTIN_MODELS["WETH"], "an alias takes its book symbol's model"
    assert book.model("susd") is DEFAULT_STABLE and book.model("UNI") is DEFAULT_VOLATILE
    assert book.volatility("sETH") == 2.1 and book.volatility("UNI") is None
    assert book.liquidation_value("LINK", 100 * USD) == 90 * USD
    v = 5_000_000 * USD
    assert book.liquidation_value("sETH", v) == BUILTIN_MODELS["WETH"].liquidation_value(v, 2.1) < BUILTIN_MODELS["WETH"].liquidation_value(v)
    assert HaircutBook.build(models={"WETH": own}).model("WETH") is own, "a configured entry replaces the built-in one"


# --- realized volatility -----------------------------------------------------------------------------------------
def test_realized_volatility_by_hand_with_irregular_gaps() -> None:
    day = 86_400
    points = [(0, 100.0), (day, 110.0), (3 * day, 99.0), (3 * day, 500.0), (7 * day, 99.0), (8 * day, -1.0)]
    # the second point at 3 days and the non-positive price are skipped
    r = [math.log(110 / 100), math.log(99 / 110), 0.0]
    expected = math.sqrt(sum(x * x for x in r) / (7 * day) * 365 * day)
    assert realized_volatility(points) == pytest.approx(expected, rel=1e-12)
    assert realized_volatility(list(reversed(points[:3]))) == realized_volatility(points[:3]), "order of the input does not matter"
    assert realized_volatility([]) is None and realized_volatility([(0, 1.0), (0, 2.0)]) is None


def test_realized_volatility_recovers_the_volatility_of_a_random_walk() -> None:
    rng = random.Random(5)
    sigma, year = 0.8, 365 * 86_400
    t, price, points = 0, 1000.0, [(0, 1000.0)]
    for _ in range(20_000):
        dt = rng.randint(60, 7200)  # irregular gaps of 1 minute to 2 hours
        price *= math.exp(rng.gauss(0, sigma * math.sqrt(dt / year)))
        t += dt
        points.append((t, price))
    assert realized_volatility(points) == pytest.approx(sigma, rel=0.03)
    scaled = [(t, p * 1234.5) for t, p in points]
    assert realized_volatility(scaled) == pytest.approx(realized_volatility(points), rel=1e-9), "the unit of the price does not matter"


# --- stored price history -------------------------------------------------------------------------------------------
def _snap(n: int, protocol: str, prices: tuple[PriceReading, ...]) -> Snapshot:
    blk = BlockRef(chain_id=1, number=n, hash=f"0x{n:064x}", timestamp=1_700_000_000 + 3600 * n)
    return Snapshot(
        chain="ethereum", protocol=protocol, kind="aave_v3", block=blk, positions=(), prices=prices, new_accounts=(),
        checkpoint_block=n, accounts_read=0, rpc_requests=1, duration_seconds=0.1,
    )  # fmt: skip


def test_price_history_reads_usd_prices_of_canonical_runs(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'h.db'}")
    for n, weth in ((1, 2000), (2, 2100), (3, 1900)):
        write_snapshot(engine, _snap(n, "lend", (
            PriceReading("0xW", "WETH", weth * 10**8, 8, "", None, None),
            PriceReading("0xU", "USDC", 10**8, 8, "", None, None),
            # a market oracle's ratio (loan units per collateral unit): not a USD price
            PriceReading("0xW", "WETH/USDC", weth * 10**24, 24, "", None, None, market="0x" + "11" * 32),
        )))  # fmt: skip
        # a perps market and a GMX-style price per smallest unit x 1e30 (WETH: 18 decimals -> 12 price decimals)
        write_snapshot(engine, _snap(n, "perp", (
            PriceReading("0xM", "sETH", (weth + 10) * 10**18, 18, "", None, None),
            PriceReading("0xW", "WETH", (weth + 20) * 10**12, 12, "", None, None),
        )))  # fmt: skip
    write_snapshot(engine, _snap(4, "lend", (PriceReading("0xW", "WETH", 10 * 10**8, 8, "", None, None),)))
    with Session(engine) as s:  # a reorged block's run does not count
        s.execute(update(SnapshotRun).where(SnapshotRun.block_number == 4).values(status="orphaned"))
        s.commit()
    h = price_history(engine)
    t = [1_700_000_000 + 3600 * n for n in (1, 2, 3)]
    assert set(h) == {"WETH", "USDC", "sETH"}
    # one point per (symbol, time): the mean of the protocols' prices
    assert h["WETH"] == [(t[0], 2010.0), (t[1], 2110.0), (t[2], 1910.0)]
    assert h["sETH"] == [(t[0], 2010.0), (t[1], 2110.0), (t[2], 1910.0)]
    assert h["USDC"] == [(x, 1.0) for x in t]
    assert price_history(engine, since_timestamp=t[1]) == {k: v[1:] for k, v in h.items()}


# --- [risk] settings ------------------------------------------------------------------------------------------------
def test_risk_settings_defaults() -> None:
    risk = load_settings().risk
    assert {"USDC", "USDT", "DAI", "sUSD"} <= set(risk.stable_assets)
    assert risk.asset_aliases == {"sETH": "WETH", "sBTC": "WBTC", "ETH": "WETH", "BTC": "WBTC"}
    assert (risk.warning_hf_wad, risk.critical_hf_wad) == (125 * 10**16, 105 * 10**16)
    assert risk.default_haircut.model() == DEFAULT_VOLATILE and risk.stable_haircut.model() == DEFAULT_STABLE
    assert risk.var.levels == [0.95, 0.99] and risk.var.paths == 10_000 and risk.var.seed == 7 and risk.scenarios_file is None


@pytest.mark.parametrize(
    ("toml", "expected"),
    [
        ('[risk]\nwarning_hf = "abc"', "risk.warning_hf: 'abc' is not a number"),
        ('[risk]\ncritical_hf = "-1"', "risk.critical_hf: '-1' must be a positive number"),
        ('[risk]\nwarning_hf = "1.01"', "risk: warning_hf (1.01) must be >= critical_hf (1.05)"),
        ("[risk.haircuts.WETH]\nmax_haircut = 0.9", "risk.haircuts.WETH.max_haircut"),
        ("[risk.haircuts.WETH]\nbase_haircut = 0.6", "risk.haircuts.WETH: max_haircut (0.5) must be at least base_haircut (0.6)"),
        ("[risk.default_haircut]\ndepth_usd = 0", "risk.default_haircut.depth_usd"),
        ("[risk]\nvolatility_window_days = 0", "risk.volatility_window_days"),
        ("[risk.var]\nlevels = [0.95, 1.5]", "risk.var.levels: 1.5 is not a confidence level"),
        ('[risk.var.correlations]\n"WETH-WBTC" = 0.5', "risk.var.correlations: 'WETH-WBTC' is not an asset pair"),
        ('[risk.var.correlations]\n"WETH/WBTC" = 1.5', "risk.var.correlations: WETH/WBTC: correlation 1.5 is not in [-1, 1]"),
        ("[risk]\nhaircut = 1", "unknown key 'risk.haircut'"),
    ],
)
def test_bad_risk_settings_name_the_key(toml: str, expected: str, tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text(toml + "\n")
    with pytest.raises(ConfigError) as err:
        load_settings(cfg)
    assert expected in str(err.value) and "\n" not in str(err.value)


def test_risk_settings_from_file_and_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text('[risk]\nwarning_hf = "1.5"\nstable_assets = ["USDC"]\n[risk.haircuts.LINK]\ndepth_usd = 1e6\n')
    monkeypatch.setenv("INDEXER_RISK__CRITICAL_HF", "1.1")
    risk = load_settings(cfg).risk
    assert risk.warning_hf_wad == 15 * 10**17 and risk.critical_hf_wad == 11 * 10**17 and risk.stable_assets == ["USDC"]
    assert risk.haircuts["LINK"].model().depth_usd == 1e6 and risk.haircuts["LINK"].base_haircut == DEFAULT_VOLATILE.base_haircut


def test_a_bad_risk_setting_exits_2_with_one_line(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text('[risk]\ncritical_hf = "x"\n')
    proc = indexer("report", "--config", str(cfg), cwd=tmp_path)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2 and len(lines) == 1 and "risk.critical_hf" in lines[0], proc.stderr
