"""Scenarios (TOML format, validation, aliases, groups) and the stress test over hand-checkable positions."""

from __future__ import annotations

from fractions import Fraction

import pytest

from indexer.constants import WAD
from indexer.risk.scenarios import Scenario, ScenarioError, load_scenarios, parse_scenarios
from indexer.risk.stress import run_stress
from tests.linear_models import FlatHaircuts, LinearLending, LinearPerp, stored, usd, without_model

ALIASES = {"sETH": "WETH", "sBTC": "WBTC", "ETH": "WETH", "BTC": "WBTC"}


# --- scenarios ----------------------------------------------------------------------------------------------
def test_packaged_scenarios_load_with_zero_and_crashes() -> None:
    scenarios = load_scenarios()
    assert scenarios["zero"].shocks_for(ALIASES) == {}
    crash = scenarios["eth_crash"].shocks_for(ALIASES)
    assert crash["WETH"] == Fraction(7, 10)
    assert crash["sETH"] == crash["ETH"] == crash["WETH"], "perps and GMX's ETH follow WETH through the aliases"
    assert crash["wstETH"] == 1 + Fraction(105, 100) * Fraction(-3, 10)
    assert scenarios["usdc_depeg"].shocks_for(ALIASES)["USDC"] == Fraction(87, 100)
    # Every demo symbol is shocked by at least one scenario, and every scenario but zero shocks something.
    moved = set()
    for name, s in scenarios.items():
        shocks = s.shocks_for(ALIASES)
        assert bool(shocks) == (name != "zero"), name
        moved |= set(shocks)
    assert {"WETH", "wstETH", "WBTC", "LINK", "USDC", "sETH", "sBTC", "BTC"} <= moved


def test_groups_multiply_with_own_shocks_and_explicit_leg_shock_wins() -> None:
    s = parse_scenarios(
        """
        [scenarios.x]
        description = "d"
        shocks = { WETH = -0.10, sETH = -0.5 }
        [scenarios.x.groups.eth]
        shock = -0.20
        betas = { weth = 1.5 }
        """
    )["x"]
    shocks = s.shocks_for({"sETH": "WETH", "ETH": "WETH"})
    assert shocks["WETH"] == Fraction(9, 10) * Fraction(7, 10)  # (1 - 0.1) * (1 - 1.5 * 0.2)
    assert shocks["ETH"] == shocks["WETH"]
    assert shocks["sETH"] == Fraction(1, 2)  # named by the scenario itself


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("[scenarios.a]\nshock = { WETH = -0.1 }", "unknown key 'scenarios.a.shock'"),
        ("[scenarios.a]\nshocks = { WETH = -1.5 }", "'scenarios.a.shocks.WETH' = -1.5 is below -1"),
        ("[scenarios.a.groups.g]\nshock = -0.8\nbetas = { WETH = 1.5 }", "'scenarios.a.groups.g.betas.WETH'"),
        ("[scenarios.a.groups.g]\nshock = -0.1\nbeta = { WETH = 1 }", "unknown key 'scenarios.a.groups.g.beta'"),
        ("[scenarios.a.groups.g]\nbetas = { WETH = 1 }", "missing key 'scenarios.a.groups.g.shock'"),
        ("[scenarios.a]\nshocks = { WETH = 'x' }", "'scenarios.a.shocks.WETH' must be a number"),
        ("[scenarios.a]\nshocks = { WETH = -0.1, weth = -0.2 }", "'scenarios.a.shocks.weth' repeats 'WETH'"),
        ("[other]\nx = 1", "unknown key 'other'"),
        ("[scenarios.a\n", "not valid TOML"),
    ],
)
def test_invalid_scenarios_name_the_scenario_and_key(text: str, needle: str) -> None:
    with pytest.raises(ScenarioError) as err:
        parse_scenarios(text)
    assert needle in str(err.value)


def test_load_scenarios_from_a_file(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "s.toml"
    path.write_text('[scenarios.down]\ndescription = "x"\nshocks = { LINK = -0.25 }\n')
    assert load_scenarios(path)["down"].shocks_for({}) == {"LINK": Fraction(3, 4)}
    assert load_scenarios(str(path))["down"].description == "x"
    with pytest.raises(ScenarioError, match="not found"):
        load_scenarios(tmp_path / "missing.toml")


# --- stress --------------------------------------------------------------------------------------------------
def _book() -> list:  # type: ignore[type-arg]
    prices = {"WETH": 2000, "USDC": 1}
    return [
        # A: HF 16000/15000; at WETH 1400: RC 11200 < 15000, collateral 14000 < debt 15000.
        stored(LinearLending("0xA", prices=prices, collateral={"WETH": (10, 8000)}, debt={"USDC": 15_000})),
        # B: stays healthy (RC 11200 >= 5000).
        stored(LinearLending("0xB", prices=prices, collateral={"WETH": (10, 8000)}, debt={"USDC": 5_000})),
        # C: a long sETH perp: at 1400 its PnL is -6000, remaining margin -3000.
        stored(LinearPerp("0xC", symbol="sETH", size=10, entry=2000, price=2000, margin=3000)),
        # D: liquidatable already (RC 1600 < 1700); after: collateral 1400, debt 1700.
        stored(LinearLending("0xD", prices=prices, collateral={"WETH": (1, 8000)}, debt={"USDC": 1_700})),
        without_model("0xE"),
    ]


def _crash() -> Scenario:
    return parse_scenarios('[scenarios.crash]\ndescription = "WETH -30 %"\nshocks = { WETH = -0.30 }')["crash"]


def test_zero_scenario_reproduces_the_stored_verdicts() -> None:
    book = _book()
    result = run_stress(book, load_scenarios()["zero"], FlatHaircuts({"WETH": 1000}), ALIASES)
    assert result.shocks == {}
    assert len(result.positions) == 4 and [s.address for s in result.skipped] == ["0xE"]
    for p in result.positions:
        assert p.liquidatable_after == p.liquidatable_before == p.stored_liquidatable
        assert p.health_factor_after == p.health_factor_before
    t = result.total
    assert t.newly_liquidatable == 0 and t.bad_debt_created_usd == 0 and t.skipped == 1
    assert t.liquidatable_before == t.liquidatable_after == 1


def test_crash_scenario_hand_checked() -> None:
    book = _book()
    haircuts = FlatHaircuts({"WETH": 1000})  # WETH sells 10 % below market, sUSD at market
    r = run_stress(book, _crash(), haircuts, ALIASES)
    by = {p.address: p for p in r.positions}
    a, b, c, d = by["0xA"], by["0xB"], by["0xC"], by["0xD"]
    assert (a.newly_liquidatable, b.liquidatable_after, c.newly_liquidatable, d.newly_liquidatable) == (True, False, True, False)
    assert d.liquidatable_before and d.liquidatable_after
    assert a.health_factor_before == 16_000 * WAD // 15_000
    assert a.health_factor_after == 11_200 * WAD // 15_000
    assert a.collateral_after_usd == usd(14_000)
    assert a.bad_debt_after_usd == usd(1_000) and a.bad_debt_before_usd == 0
    assert a.bad_debt_costs_after_usd == usd(15_000 - (14_000 - 1_400))  # collateral at its liquidation value
    assert c.nlv_after_usd == usd(-3_000) and c.bad_debt_after_usd == usd(3_000)
    assert d.bad_debt_after_usd == usd(300) and d.bad_debt_before_usd == 0
    # Newly liquidatable first.
    assert {p.address for p in r.positions[:2]} == {"0xA", "0xC"}

    t = r.total
    assert (t.positions, t.skipped, t.newly_liquidatable, t.liquidatable_after) == (4, 1, 2, 3)
    assert t.collateral_liquidatable_usd == usd(14_000 + 3_000 + 1_400)
    assert t.new_collateral_liquidatable_usd == usd(14_000 + 3_000)
    assert t.bad_debt_created_usd == usd(1_000 + 3_000 + 300)
    # C closes 10 sETH at 1400: its notional (14000) pays the 10 % forced-sale haircut too (the portfolio's rule).
    assert t.bad_debt_costs_created_usd == usd(2_400 + (3_000 + 1_400) + (1_700 - 1_260))  # before: every one covered

    assert r.by_protocol["lend"].newly_liquidatable == 1 and r.by_protocol["perps"].newly_liquidatable == 1
    assert r.by_protocol["old"].skipped == 1
    weth, usdc, susd = r.by_asset["WETH"], r.by_asset["USDC"], r.by_asset["sUSD"]
    assert weth.collateral_liquidatable_usd == usd(14_000 + 1_400) and weth.newly_liquidatable == 1 and weth.positions == 3
    assert usdc.bad_debt_after_usd == usd(1_000 + 300), "bad debt goes to the debt legs"
    assert susd.bad_debt_after_usd == usd(3_000), "a perp's bad debt goes to its margin"
    assert ("WETH", usd(14_000)) in haircuts.calls, "the haircut book is asked with the book symbol and the shocked value"
    js = r.to_json()
    assert js["total"]["newly_liquidatable"] == 2 and js["shocks"]["sETH"] == 0.7


def test_without_the_alias_the_perp_does_not_move() -> None:
    r = run_stress(_book(), _crash(), FlatHaircuts({}), {})
    assert not {p.address: p for p in r.positions}["0xC"].liquidatable_after


def test_a_rising_debt_price_liquidates() -> None:
    book = [stored(LinearLending("0xF", prices={"WETH": 2000, "USDC": 1}, collateral={"WETH": (10, 8000)}, debt={"USDC": 15_000}))]
    spike = parse_scenarios("[scenarios.s]\nshocks = { USDC = 0.10 }")["s"]
    (p,) = run_stress(book, spike, FlatHaircuts({}), ALIASES).positions
    assert p.newly_liquidatable and p.debt_after_usd == usd(16_500)
