"""Per-address portfolios (risk.portfolio) and the solvency audit (risk.solvency), over small position models
written out here; and the property that health never rises when a collateral price falls, for the pure
protocol rules (risk.aave_v3, risk.comet, risk.morpho)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from indexer.constants import UINT256_MAX, WAD
from indexer.domain import BlockRef, PositionLeg
from indexer.risk import comet, morpho
from indexer.risk.aave_v3 import AaveMarket, AaveReserve, AaveUser, account_data, liquidation_verdict, make_configuration, with_collateral_prices_scaled
from indexer.risk.haircut import HaircutBook, HaircutModel
from indexer.risk.portfolio import OTHER, build_portfolio, build_portfolios, tier_of
from indexer.risk.reprice.base import FALLING, RISING, Evaluation, OraclePrice, PositionModel, symbol_key
from indexer.risk.solvency import HF_BINS, hf_bin, solvency

USD = 10**18
PROPS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
BLOCK = BlockRef(chain_id=1, number=1, hash="0x" + "00" * 32, timestamp=1_700_000_000)
STABLES = ("USDC", "sUSD")
FLAT = HaircutModel(base_haircut=0.1, impact_coefficient=0.0, depth_usd=1.0, reference_volatility=1.0, max_haircut=0.5)
W, C = 125 * 10**16, 105 * 10**16  # warning and critical health factors


# --- small position models: a linear lending rule and a linear perp ----------------------------------------------
class Lending(PositionModel):
    """Collateral legs (symbol -> (tokens x 1e18, USD answer x 1e8, LT bps)) against debt legs (symbol -> (tokens x 1e18,
    answer)); value = tokens * answer / 1e8 (USD x 1e18); HF = sum(value * LT) / (debt * 1e4); liquidatable iff HF < 1."""

    kind = "test_lending"

    def __init__(self, account: str, collateral: Mapping[str, tuple[int, int, int]], debt: Mapping[str, tuple[int, int]], *, protocol: str = "lend", market: str = "") -> None:
        super().__init__(protocol=protocol, account=account, market=market, block=BLOCK)
        self.collateral, self.debt = dict(collateral), dict(debt)

    def oracle_prices(self) -> dict[str, OraclePrice]:
        out = {symbol_key(s): OraclePrice(s, "0x" + s, a, 8, "USD x 1e8", FALLING) for s, (_, a, _) in self.collateral.items()}
        out.update({symbol_key(s): OraclePrice(s, "0x" + s, a, 8, "USD x 1e8", RISING) for s, (_, a) in self.debt.items()})
        return out

    def evaluate_at(self, answers: Mapping[str, int]) -> Evaluation:
        legs, weighted, coll, debt = [], 0, 0, 0
        for s, (amount, answer, lt) in self.collateral.items():
            value = amount * answers.get(symbol_key(s), answer) // 10**8
            legs.append(PositionLeg("0x" + s, s, "collateral", amount, 18, value, lt))
            weighted += value * lt
            coll += value
        for s, (amount, answer) in self.debt.items():
            value = amount * answers.get(symbol_key(s), answer) // 10**8
            legs.append(PositionLeg("0x" + s, s, "debt", amount, 18, value, 0))
            debt += value
        hf = UINT256_MAX if debt == 0 else weighted * WAD // (debt * 10_000)
        return Evaluation(hf, hf < WAD, coll, debt, coll - debt, tuple(legs))


class Perp(PositionModel):
    """A long (size > 0) or short of ``symbol`` with sUSD margin: NLV = margin + size * (price - entry); liquidatable iff
    NLV <= maintenance; HF = NLV / maintenance."""

    kind = "test_perp"

    def __init__(self, account: str, symbol: str, size: int, entry: int, answer: int, margin: int, maintenance: int) -> None:
        super().__init__(protocol="perp", account=account, market="0x" + symbol, block=BLOCK)
        self.symbol, self.size, self.entry, self.answer, self.margin, self.maintenance = symbol, size, entry, answer, margin, maintenance

    def oracle_prices(self) -> dict[str, OraclePrice]:
        return {symbol_key(self.symbol): OraclePrice(self.symbol, "0xM", self.answer, 8, "USD x 1e8", FALLING if self.size > 0 else RISING)}

    def evaluate_at(self, answers: Mapping[str, int]) -> Evaluation:
        price = answers.get(symbol_key(self.symbol), self.answer)
        nlv = self.margin + self.size * (price - self.entry) // 10**8
        notional = abs(self.size) * price // 10**8
        legs = (
            PositionLeg("0xS", "sUSD", "collateral", self.margin, 18, self.margin, 0),
            PositionLeg("0xM", self.symbol, "long" if self.size > 0 else "short", abs(self.size), 18, notional, 0),
        )
        hf = max(0, nlv) * WAD // self.maintenance
        return Evaluation(hf, nlv <= self.maintenance, self.margin, 0, nlv, legs)


@dataclass(frozen=True)
class Row:
    """The fields of store.db.PositionRow the portfolio reads."""

    address: str
    protocol: str
    kind: str
    chain: str
    market: str
    health_factor: int
    liquidatable: bool
    collateral_usd: int
    debt_usd: int
    nlv_usd: int
    legs: list[dict[str, Any]]


@dataclass(frozen=True)
class Stored:
    row: Row
    model: PositionModel | None


def stored(model: PositionModel, *, chain: str = "ethereum", keep_model: bool = True) -> Stored:
    ev = model.evaluate()
    legs = [{"symbol": leg.symbol, "side": leg.side, "value_usd": str(leg.value_usd), "amount": str(leg.amount)} for leg in ev.legs]
    row = Row(model.account, model.protocol, model.kind, chain, model.market_id, ev.health_factor, ev.liquidatable, ev.collateral_usd, ev.debt_usd, ev.nlv_usd, legs)
    return Stored(row, model if keep_model else None)


def flat_book(**kw: Any) -> HaircutBook:
    return HaircutBook.build(default=FLAT, stable_default=FLAT, stable_assets=STABLES, aliases={"sETH": "WETH"}, builtin=False, **kw)


# --- tiers ---------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("hf", "liquidatable", "tier"),
    [(UINT256_MAX, False, "healthy"), (W, False, "healthy"), (W - 1, False, "warning"), (C, False, "warning"), (C - 1, False, "critical"),
     (0, False, "critical"), (2 * WAD, True, "liquidation"), (WAD, True, "liquidation")],
)  # fmt: skip
def test_tier_of(hf: int, liquidatable: bool, tier: str) -> None:
    assert tier_of(hf, liquidatable, warning_hf=W, critical_hf=C) == tier


# --- NLV is the sum of its parts --------------------------------------------------------------------------------------
amounts = st.integers(0, 10**6 * USD)
answers = st.integers(10**6, 10**13)  # $0.01 .. $100,000
lending = st.builds(
    lambda coll, debt, protocol: ("lend", coll, debt, protocol),
    st.dictionaries(st.sampled_from(["WETH", "WBTC", "LINK", "USDC"]), st.tuples(amounts, answers, st.integers(0, 9500)), min_size=1, max_size=3),
    st.dictionaries(st.sampled_from(["USDC", "WETH"]), st.tuples(amounts, answers), max_size=2),
    st.sampled_from(["lend-a", "lend-b", "lend-c"]),
)
perps = st.builds(
    lambda sym, size, entry, answer, margin: ("perp", sym, size, entry, answer, margin),
    st.sampled_from(["sETH", "WBTC"]), st.integers(-10**4 * USD, 10**4 * USD).filter(bool), answers, answers, st.integers(1, 10**6 * USD),
)  # fmt: skip


def build(spec: tuple[Any, ...], account: str, i: int) -> PositionModel:
    if spec[0] == "lend":
        return Lending(account, spec[1], spec[2], protocol=spec[3], market=f"m{i}")
    _, sym, size, entry, answer, margin = spec
    return Perp(account, sym, size, entry, answer, margin, max(1, margin // 10))


@PROPS
@given(st.lists(st.tuples(st.sampled_from(["0xA", "0xB", "0xC"]), lending | perps), min_size=1, max_size=8))
def test_nlv_is_the_sum_of_its_parts(specs: list[tuple[str, tuple[Any, ...]]]) -> None:
    book = HaircutBook.build(stable_assets=STABLES, aliases={"sETH": "WETH"}, volatilities={"WETH": 1.5})
    items = [stored(build(spec, account, i)) for i, (account, spec) in enumerate(specs)]
    ports = build_portfolios(items, book, warning_hf=W, critical_hf=C)
    assert [p.address for p in ports] == sorted({a for a, _ in specs})
    for p in ports:
        mine = [s.row for s in items if s.row.address == p.address]
        assert p.market_nlv_usd == sum(r.nlv_usd for r in mine)
        assert p.collateral_usd == sum(r.collateral_usd for r in mine) and p.debt_usd == sum(r.debt_usd for r in mine)
        # liquidation NLV: each sold leg (collateral, supply, long, short) at the book's liquidation value
        losses = sum(int(leg["value_usd"]) - book.liquidation_value(leg["symbol"], int(leg["value_usd"]))
                     for r in mine for leg in r.legs if leg["side"] != "debt")  # fmt: skip
        assert p.liquidation_nlv_usd == p.market_nlv_usd - losses == sum(x.liquidation_nlv_usd for x in p.positions)
        assert p.liquidation_nlv_usd <= p.market_nlv_usd
        # exposures (signed, per book symbol) plus the rest add up to the NLV
        assert sum(a.exposure_usd for a in p.assets) == p.market_nlv_usd
        signed: dict[str, int] = {}
        for r in mine:
            for leg in r.legs:
                sign = -1 if leg["side"] in ("debt", "short") else 1
                key = book.canonical(leg["symbol"])
                signed[key] = signed.get(key, 0) + sign * int(leg["value_usd"])
        assert {a.symbol: a.exposure_usd for a in p.assets if a.symbol != OTHER} == {k: v for k, v in signed.items() if v}
        if p.market_nlv_usd > 0:
            shares = [a.share for a in p.assets if a.share is not None]
            assert abs(sum(shares) - 1) <= 1e-9 * (1 + sum(abs(x) for x in shares))  # floats: exact up to cancellation
        lowest = min(mine, key=lambda r: r.health_factor)
        assert p.lowest_health_factor == lowest.health_factor
        assert p.tier == tier_of(lowest.health_factor, any(r.liquidatable for r in mine), warning_hf=W, critical_hf=C)
        assert p.liquidatable == sum(r.liquidatable for r in mine)
    # the solvency audit adds up the same positions
    per, total = solvency(items, book)
    assert total.positions == len(items) == sum(s.positions for s in per)
    assert total.nlv_usd == sum(p.market_nlv_usd for p in ports)
    assert total.liquidation_nlv_usd == sum(p.liquidation_nlv_usd for p in ports)
    assert total.bad_debt_usd == sum(max(0, -s.row.nlv_usd) for s in items)
    assert sum(b.positions for b in total.histogram) == len(items)


def test_portfolio_by_hand() -> None:
    book = flat_book()
    a = stored(Lending("0xA", {"WETH": (10 * USD, 2000 * 10**8, 8000)}, {"USDC": (8000 * USD, 10**8)}, protocol="lend-a"))
    b = stored(Perp("0xA", "sETH", 2 * USD, 1900 * 10**8, 2000 * 10**8, 1000 * USD, 300 * USD), chain="optimism")
    p = build_portfolio([a, b], book, warning_hf=W, critical_hf=C)
    # lending NLV 20000 - 8000 = 12000; perp NLV 1000 + 2 * (2000 - 1900) = 1200
    assert p.market_nlv_usd == 13_200 * USD
    # 10 % of the sold legs: WETH collateral 20000, sUSD margin 1000, the perp's 4000 notional
    assert p.liquidation_nlv_usd == 13_200 * USD - 2_500 * USD
    assert p.chains == ("ethereum", "optimism")
    assert p.lowest_health_factor == 2 * WAD and p.lowest_position == ("lend-a", "") and p.tier == "healthy"
    shares = {x.symbol: x.exposure_usd for x in p.assets}
    # WETH: 20000 collateral + 4000 long (sETH is WETH); USDC -8000; sUSD 1000; the perp's USD side 1200 - 1000 - 4000
    assert shares == {"WETH": 24_000 * USD, "USDC": -8_000 * USD, "sUSD": 1_000 * USD, OTHER: -3_800 * USD}
    assert p.assets[0].symbol == "WETH" and p.assets[0].share == pytest.approx(24_000 / 13_200)


# --- liquidation levels ---------------------------------------------------------------------------------------------
def test_liquidation_levels_by_hand() -> None:
    book = flat_book()
    # HF 2: liquidatable when 20000 m * 0.8 < 8000, m < 1/2: first at a drop of 50.01 % (at exactly 50 % HF is 1)
    a = stored(Lending("0xA", {"WETH": (10 * USD, 2000 * 10**8, 8000)}, {"USDC": (8000 * USD, 10**8)}, protocol="lend-a"))
    # HF 1.5: 45000 m < 30000, m < 2/3: at -33.33 % 60000 * 0.6667 * 0.75 = 30001.5 is safe; -33.34 % is not
    b = stored(Lending("0xA", {"WBTC": (1 * USD, 60000 * 10**8, 7500)}, {"USDC": (30000 * USD, 10**8)}, protocol="lend-b"))
    lv = build_portfolio([a, b], book, warning_hf=W, critical_hf=C).levels
    assert lv is not None
    assert lv.first_liquidation == 0.3334 and lv.first_position == ("lend-b", "")
    assert lv.all_liquidatable == 0.5001
    assert lv.shocked == ("WBTC", "WETH"), "stablecoins are not shocked"
    # liquidation NLV = 0.9 * 80000 m - 38000 <= 0 from m <= 0.52777..: drop 47.23 %; checked against a full scan too
    assert lv.liquidation_nlv_zero == 0.4723

    def liq_nlv(d: int) -> int:
        m = Fraction(10_000 - d, 10_000)
        weth = 10 * USD * (2000 * 10**8 * m.numerator // m.denominator) // 10**8
        wbtc = USD * (60000 * 10**8 * m.numerator // m.denominator) // 10**8
        return weth * 9 // 10 + wbtc * 9 // 10 - 38_000 * USD

    assert next(d for d in range(10_000) if liq_nlv(d) <= 0) == 4723


def test_liquidation_prices_per_volatile_asset_by_hand() -> None:
    """Each position's volatile assets get the exact answer at which it flips (stablecoins left out)."""
    book = flat_book()
    # WETH collateral against WBTC debt: liquidatable when 20000 x 0.8 x (p / 2000) < 0.2 x q (WBTC answer q).
    # WETH alone (q = 60000 -> debt 12000): p < 1500 exactly; the first answer that flips is 1500e8 - 1.
    # WBTC alone (p = 2000): 16000 < 0.2 q  ->  q > 80000: the first answer is 80000e8 + 1.
    a = stored(Lending("0xA", {"WETH": (10 * USD, 2000 * 10**8, 8000), "USDC": (100 * USD, 10**8, 0)}, {"WBTC": (USD // 5, 60000 * 10**8)}))
    b = stored(Perp("0xA", "sETH", -2 * USD, 2000 * 10**8, 2000 * 10**8, 1000 * USD, 300 * USD))  # short: NLV 1000 - 2 (p - 2000) <= 300
    p = build_portfolio([a, b], book, warning_hf=W, critical_hf=C)
    by_protocol = {r.protocol: {lp.symbol: lp for lp in r.liquidation_prices} for r in p.positions}
    lend = by_protocol["lend"]
    assert set(lend) == {"WETH", "WBTC"}, "USDC is a stablecoin"
    assert lend["WETH"].liquidation_answer == 1500 * 10**8 - 1 and lend["WETH"].direction == FALLING
    assert lend["WBTC"].liquidation_answer == 80000 * 10**8 + 1 and lend["WBTC"].direction == RISING
    assert lend["WETH"].move == pytest.approx(-0.25)
    assert by_protocol["perp"]["sETH"].liquidation_answer == 2350 * 10**8 and by_protocol["perp"]["sETH"].direction == RISING
    for lp in (lend["WETH"], lend["WBTC"]):  # one unit back towards safety it is not liquidatable
        back = lp.liquidation_answer + (1 if lp.direction == FALLING else -1)
        assert a.model.evaluate_at({symbol_key(lp.symbol): lp.liquidation_answer}).liquidatable
        assert not a.model.evaluate_at({symbol_key(lp.symbol): back}).liquidatable
    assert p.to_json()["positions"][0]["liquidation_prices"][0]["liquidation_answer"] in {str(1500 * 10**8 - 1), str(80000 * 10**8 + 1)}
    # Without levels (the many-address listing) nothing is searched.
    assert all(not r.liquidation_prices for r in build_portfolios([a, b], book, warning_hf=W, critical_hf=C)[0].positions)


def test_levels_of_positions_never_liquidated_by_a_fall_already_liquidatable_or_without_state() -> None:
    book = flat_book()
    # WETH debt against USDC collateral: a fall of volatile prices only helps
    safe = stored(Lending("0xA", {"USDC": (10_000 * USD, 10**8, 8000)}, {"WETH": (2 * USD, 2000 * 10**8)}))
    lv = build_portfolio([safe], book, warning_hf=W, critical_hf=C).levels
    assert lv is not None and lv.first_liquidation is None and lv.all_liquidatable is None and lv.liquidation_nlv_zero is None
    # a short perp: the same
    short = stored(Perp("0xA", "sETH", -USD, 2000 * 10**8, 2000 * 10**8, 500 * USD, 100 * USD))
    assert build_portfolio([short], book, warning_hf=W, critical_hf=C).levels.first_liquidation is None  # type: ignore[union-attr]
    # a long perp under water already
    under = stored(Perp("0xA", "sETH", USD, 2000 * 10**8, 1500 * 10**8, 400 * USD, 100 * USD))
    lv = build_portfolio([under, safe], book, warning_hf=W, critical_hf=C).levels
    assert lv is not None and lv.first_liquidation == 0.0 and lv.first_position == ("perp", "0xsETH") and lv.all_liquidatable is None
    assert lv.shocked == ("WETH", "sETH")
    # a position stored without state counts at its current values and is never liquidated by the search
    frozen = stored(Lending("0xA", {"WETH": (10 * USD, 2000 * 10**8, 8000)}, {"USDC": (8000 * USD, 10**8)}), keep_model=False)
    p = build_portfolio([frozen, safe], book, warning_hf=W, critical_hf=C)
    assert p.levels is not None and p.levels.unmodelled == 1 and p.levels.first_liquidation is None
    assert p.positions[1].modelled is False or p.positions[0].modelled is False


def test_a_portfolio_needs_one_address() -> None:
    book = flat_book()
    a = stored(Lending("0xA", {"WETH": (USD, 2000 * 10**8, 8000)}, {}))
    b = stored(Lending("0xB", {"WETH": (USD, 2000 * 10**8, 8000)}, {}))
    with pytest.raises(ValueError):
        build_portfolio([a, b], book, warning_hf=W, critical_hf=C)
    with pytest.raises(ValueError):
        build_portfolio([], book, warning_hf=W, critical_hf=C)


# --- solvency ---------------------------------------------------------------------------------------------------------
def test_solvency_by_hand() -> None:
    book = flat_book()
    ok = stored(Lending("0xA", {"WETH": (10 * USD, 2000 * 10**8, 8000)}, {"USDC": (8000 * USD, 10**8)}, protocol="lend"))
    # collateral 10000, debt 10500: bad debt 500 now; after a 10 % haircut 1500; HF 0.8 * 10000 / 10500 < 1
    bad = stored(Lending("0xB", {"WETH": (5 * USD, 2000 * 10**8, 8000)}, {"USDC": (10_500 * USD, 10**8)}, protocol="lend"))
    # collateral 10000, debt 9500: solvent now, 500 short after costs
    thin = stored(Lending("0xC", {"WETH": (5 * USD, 2000 * 10**8, 8000)}, {"USDC": (9_500 * USD, 10**8)}, protocol="lend"))
    lender = stored(Lending("0xD", {"USDC": (1000 * USD, 10**8, 8000)}, {}, protocol="other"))
    per, total = solvency([ok, bad, thin, lender], book)
    lend = per[0]
    assert [s.protocol for s in per] == ["lend", "other"] and lend.kind == "test_lending"
    assert (lend.positions, lend.collateral_usd, lend.debt_usd) == (3, 40_000 * USD, 28_000 * USD)
    assert lend.bad_debt_usd == 500 * USD and lend.bad_debt_after_costs_usd == 1_500 * USD + 500 * USD
    assert lend.liquidatable == 2 and lend.liquidatable_collateral_usd == 20_000 * USD
    assert [b.positions for b in lend.histogram] == [2, 0, 0, 0, 0, 0, 1, 0, 0, 0]  # HF 0.76, 0.84 and 2
    assert lend.histogram[0].debt_usd == 20_000 * USD
    assert total.histogram[-1].positions == 1 and total.histogram[-1].label == "inf"
    assert total.positions == 4 and total.collateral_usd == 41_000 * USD


def test_hf_bins_are_half_open_and_cover_everything() -> None:
    assert hf_bin(0) == 0 and hf_bin(WAD - 1) == 0 and hf_bin(WAD) == 1
    assert hf_bin(105 * 10**16) == 2 and hf_bin(5 * WAD) == 8 and hf_bin(UINT256_MAX - 1) == 8 and hf_bin(UINT256_MAX) == 9
    for i, (_, lo, hi) in enumerate(HF_BINS[:-1]):
        if lo is not None:
            assert hf_bin(lo) == i
        if hi is not None and hi < UINT256_MAX:
            assert hf_bin(hi - 1) == i


# --- health never rises when a collateral price falls (the pure protocol rules) -----------------------------------
def aave_reserve(rid: int, lt: int, price: int, decimals: int) -> AaveReserve:
    cfg = make_configuration(ltv=max(0, lt - 500), liquidation_threshold=lt, liquidation_bonus=10500, decimals=decimals)
    return AaveReserve(rid, f"0xR{rid}", f"R{rid}", cfg, 10**27 + rid * 10**24, 10**27 + rid * 3 * 10**24, price, 0)


@PROPS
@given(
    st.sampled_from([7, 9, 10]),
    st.lists(st.tuples(st.integers(0, 9500), st.integers(1, 10**13), st.sampled_from([6, 8, 18]), st.integers(0, 10**30)), min_size=2, max_size=4),
    st.integers(1, 10**30),
    st.integers(0, 3),
    st.fractions(min_value=0, max_value=1),
)
def test_aave_health_never_rises_when_a_collateral_price_falls(revision: int, reserves: list[tuple[int, int, int, int]], scaled_debt: int, pick: int, keep: Fraction) -> None:
    debt_id = len(reserves) - 1  # the last reserve is borrowed, the others are collateral
    m = AaveMarket(revision, tuple(aave_reserve(i, lt, p, d) for i, (lt, p, d, _) in enumerate(reserves)), {}, 10**8, 1_700_000_000, None)
    config = 1 << (2 * debt_id)
    for i in range(debt_id):
        config |= 1 << (2 * i + 1)
    u = AaveUser("0xU", config, 0, {i: s for i, (_, _, _, s) in enumerate(reserves[:debt_id])}, {debt_id: scaled_debt})
    target = m.reserves[pick % debt_id]
    assert target is not None
    lower = with_collateral_prices_scaled(m, {target.asset}, keep.numerator, keep.denominator)
    before, after = account_data(m, u), account_data(lower, u)
    if revision >= 9:  # v3.5+: HF = wadDiv(sum(c * LT), debt) / 1e4, monotone in every collateral value
        assert after.health_factor <= before.health_factor
        if liquidation_verdict(m, u, before).liquidatable:
            assert liquidation_verdict(lower, u, after).liquidatable
    elif before.total_debt_base:
        # through v3.4 the pool floors the average LT (floor(sum(c * LT) / sum(c))): when a collateral with a
        # low LT loses value, the floor's cut can shrink, so HF may rise by up to sum(c) x 1 bp / debt (plus rounding)
        bound = (before.total_collateral_base // 10_000 + 1) * WAD // before.total_debt_base + 1
        assert after.health_factor <= before.health_factor + bound


def comet_market(prices: tuple[int, int]) -> comet.CometMarket:
    weth = comet.CometAsset(0, "0xWETH", "WETH", 18, "0xF1", 10**18, 825 * 10**15, 895 * 10**15, 95 * 10**16, 10**30, prices[0])
    wbtc = comet.CometAsset(1, "0xWBTC", "WBTC", 8, "0xF2", 10**8, 70 * 10**16, 77 * 10**16, 95 * 10**16, 10**30, prices[1])
    return comet.CometMarket(
        "0xUSDC", "USDC", 6, 10**6, 10**8, 100 * 10**6, 1_000_050_000_000_000, 1_000_123_456_789_012, 10**13, 8 * 10**12,
        1_000_000, 0, 1_000_000_000, 1_500_000_000, (weth, wbtc), 1_000_000 + 86_400,
    )  # fmt: skip


@PROPS
@given(
    st.tuples(st.integers(1, 10**13), st.integers(1, 10**13)),
    st.integers(1, 10**15),
    st.tuples(st.integers(0, 10**24), st.integers(0, 10**12)),
    st.integers(0, 1),
    st.fractions(min_value=0, max_value=1),
)
def test_comet_health_never_rises_when_a_collateral_price_falls(prices: tuple[int, int], borrowed: int, held: tuple[int, int], pick: int, keep: Fraction) -> None:
    m = comet_market(prices)
    u = comet.CometUser("0xU", -borrowed, 0b11, {0: held[0], 1: held[1]})
    lowered = list(prices)
    lowered[pick] = prices[pick] * keep.numerator // keep.denominator
    before, after = comet.verdict(m, u), comet.verdict(comet_market((lowered[0], lowered[1])), u)
    assert after.health_factor <= before.health_factor
    assert after.absorbable or not before.absorbable


@PROPS
@given(st.integers(1, 10**45), st.integers(0, 10**30), st.integers(0, 10**18), st.integers(10**17, 98 * 10**16), st.fractions(min_value=0, max_value=1))
def test_morpho_health_never_rises_when_the_collateral_price_falls(price: int, collateral: int, shares: int, lltv: int, keep: Fraction) -> None:
    m = morpho.MorphoMarket(
        "0x" + "ab" * 32, "0xUSDC", "0xWETH", "0xOR", "0x" + "00" * 20, lltv, 10**13, 10**19, 8 * 10**12, 7 * 10**18, 1_000_000, 0, price, 0, 1_000_000,
    )  # fmt: skip
    pos = morpho.MorphoPosition("0xU", 0, shares, collateral)
    before, after = morpho.verdict(m, pos), morpho.verdict(replace(m, price=price * keep.numerator // keep.denominator), pos)
    assert after.health_factor <= before.health_factor
    assert after.liquidatable or not before.liquidatable
