"""Liquidation cascades: a hand-computed example, perps, the round cap, impact from the haircut models."""

from __future__ import annotations

from fractions import Fraction

import pytest

from indexer.risk.cascade import LiquidationRule, SqrtImpact, impact_from_haircuts, liquidate, run_cascade
from indexer.risk.haircut import HaircutBook, HaircutModel
from indexer.risk.scenarios import parse_scenarios
from tests.linear_models import LinearLending, LinearPerp, stored, usd

PRICES = {"WETH": 1000, "USDC": 1}
RULES = {"linear_lending": LiquidationRule(Fraction(1, 4))}  # a 25 % bonus: the seizures come out round


def _impact(symbol: str) -> SqrtImpact:
    # Selling S dollars of WETH in total lowers its price by sqrt(S / 1,000,000): 10k -> 10 %, 40k -> 20 %, ...
    return SqrtImpact(Fraction(1), usd(1_000_000))


def _scenario(shock: str = "-0.20"):  # type: ignore[no-untyped-def]
    return parse_scenarios(f"[scenarios.s]\nshocks = {{ WETH = {shock} }}")["s"]


def _book() -> list:  # type: ignore[type-arg]
    def lend(account: str, weth: int, lt: int, debt: int):  # type: ignore[no-untyped-def]
        return stored(LinearLending(account, prices=PRICES, collateral={"WETH": (weth, lt)}, debt={"USDC": debt}))

    return [
        lend("0x1", 19, 5000, 8_000),  # RC at 800: 7,600 < 8,000; seizes 8,000 x 1.25 = 10,000 of its 15,200
        lend("0x2", 62, 5000, 24_000),  # RC at 800: 24,800 (healthy); at 720: 22,320; seizes 30,000 of 44,640
        lend("0x3", 120, 5000, 40_000),  # RC at 720: 43,200; at 640: 38,400; seizes 50,000 of 76,800
        lend("0x4", 125, 9500, 70_000),  # RC at 640: 76,000; at 560: 66,500; collateral 70,000 < 87,500: all seized
        lend("0x5", 100, 5000, 10_000),  # RC at 480: 24,000: survives
    ]


def test_hand_computed_cascade() -> None:
    """WETH 1000 -> 800 (-20 %). Round by round (cumulative WETH sold -> impact -> next price):

    round 0 @ 800: 0x1 liquidated, sells 10,000            -> sqrt(10k / 1M) = 10 % -> 800 x 0.9 = 720
    round 1 @ 720: 0x2 liquidated, sells 30,000 (40,000)   -> 20 %                  -> 640
    round 2 @ 640: 0x3 liquidated, sells 50,000 (90,000)   -> 30 %                  -> 560
    round 3 @ 560: 0x4 liquidated, sells 70,000 (160,000)  -> 40 %                  -> 480
                   its 70,000 repay 70,000 / 1.25 = 56,000 of 70,000 debt: bad debt 14,000
    round 4 @ 480: nobody (0x5's RC 24,000 >= 10,000): fixed point.
    """
    r = run_cascade(_book(), _scenario(), impact=_impact, aliases={}, rules=RULES)
    assert r.converged and r.positions == 5
    assert [rd.multipliers["WETH"] for rd in r.rounds] == [Fraction(8, 10), Fraction(72, 100), Fraction(64, 100), Fraction(56, 100)]
    assert [[liq.address for liq in rd.liquidations] for rd in r.rounds] == [["0x1"], ["0x2"], ["0x3"], ["0x4"]]
    assert [rd.sold_usd for rd in r.rounds] == [{"WETH": usd(10_000)}, {"WETH": usd(30_000)}, {"WETH": usd(50_000)}, {"WETH": usd(70_000)}]
    assert [rd.bad_debt_usd for rd in r.rounds] == [0, 0, 0, usd(14_000)]
    assert r.final_multipliers == {"WETH": Fraction(48, 100)}
    assert r.bad_debt_usd == usd(14_000) and r.sold_usd == {"WETH": usd(160_000)} and r.liquidated == 4
    last = r.rounds[-1].liquidations[0]
    assert (last.collateral_usd, last.seized_usd, last.debt_usd) == (usd(70_000), usd(70_000), usd(70_000))
    js = r.to_json()
    assert js["rounds"][3]["bad_debt_usd"] == 14_000 and js["final_multipliers"] == {"WETH": 0.48}


def test_round_cap_stops_before_the_fixed_point() -> None:
    r = run_cascade(_book(), _scenario(), impact=_impact, aliases={}, rules=RULES, max_rounds=2)
    assert not r.converged and len(r.rounds) == 2 and r.final_multipliers == {"WETH": Fraction(64, 100)}


def test_no_shock_no_cascade() -> None:
    r = run_cascade(_book(), _scenario("0"), impact=_impact, aliases={}, rules=RULES)
    assert r.converged and r.rounds == () and r.final_multipliers == {}


def test_perps_are_closed_without_a_sale() -> None:
    perp = stored(LinearPerp("0xp", symbol="sETH", size=10, entry=1000, price=1000, margin=1000))  # at 800: -1000
    r = run_cascade([perp], _scenario(), impact=_impact, aliases={"sETH": "WETH"})
    (rd,) = r.rounds
    assert rd.sold_usd == {} and rd.bad_debt_usd == usd(1_000) and r.final_multipliers == {"WETH": Fraction(8, 10)}


def test_liquidate_rule() -> None:
    ev = LinearLending("0x", prices=PRICES, collateral={"WETH": (10, 8000)}, debt={"USDC": 9_000}).evaluate()
    assert liquidate(ev, LiquidationRule(Fraction(5, 100)), {}) == (usd(9_450), 0, {"WETH": usd(9_450)})
    assert liquidate(ev, LiquidationRule(Fraction(25, 100)), {}) == (usd(10_000), usd(1_000), {"WETH": usd(10_000)})


def test_impact_from_the_haircut_models() -> None:
    book = HaircutBook.build(models={"WETH": HaircutModel(base_haircut=0.01, impact_coefficient=0.1, depth_usd=4_000_000, reference_volatility=0.7, max_haircut=0.5)})
    impact = impact_from_haircuts(book)("WETH")
    assert impact.drop(usd(1_000_000)) == Fraction(5, 100)  # 0.1 x sqrt(1M / 4M)
    assert impact.drop(usd(10**12)) == 1
    with pytest.raises(ValueError):
        run_cascade(_book(), _scenario(), impact=_impact, aliases={}, max_rounds=0)
