"""Stored perps positions recomputed under other prices (``risk.reprice``) agree with the protocols' own views.

Synthetix PerpsV2: the contracts read their own price, so shocked prices are set on chain in one block mined
with the snapshot's timestamp (no funding accrues in between) and every position's shocked verdict and
remaining margin are compared with ``canLiquidate`` / ``remainingMargin`` there. GMX v2: keepers pass the
prices, so the shocked prices go straight into the Reader's ``getPositionInfo`` and the keeper's
``liquidatePosition`` (an ``eth_call``) at the snapshot's block.
"""

from __future__ import annotations

import json
import random
from dataclasses import replace
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from indexer.chain.abi import load_abi
from indexer.chain.multicall import Call, Multicaller
from indexer.constants import ZERO_ADDRESS
from indexer.devnet.chain import DevChain
from indexer.devnet.seed import seeded_address
from indexer.devnet.synthetix_perps import deploy_perps_v2, seed_perps_positions
from indexer.domain import BlockRef, Position, Snapshot
from indexer.pipeline import run_snapshot
from indexer.risk.gmx import FLOAT_PRECISION, apply_factor, cost_amount_at, is_liquidatable_remaining, remaining_at_index_price, remaining_at_prices, remaining_collateral_usd
from indexer.risk.reprice.base import PositionModel, load_model, shock_of, shocked, symbol_key
from indexer.risk.reprice.gmx_v2 import GmxOracle, GmxV2Model, decode_state, encode_state
from indexer.risk.reprice.synthetix_perps_v2 import SynthetixPerpsV2Model
from indexer.risk.state import encode
from indexer.risk.haircut import HaircutBook
from indexer.risk.scenarios import parse_scenarios
from indexer.risk.stress import run_stress
from indexer.store.db import make_engine
from indexer.store.risk_state import latest_positions
from tests.conftest import PERPS_POSITIONS, Gmx, Perps, gmx_settings, perps_settings
from tests.test_risk_gmx_math import ETH_UNIT_PRICE, USDC_UNIT_PRICE
from tests.test_risk_gmx_math import position as gmx_position
from tests.test_risk_perps_math import market as perps_market
from tests.test_risk_perps_math import position as perps_position

DAY = 86_400


@pytest.fixture(scope="module")
def perps(devchain: DevChain, aave_markets: None) -> Perps:
    """A PerpsV2 fixture seeded for this module (it overrides the session's here, ``clean_chain`` included).

    The session's positions age with every test that moves the clock for good (module fixtures of other files
    do), and funding pushes the crowded side of each market over: by the time this module runs, most of them
    can be liquidated already. These tests need a book near its thresholds, as seeded."""
    fixture = deploy_perps_v2(devchain)
    seeded = seed_perps_positions(fixture, PERPS_POSITIONS, random.Random(52), seed=52)
    return Perps(fixture, seeded, seeded_address(52, -7))
TO_USD = FLOAT_PRECISION // 10**18


def _models(engine: Any, snap: Snapshot) -> list[tuple[Position, PositionModel]]:
    """Each position of ``snap`` with the model its stored row loads into (from the store, not the snapshot)."""
    stored = {(s.row.address, s.row.market): s for s in latest_positions(engine, protocol=snap.protocol)}
    assert len(stored) == len(snap.positions)
    out = []
    for p in snap.positions:
        s = stored[(p.account, p.market)]
        assert s.model is not None, f"{p.account} {p.market[:10]}: no stored state"
        assert s.row.block_number == snap.block.number and s.model.block == snap.block
        out.append((p, s.model))
    return out


def _values(x: Any) -> tuple[int, bool, int, int, int]:
    return (x.health_factor, x.liquidatable, x.collateral_usd, x.debt_usd, x.nlv_usd)


# --- pure: the models without a chain ------------------------------------------------------------------------
BLOCK = BlockRef(31337, 1, "0x" + "00" * 32, 1_700_000_000)


def _gmx_model(p: Any, *, liq: int | None = None, exact: bool = False) -> GmxV2Model:
    oracle = GmxOracle("WETH", 18, ETH_UNIT_PRICE, "WETH" if p.collateral_is_index else "USDC", 18 if p.collateral_is_index else 6,
                   ETH_UNIT_PRICE if p.collateral_is_index else USDC_UNIT_PRICE, liq, exact)
    state = json.loads(json.dumps(encode_state(p, oracle)))
    assert decode_state(state) == (p, oracle)
    model = load_model("gmx_v2", protocol="gmx", account=p.account, market=p.key, block=BLOCK, market_state=None, state=state)
    assert isinstance(model, GmxV2Model)
    return model


@given(is_long=st.booleans(), eth_collateral=st.booleans(), leverage=st.integers(2, 60), borrowing=st.integers(0, 300), funding=st.integers(0, 10**6), move=st.integers(-30, 30))
def test_gmx_remaining_at_prices_is_the_read_value_unshocked_and_the_index_only_rule_when_only_the_index_moves(
    is_long: bool, eth_collateral: bool, leverage: int, borrowing: int, funding: int, move: int
) -> None:
    p = gmx_position(is_long=is_long, eth_collateral=eth_collateral, leverage=leverage, borrowing_usd=borrowing * FLOAT_PRECISION, funding=funding)
    assert remaining_at_prices(p, p.index_price, p.collateral_price) == remaining_collateral_usd(p)
    x = ETH_UNIT_PRICE * (100 + move) // 100
    collateral = (x, x) if eth_collateral else p.collateral_price
    assert remaining_at_prices(p, (x, x), collateral) == remaining_at_index_price(p, x)
    model = _gmx_model(p)
    ev = model.evaluate()
    assert (ev.liquidatable, ev.nlv_usd * TO_USD <= remaining_collateral_usd(p)) == (is_liquidatable_remaining(p, remaining_collateral_usd(p))[0], True)
    assert model.evaluate({"WETH": Fraction(100 + move, 100)}) == model.evaluate_at({"WETH": x})


def test_gmx_collateral_moves_independently_and_its_answer_flips_the_model_verdict() -> None:
    p = gmx_position(is_long=True, eth_collateral=False, leverage=20, borrowing_usd=40 * FLOAT_PRECISION, funding=3_000_000)
    model = _gmx_model(p)
    assert set(model.oracle_prices()) == {"WETH", "USDC"}
    assert model.oracle_prices()["USDC"].direction == "falling" and model.oracle_prices()["WETH"].direction == "falling"
    lower = model.evaluate({"USDC": Fraction(95, 100)})
    assert lower.collateral_usd < model.evaluate().collateral_usd and lower.legs[1] == model.evaluate().legs[1]
    # the position and borrowing fee amounts grow as the collateral's price falls (GMX divides their USD by
    # it): their dollars stay, only the funding amount (held in tokens) loses value
    assert cost_amount_at(p, USDC_UNIT_PRICE * 95 // 100) > p.total_cost_amount
    floors = 2 * USDC_UNIT_PRICE // TO_USD  # a unit of each re-derived amount
    assert 0 < model.evaluate().debt_usd - lower.debt_usd <= p.funding_fee_amount * USDC_UNIT_PRICE // TO_USD // 20 + floors
    index_price, cprice = model.prices_at({"USDC": USDC_UNIT_PRICE * 95 // 100})
    assert index_price == p.index_price and cprice[0] == USDC_UNIT_PRICE * 95 // 100
    answer = model.liquidation_answer("usdc")
    assert answer is not None and 0 < answer < USDC_UNIT_PRICE
    assert model.evaluate_at({"USDC": answer}).liquidatable and not model.evaluate_at({"USDC": answer + 1}).liquidatable


def test_gmx_liquidation_answer_uses_the_settled_price_only_where_it_means_the_same_answer() -> None:
    p = gmx_position(is_long=True, eth_collateral=True, leverage=25)
    own = _gmx_model(p).liquidation_answer("WETH")
    assert own is not None and own < ETH_UNIT_PRICE
    settled = own - 7  # pretend the Reader settled elsewhere (pending fees moving with the price)
    assert _gmx_model(p, liq=settled, exact=True).liquidation_answer("WETH") == settled
    assert _gmx_model(p, liq=settled, exact=False).liquidation_answer("WETH") == own, "an estimate is not used"
    spread = replace(p, index_price=(ETH_UNIT_PRICE - 5, ETH_UNIT_PRICE + 5), collateral_price=(ETH_UNIT_PRICE - 5, ETH_UNIT_PRICE + 5))
    model = _gmx_model(spread, liq=settled, exact=True)
    answer = model.liquidation_answer("WETH")
    assert answer != settled, "with a spread the settled min = max price is not an answer of the mid"
    assert model.evaluate_at({"WETH": answer}).liquidatable and not model.evaluate_at({"WETH": answer + 1}).liquidatable
    lo, hi = model.prices_at({"WETH": ETH_UNIT_PRICE // 2})[0]
    assert (lo, hi) == ((ETH_UNIT_PRICE - 5) // 2, -(-(ETH_UNIT_PRICE + 5) // 2)), "the spread is kept in proportion"


def _perps_model(size: int, margin: int) -> SynthetixPerpsV2Model:
    m = perps_market()
    state, ms = json.loads(json.dumps(encode(perps_position(size, margin)))), json.loads(json.dumps(encode(m)))
    model = load_model("synthetix_perps_v2", protocol="perps", account="0xa", market=m.address, block=BLOCK, market_state=ms, state=state)
    assert isinstance(model, SynthetixPerpsV2Model) and model.market == m
    return model


@given(size_eth=st.integers(1, 50), leverage=st.integers(2, 40), long=st.booleans(), shock=st.fractions(min_value=Fraction(1, 2), max_value=Fraction(3, 2)))
def test_synthetix_model_is_the_rule_at_the_shocked_price(size_eth: int, leverage: int, long: bool, shock: Fraction) -> None:
    from indexer.risk.synthetix_perps import verdict

    m = perps_market()
    size = size_eth * 10**18 * (1 if long else -1)
    model = _perps_model(size, size_eth * m.price // leverage)
    (op,) = model.oracle_prices().values()
    assert (op.symbol, op.answer, op.direction) == (m.base_asset, m.price, "falling" if long else "rising")
    ev = model.evaluate({m.base_asset: shock})
    v = verdict(replace(m, price=shocked(m.price, shock)), model.position)
    assert (ev.liquidatable, ev.nlv_usd, ev.health_factor, ev.legs[1].value_usd) == (v.can_liquidate, v.remaining_margin, v.health_factor, abs(v.notional))
    answer = model.liquidation_answer(m.base_asset)
    if answer is not None:
        back = -1 if long else 1  # one wei towards safety is up for a long
        assert model.evaluate_at({symbol_key(m.base_asset): answer}).liquidatable
        assert answer == m.price or not model.evaluate_at({symbol_key(m.base_asset): answer - back}).liquidatable


def test_synthetix_margin_only_position_depends_on_no_price() -> None:
    model = _perps_model(0, 10**21)
    assert model.oracle_prices() == {}
    assert model.evaluate({"sETH": Fraction(1, 10)}) == model.evaluate() and not model.evaluate().liquidatable


# --- (a) the stored model reproduces the stored position --------------------------------------------------
def test_stored_models_reproduce_every_stored_perps_position(perps: Perps, gmx: Gmx, anvil, rpc, engine, db_url, clean_chain) -> None:  # type: ignore[no-untyped-def]
    clean_chain.increase_time(3 * DAY)  # funding (both) and borrowing (GMX) pending: nothing is a round number
    clean_chain.mine()
    for settings, proto in (perps_settings(anvil, perps.fixture, db_url), gmx_settings(anvil, gmx, db_url)):
        snap = run_snapshot(settings, proto, engine, rpc=rpc).snapshot
        assert json.loads(json.dumps(snap.market_state)) == snap.market_state
        pairs = _models(engine, snap)
        assert len(pairs) >= 200
        for p, model in pairs:
            ev = model.evaluate()
            assert _values(ev) == _values(p), f"{proto.name} {p.account} {p.market[:10]}"
            assert ev.legs == p.legs
            assert model.evaluate({"USDC": Fraction(1), "sETH": Fraction(1), "WETH": Fraction(1)}) == ev
        kinds = {type(m) for _, m in pairs}
        assert kinds == {SynthetixPerpsV2Model} or kinds == {GmxV2Model}
        if proto.kind == "synthetix_perps_v2":
            for p, model in pairs:
                assert isinstance(model, SynthetixPerpsV2Model)
                assert model.market.address == p.market and model.position.account == p.account
                if "liquidation_price" in p.details and not p.liquidatable:
                    # The model's boundary and the adapter's exact liquidation price are both flip points of the
                    # rule (liquidatable there, not one wei back). Where floored funding makes the verdict ragged
                    # within a few wei they may pick neighbouring flips, so they must agree to a few wei.
                    answer, adapter = model.liquidation_answer(model.market.base_asset), int(p.details["liquidation_price"])
                    assert answer is not None and abs(answer - adapter) <= 8, (p.account, answer, adapter)
                    back = 1 if model.position.size > 0 else -1
                    for x in (answer, adapter):
                        assert model.evaluate_at({symbol_key(model.market.base_asset): x}).liquidatable
                        assert not model.evaluate_at({symbol_key(model.market.base_asset): x + back}).liquidatable
        else:
            for p, model in pairs:
                assert isinstance(model, GmxV2Model) and model.position.key == p.market


# --- (b) shocked verdicts against the protocols' own views --------------------------------------------------
# Candidate shocks, tried in order: the first that the models say pushes at least 5 positions over and lifts at
# least 20 is set on chain (the session's positions age as other tests move the clock, and funding pushes the
# crowded side of each market over, so which side is left to push depends on the tests run before).
SYNTHETIX_SHOCK_CANDIDATES = [
    {"sETH": Fraction(9, 10), "sBTC": Fraction(11, 10)},
    {"sETH": Fraction(11, 10), "sBTC": Fraction(9, 10)},
    {"sETH": Fraction(85, 100), "sBTC": Fraction(115, 100)},
    {"sETH": Fraction(115, 100), "sBTC": Fraction(85, 100)},
    {"sETH": Fraction(7, 10), "sBTC": Fraction(13, 10)},
    {"sETH": Fraction(13, 10), "sBTC": Fraction(7, 10)},
    {"sETH": Fraction(5, 10), "sBTC": Fraction(15, 10)},
    {"sETH": Fraction(15, 10), "sBTC": Fraction(5, 10)},
]


def test_synthetix_shocked_verdicts_equal_the_market_views_at_the_same_timestamp(perps: Perps, anvil, rpc, engine, db_url, clean_chain) -> None:  # type: ignore[no-untyped-def]
    fx, chain = perps.fixture, clean_chain
    chain.increase_time(2 * DAY)  # unrecorded funding since the last recomputation, valued at the shocked price
    chain.mine()
    settings, proto = perps_settings(anvil, fx, db_url)
    snap = run_snapshot(settings, proto, engine, rpc=rpc).snapshot
    pairs = _models(engine, snap)

    def effect(shocks: dict[str, Fraction]) -> tuple[int, int]:
        evs = [(p, model.evaluate(shocks)) for p, model in pairs]
        return sum(ev.liquidatable and not p.liquidatable for p, ev in evs), sum(ev.nlv_usd > p.nlv_usd for p, ev in evs)

    shocks = next((c for c in SYNTHETIX_SHOCK_CANDIDATES if effect(c)[0] >= 5 and effect(c)[1] >= 20), SYNTHETIX_SHOCK_CANDIDATES[0])
    # The shocked prices, set in one block with the snapshot's timestamp.
    txs = []
    for key, m in fx.markets.items():
        price, _ = fx.price(key, snap.block.number)
        txs.append(fx.set_price_tx(key, shocked(price, shocks[m.spec.base_asset])))
    chain.set_next_timestamp(snap.block.timestamp)
    chain.send_many(txs)
    block = chain.block_number()
    assert block == snap.block.number + 1 and chain.block_timestamp(block) == snap.block.timestamp
    mismatches, newly, gained, on_chain = [], 0, 0, {}
    for p, model in pairs:
        assert isinstance(model, SynthetixPerpsV2Model)
        market = fx.market(model.market.base_asset).spec.market_key
        ev = model.evaluate(shocks)
        assert model.at(shocks).evaluate() == ev
        can = fx.can_liquidate(p.account, market, block)
        on_chain[(p.account, p.market)] = can
        margin, invalid = fx.remaining_margin(p.account, market, block)
        assert not invalid
        if (ev.liquidatable, ev.nlv_usd) != (can, margin):
            mismatches.append(f"{p.account} {market}: model {ev.liquidatable} / {ev.nlv_usd}, chain {can} / {margin}")
        newly += ev.liquidatable and not p.liquidatable
        gained += ev.nlv_usd > p.nlv_usd
    assert not mismatches, mismatches[:5]
    tried = [(c, effect(c)) for c in SYNTHETIX_SHOCK_CANDIDATES]
    assert newly >= 5, f"the shock must push positions over ({sum(p.liquidatable for p, _ in pairs)} of {len(pairs)} liquidatable already; tried {tried})"
    assert gained >= 20, "and lift others (the other side of each market)"
    # The same shocks as a stress scenario on the price book (WETH, WBTC), reaching the perps through the
    # default aliases (sETH -> WETH, sBTC -> WBTC): `indexer stress` gives canLiquidate's verdict everywhere.
    aliases = {"sETH": "WETH", "sBTC": "WBTC"}
    eth, btc = (float(shocks[k] - 1) for k in ("sETH", "sBTC"))
    scenario = parse_scenarios(f"[scenarios.perps]\nshocks = {{ WETH = {eth:.2f}, WBTC = {btc:.2f} }}")["perps"]
    assert scenario.shocks_for(aliases)["sETH"] == shocks["sETH"]
    result = run_stress(latest_positions(engine, protocol=snap.protocol), scenario, HaircutBook.build(aliases=aliases), aliases)
    assert {(r.address, r.market): r.liquidatable_after for r in result.positions} == on_chain


GMX_SHOCKS = {"WETH": Fraction(9, 10), "WBTC": Fraction(11, 10), "USDC": Fraction(97, 100)}


def _gmx_shocked_prices(gmx: Gmx, snap: Snapshot, model: GmxV2Model, shocks: dict[str, Fraction]) -> tuple[tuple[int, int], ...]:
    """MarketPrices (index, long, short) with every token's feed price shocked, for the Reader and the keeper.
    The adapter reads no spread here (price_spread_bps = 0): min = max."""
    fx = gmx.fixture
    m = fx.market(model.position.market)
    mids = {pr.asset: pr for pr in snap.prices}

    def pair(symbol: str) -> tuple[int, int]:
        reading = mids[fx.tokens[symbol].address]
        assert reading.symbol == symbol
        x = shocked(reading.price, shock_of(shocks, symbol))
        return (x, x)

    prices = (pair(m.index), pair(m.long), pair(m.short))
    # the model's own prices are these: the index and the collateral token
    index_price, collateral_price = model.prices_at({k: shocked(op.answer, shock_of(shocks, op.symbol)) for k, op in model.oracle_prices().items()})
    collateral_symbol = next(s for s, t in fx.tokens.items() if t.address == model.position.collateral_token)
    assert (index_price, collateral_price) == (prices[0], pair(collateral_symbol))
    return prices


def _reader_remaining(gmx: Gmx, rpc: Any, snap: Snapshot, pairs: list[tuple[Position, GmxV2Model]], shocks: dict[str, Fraction]) -> dict[str, tuple[int, bool, tuple[Any, ...]]]:
    """Per position key: the remaining collateral the Reader's getPositionInfo gives at the shocked prices (the
    rule's step 3 on its numbers), the keeper's verdict (``liquidatePosition`` as an eth_call) and the prices."""
    fx, reader = gmx.fixture, load_abi("GmxReader")
    prices = {model.position.key: _gmx_shocked_prices(gmx, snap, model, shocks) for _, model in pairs}
    calls = [
        Call(fx.reader, reader.fn("getPositionInfo"), (fx.data_store, ZERO_ADDRESS, bytes.fromhex(k[2:]), prices[k], 0, ZERO_ADDRESS, True))
        for k in prices
    ]
    results = Multicaller(rpc).run(calls, snap.block.number)
    out = {}
    for (_, model), res in zip(pairs, results, strict=True):
        p = model.position
        (info,) = reader.named("getPositionInfo", res.value).values()
        nums, fees = info["position"]["numbers"], info["fees"]
        cmin = fees["collateralTokenPrice"]["min"]
        impact = min(0, info["executionPriceResult"]["totalImpactUsd"])
        impact = max(impact, -apply_factor(nums["sizeInUsd"], p.max_position_impact_factor_for_liquidations))
        remaining = nums["collateralAmount"] * cmin + info["basePnlUsd"] + impact - fees["totalCostAmount"] * cmin
        keeper, _ = fx.can_liquidate(bytes.fromhex(p.key[2:]), prices[p.key], snap.block.number)
        out[p.key] = (remaining, keeper, prices[p.key])
    return out


def _gmx_pairs(engine: Any, snap: Snapshot) -> list[tuple[Position, GmxV2Model]]:
    pairs = _models(engine, snap)
    assert all(isinstance(m, GmxV2Model) for _, m in pairs)
    return pairs  # type: ignore[return-value]


def test_gmx_shocked_verdicts_equal_the_reader_and_the_keeper_where_nothing_is_pending(gmx: Gmx, anvil, rpc, engine, db_url, clean_chain) -> None:  # type: ignore[no-untyped-def]
    """At the seeding block no borrowing or funding is pending, so the fee amounts move with the collateral
    price only, as the model re-derives them: the shocked remaining collateral is the Reader's to the unit."""
    settings, proto = gmx_settings(anvil, gmx, db_url)
    snap = run_snapshot(settings, proto, engine, rpc=rpc, at_block=gmx.seed_block).snapshot
    pairs = _gmx_pairs(engine, snap)
    chain = _reader_remaining(gmx, rpc, snap, pairs, GMX_SHOCKS)
    mismatches, newly = [], 0
    for p, model in pairs:
        ev = model.evaluate(GMX_SHOCKS)
        remaining, keeper, _ = chain[model.position.key]
        rule, _ = is_liquidatable_remaining(model.position, remaining)
        nlv = remaining // TO_USD if remaining >= 0 else -(-remaining // TO_USD)
        if (ev.liquidatable, ev.nlv_usd) != (keeper, nlv) or rule != keeper:
            mismatches.append(f"{p.account} {p.market[:10]}: model {ev.liquidatable} / {ev.nlv_usd}, Reader {rule} / {nlv}, keeper {keeper}")
        newly += ev.liquidatable and not p.liquidatable
    assert not mismatches, mismatches[:5]
    assert newly >= 5, "the shock must push positions over"


def test_gmx_shocked_verdicts_with_fees_pending_differ_from_the_keeper_only_at_the_boundary(gmx: Gmx, anvil, rpc, engine, db_url, clean_chain) -> None:  # type: ignore[no-untyped-def]
    """With borrowing and funding pending, the pending amounts the Reader derives move with the prices (the
    funding accrued since the last update is converted to collateral tokens at the shocked price; the
    borrowing rate follows reserved / pool value, which the USDC price moves for shorts) while the model
    holds the fee USD values read at the snapshot's prices. For shocks of at most 10 % the remaining
    collateral differs by at most a fifth of the pending fees (about a tenth measured), and a verdict may
    differ only for a position within that difference of its threshold (none does in the fixture: the
    nearest is tens of dollars away, the differences under ten)."""
    clean_chain.increase_time(9 * DAY)
    clean_chain.mine()
    settings, proto = gmx_settings(anvil, gmx, db_url)
    snap = run_snapshot(settings, proto, engine, rpc=rpc).snapshot
    pairs = _gmx_pairs(engine, snap)
    chain = _reader_remaining(gmx, rpc, snap, pairs, GMX_SHOCKS)
    far_mismatches, near, moved = [], [], 0
    for p, model in pairs:
        q = model.position
        answers = {k: shocked(op.answer, shock_of(GMX_SHOCKS, op.symbol)) for k, op in model.oracle_prices().items()}
        ev = model.evaluate(GMX_SHOCKS)
        assert ev == model.evaluate_at(answers)
        remaining, keeper, _ = chain[q.key]
        diff = abs(remaining_at_prices(q, *model.prices_at(answers)) - remaining)  # 1e30 USD
        pending_usd = q.borrowing_fee_usd + q.funding_fee_amount * q.collateral_price[0]
        assert diff <= pending_usd // 5, f"{p.account}: remaining off by {diff / FLOAT_PRECISION} USD, pending fees {pending_usd / FLOAT_PRECISION} USD"
        moved += diff > 0
        if ev.liquidatable != keeper:
            threshold = max(q.min_collateral_usd, apply_factor(q.size_in_usd, q.min_collateral_factor_for_liquidation))
            gap = abs(remaining - threshold)
            (near if gap <= diff else far_mismatches).append(f"{p.account}: model {ev.liquidatable}, keeper {keeper}, {gap / FLOAT_PRECISION} USD from the threshold")
    assert not far_mismatches, far_mismatches[:5]
    assert len(near) <= len(pairs) // 50, near
    assert moved >= len(pairs) // 2, "pending fees must move with the prices here (else this test checks nothing more than the previous one)"


# --- (c) liquidation answers flip the protocol's own verdict ----------------------------------------------
def test_synthetix_liquidation_answer_flips_can_liquidate_one_wei_either_side(perps: Perps, anvil, rpc, engine, db_url, clean_chain) -> None:  # type: ignore[no-untyped-def]
    fx, chain = perps.fixture, clean_chain
    chain.increase_time(DAY)
    chain.mine()
    settings, proto = perps_settings(anvil, fx, db_url)
    snap = run_snapshot(settings, proto, engine, rpc=rpc).snapshot
    pairs = [(p, m) for p, m in _models(engine, snap) if not p.liquidatable and m.position.size]  # type: ignore[attr-defined]
    chosen: list[tuple[Position, SynthetixPerpsV2Model]] = []
    for base in ("sETH", "sBTC"):
        for long in (True, False):
            chosen += [(p, m) for p, m in pairs if m.market.base_asset == base and (m.position.size > 0) == long][:2]  # type: ignore[attr-defined,misc]
    # The session's positions age with every test that moves the clock (funding pushes the crowded sides over):
    # take what is left, but both sides of both markets where they exist, and at least one long and one short.
    assert len(chosen) >= 4 and {m.position.size > 0 for _, m in chosen} == {True, False}  # type: ignore[attr-defined]
    for p, model in chosen:
        market = fx.market(model.market.base_asset).spec.market_key
        answer = model.liquidation_answer(model.market.base_asset.lower())
        assert answer is not None
        toward_safety = 1 if model.position.size > 0 else -1
        assert (answer - model.market.price) * toward_safety < 0, "the answer lies on the losing side"
        assert model.evaluate_at({symbol_key(model.market.base_asset): answer}).liquidatable
        for price, expected in ((answer, True), (answer + toward_safety, False)):
            undo = chain.snapshot()
            chain.set_next_timestamp(snap.block.timestamp)
            chain.send_many([fx.set_price_tx(market, price)])
            block = chain.block_number()
            assert chain.block_timestamp(block) == snap.block.timestamp
            can = fx.can_liquidate(p.account, market, block)
            flag_ok, _ = fx.try_tx(fx.flag_tx(perps.keeper, market, p.account), block)
            chain.revert(undo)
            assert (can, flag_ok) == (expected, expected), f"{market} {p.account} at {price}: canLiquidate {can}, flagPosition {flag_ok}"


def _keeper_at(gmx: Gmx, model: GmxV2Model, block: int, *, index: int | None = None, collateral: int | None = None) -> bool:
    """liquidatePosition (eth_call) with the index and/or the collateral token at the given price (min = max)."""
    fx, p = gmx.fixture, model.position
    m = fx.market(p.market)
    prices = {s: gmx.unit_prices(s) for s in {m.index, m.long, m.short}}
    if index is not None:
        prices[m.index] = (index, index)
    if collateral is not None:
        symbol = next(s for s, t in fx.tokens.items() if t.address == p.collateral_token)
        prices[symbol] = (collateral, collateral)
    ok, _ = fx.can_liquidate(bytes.fromhex(p.key[2:]), (prices[m.index], prices[m.long], prices[m.short]), block)
    return ok


def _sample(pairs: list[tuple[Position, GmxV2Model]], gmx: Gmx, per_kind: int) -> list[GmxV2Model]:
    usdc = gmx.fixture.tokens["USDC"].address
    kinds: dict[tuple[bool, bool], list[GmxV2Model]] = {}
    for p, model in pairs:
        if not p.liquidatable:
            kinds.setdefault((model.position.is_long, model.position.collateral_token == usdc), []).append(model)
    assert set(kinds) >= {(True, True), (True, False), (False, True)}
    return [m for group in kinds.values() for m in group[:per_kind]]


def test_gmx_liquidation_answers_flip_the_keeper_check_one_unit_either_side(gmx: Gmx, anvil, rpc, engine, db_url, clean_chain, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The index answer is the Reader-settled price the adapter stored (fees pending here); the collateral
    answer (USDC falling under a position) is the model's, exact where nothing is pending."""
    settings, proto = gmx_settings(anvil, gmx, db_url)
    clean_chain.increase_time(9 * DAY)
    clean_chain.mine()
    snap = run_snapshot(settings, proto, engine, rpc=rpc).snapshot
    for model in _sample(_gmx_pairs(engine, snap), gmx, 3):
        symbol = model.oracle.index_symbol
        answer = model.liquidation_answer(symbol)
        assert answer is not None and model.oracle.liquidation_index_price_exact and answer == model.oracle.liquidation_index_price
        toward_safety = 1 if model.position.is_long else -1
        assert _keeper_at(gmx, model, snap.block.number, index=answer), f"{model.account} at {answer}"
        assert not _keeper_at(gmx, model, snap.block.number, index=answer + toward_safety), f"{model.account} at {answer + toward_safety}"

    # An older block in a store of its own: in the first store the newer block stays the latest (highest block).
    seed_engine = make_engine(f"sqlite:///{tmp_path / 'seed_block.db'}")
    base = run_snapshot(settings, proto, seed_engine, rpc=rpc, at_block=gmx.seed_block).snapshot
    pairs = _gmx_pairs(seed_engine, base)
    checked = 0
    for model in _sample(pairs, gmx, 3):
        # nothing pending: the model's own boundary for the index is the Reader-settled one
        index_key = symbol_key(model.oracle.index_symbol)
        assert PositionModel.liquidation_answer(model, index_key) == model.liquidation_answer(index_key)
        if model.position.collateral_is_index:
            continue
        answer = model.liquidation_answer("USDC")
        assert answer is not None and answer < model.oracle.collateral_answer
        assert _keeper_at(gmx, model, gmx.seed_block, collateral=answer), f"{model.account} USDC at {answer}"
        assert not _keeper_at(gmx, model, gmx.seed_block, collateral=answer + 1), f"{model.account} USDC at {answer + 1}"
        checked += 1
    assert checked >= 4
