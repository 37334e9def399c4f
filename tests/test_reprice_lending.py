"""Stored Aave V3, Compound V3 and Morpho Blue positions recomputed by their models (``risk.reprice``).

a. Every stored position of a snapshot gets a model, and the model at the stored prices gives back exactly the
   stored verdict and values.
b. Shock conformance: shocks applied to the fixtures' oracle contracts in one block with the snapshot's own
   timestamp (so no interest accrues) make the protocol's own checks (getUserAccountData / liquidationCall,
   isLiquidatable / absorb, liquidate) agree with ``model.evaluate(shocks)`` for every position, and a fresh
   snapshot of that block equals the models' evaluations.
c. ``model.liquidation_answer(symbol)``: the oracle at that answer makes the protocol's check pass; one unit
   back towards safety makes it fail.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from fractions import Fraction
from typing import Any

import pytest

from indexer.chain.abi import load_abi
from indexer.chain.multicall import Call, Multicaller
from indexer.constants import RAY, UINT256_MAX, WAD
from indexer.devnet.chain import DevChain, Tx
from indexer.devnet.seed import seeded_address
from indexer.domain import BlockRef, Position, Snapshot
from indexer.risk.aave_v3 import AaveMarket, AaveReserve, AaveUser, make_configuration
from indexer.risk.state import encode
from indexer.pipeline import run_snapshot
from indexer.risk.reprice.aave_v3 import AaveV3Model, evaluate_aave, to_usd
from indexer.risk.reprice.base import FALLING, Evaluation, Shocks, shock_of, shocked, symbol_key
from indexer.risk.reprice.compound_v3 import CompoundV3Model, evaluate_comet
from indexer.risk.reprice.morpho_blue import MorphoBlueModel
from indexer.store.db import PositionRow, make_engine, write_snapshot
from indexer.risk.haircut import HaircutBook
from indexer.risk.scenarios import parse_scenarios
from indexer.risk.stress import run_stress
from indexer.store.risk_state import StoredPosition, latest_positions
from tests.conftest import Comet, FreshDatabase, Market, Morpho, comet_settings, morpho_settings, settings_for

# --- comparisons -----------------------------------------------------------------------------------------


def ev_numbers(ev: Evaluation) -> tuple[Any, ...]:
    return (ev.health_factor, ev.liquidatable, ev.collateral_usd, ev.debt_usd, ev.nlv_usd)


def row_numbers(row: PositionRow) -> tuple[Any, ...]:
    return (row.health_factor, row.liquidatable, row.collateral_usd, row.debt_usd, row.nlv_usd)


def position_numbers(p: Position) -> tuple[Any, ...]:
    return (p.health_factor, p.liquidatable, p.collateral_usd, p.debt_usd, p.nlv_usd)


def ev_legs(ev: Evaluation) -> list[tuple[Any, ...]]:
    return [(leg.asset, leg.symbol, leg.side, leg.amount, leg.decimals, leg.value_usd, leg.liquidation_threshold_bps) for leg in ev.legs]


def row_legs(row: PositionRow) -> list[tuple[Any, ...]]:
    return [(d["asset"], d["symbol"], d["side"], int(d["amount"]), d["decimals"], int(d["value_usd"]), d["liquidation_threshold_bps"]) for d in row.legs]


def assert_models_equal_rows(stored: list[StoredPosition], expected_count: int) -> None:
    """Every stored position has a model whose evaluation at the stored prices is the stored row."""
    assert len(stored) == expected_count
    mismatches = []
    for s in stored:
        assert s.model is not None, f"{s.row.protocol} {s.row.address}: no model"
        ev = s.model.evaluate()
        if ev_numbers(ev) != row_numbers(s.row) or ev_legs(ev) != row_legs(s.row):
            mismatches.append(f"{s.row.address} {s.row.market[:10]}: model {ev_numbers(ev)}, stored {row_numbers(s.row)}")
    assert not mismatches, mismatches[:5]


def assert_snapshot_equals_models(positions: tuple[Position, ...], expected: dict[tuple[str, str], Evaluation]) -> None:
    """A fresh snapshot's positions equal the models' evaluations (numbers and legs), position for position."""
    got = {(p.account, p.market): p for p in positions}
    assert set(got) == set(expected)
    bad = [k for k, ev in expected.items() if position_numbers(got[k]) != ev_numbers(ev) or ev_legs(ev) != ev_legs(got[k])]  # type: ignore[arg-type]
    assert not bad, [(k, position_numbers(got[k]), ev_numbers(expected[k])) for k in bad[:5]]


@contextmanager
def block_at(chain: DevChain, timestamp: int, txs: list[Tx]) -> Iterator[int]:
    """``txs`` mined in one block with exactly ``timestamp``; the chain is reverted afterwards."""
    undo = chain.snapshot()
    try:
        chain.set_next_timestamp(timestamp)
        chain.send_many(txs)
        block = chain.block_number()
        assert chain.block_timestamp(block) == timestamp
        yield block
    finally:
        chain.revert(undo)


def feed_tx(chain: DevChain, feed: str, answer: int) -> Tx:
    return Tx(chain.deployer, feed, "MockAggregatorV3", "updateAnswer", (answer,), f"feed {feed} = {answer}")


# --- the store: state written and read back on both backends ---------------------------------------------------
def _aave_snapshot(protocol: str, number: int, users: list[AaveUser], *, with_state: bool) -> Snapshot:
    """A snapshot of a hand-made two-reserve Aave market, its positions built as the adapter builds them."""
    blk = BlockRef(chain_id=1, number=number, hash=f"0x{number:064x}", timestamp=1_700_000_000 + number)
    reserves = (
        AaveReserve(0, "0xWETH", "WETH", make_configuration(ltv=8000, liquidation_threshold=8250, liquidation_bonus=10500, decimals=18),
                    RAY + 7 * 10**22, RAY, 2000 * 10**8, 0),
        AaveReserve(1, "0xUSDC", "USDC", make_configuration(ltv=7500, liquidation_threshold=7800, liquidation_bonus=10450, decimals=6),
                    RAY, RAY + 3 * 10**23, 10**8, 0),
    )
    market = AaveMarket(9, reserves, {}, 10**8, blk.timestamp, None)
    positions = []
    for u in users:
        ev = evaluate_aave(market, u).evaluation
        positions.append(
            Position(protocol, "aave_v3", u.account, blk, ev.collateral_usd, ev.debt_usd, ev.nlv_usd, ev.health_factor, ev.liquidatable, 8250, None, ev.legs,
                     state=encode(u) if with_state else {})  # fmt: skip
        )
    return Snapshot("ethereum", protocol, "aave_v3", blk, tuple(positions), (), (), number, len(users), 0, 0.0,
                    market_state={"": encode(market)} if with_state else {})  # fmt: skip


def test_latest_positions_reads_models_back_on_both_backends(any_db: FreshDatabase) -> None:
    engine = make_engine(any_db.url)
    try:
        big = AaveUser("0xBIG", 0b0110, 0, {0: 2**200 + 12345}, {1: 10**6})  # 2**200 scaled WETH: exact through JSON and the database
        near = AaveUser("0xNEAR", 0b0110, 0, {0: 10**18}, {1: 1_400 * 10**6})
        lender = AaveUser("0xLEND", 0b0010, 0, {0: 5 * 10**17}, {})
        write_snapshot(engine, _aave_snapshot("aave-x", 10, [big, near], with_state=True))
        write_snapshot(engine, _aave_snapshot("aave-x", 11, [big, near, lender], with_state=True))  # the latest run
        write_snapshot(engine, _aave_snapshot("aave-old", 11, [near], with_state=False))  # a run that kept no state
        stored = latest_positions(engine)
        assert [(s.row.protocol, s.row.address, s.row.block_number) for s in stored] == [
            ("aave-old", "0xNEAR", 11), ("aave-x", "0xBIG", 11), ("aave-x", "0xLEND", 11), ("aave-x", "0xNEAR", 11),
        ]  # fmt: skip
        assert stored[0].model is None
        assert_models_equal_rows(stored[1:], 3)
        by = {s.row.address: s.model for s in stored[1:]}
        assert isinstance(by["0xBIG"], AaveV3Model) and by["0xBIG"].user == big and by["0xBIG"].market.reserves[0].price == 2000 * 10**8  # type: ignore[union-attr]
        assert by["0xBIG"].block == BlockRef(1, 11, f"0x{11:064x}", 1_700_000_011)  # type: ignore[union-attr]
        assert by["0xNEAR"].market is by["0xLEND"].market, "one run's market state is decoded once"  # type: ignore[union-attr]
        # The verdict moves with a shock and flips exactly at the liquidation answer.
        model = by["0xNEAR"]
        assert model is not None and not model.evaluate().liquidatable and model.evaluate({"weth": Fraction(1, 2)}).liquidatable
        answer = model.liquidation_answer("WETH")
        assert answer is not None and model.evaluate_at({"WETH": answer}).liquidatable and not model.evaluate_at({"WETH": answer + 1}).liquidatable
        assert [s.row.address for s in latest_positions(engine, protocol="aave-x", account="0xLEND")] == ["0xLEND"]
        assert latest_positions(engine, protocol="nothing") == []
    finally:
        engine.dispose()


SHOCKS: Shocks = {"WETH": Fraction(80, 100), "wstETH": Fraction(82, 100), "WBTC": Fraction(85, 100), "USDC": Fraction(105, 100)}
# The same shocks as a stress scenario file would give them: `indexer stress` must reach the chain's verdicts.
SCENARIO = parse_scenarios("[scenarios.conformance]\nshocks = { WETH = -0.20, wstETH = -0.18, WBTC = -0.15, USDC = 0.05 }")["conformance"]


def assert_stress_equals(stored: list[StoredPosition], expected: dict[Any, Evaluation], key: Any) -> None:
    """``run_stress`` of ``SCENARIO`` over the stored positions gives, for every position, the verdict and health
    factor of ``expected`` (which the test checks against the protocol's own contracts)."""
    assert SCENARIO.shocks_for({}) == {k: v for k, v in SHOCKS.items()}
    result = run_stress(stored, SCENARIO, HaircutBook.build(), {})
    got = {key(p): (p.liquidatable_after, p.health_factor_after) for p in result.positions}
    # A model repriced as a whole (what liquidation targets read after a move) gives the same evaluation.
    for sp in stored:
        assert sp.model is not None and sp.model.at(SHOCKS).evaluate() == sp.model.evaluate(SHOCKS), sp.row.address
    assert got == {k: (ev.liquidatable, ev.health_factor) for k, ev in expected.items()}
    assert result.total.newly_liquidatable == sum(1 for p in result.positions if p.liquidatable_after and not p.liquidatable_before) > 0


# --- Aave V3 -----------------------------------------------------------------------------------------------
class AaveLiquidator:
    """A liquidator holding every reserve's token (approved to the pool): liquidationCall as an eth_call."""

    def __init__(self, market: Market, chain: DevChain) -> None:
        self.fx, self.chain = market.fixture, chain
        self.address = seeded_address(950, 1)
        chain.fund([self.address])
        txs = []
        for a in self.fx.assets.values():
            txs += [
                Tx(self.address, a.token, "TestERC20", "mint", (self.address, 10**40)),
                Tx(self.address, a.token, "TestERC20", "approve", (self.fx.pool, UINT256_MAX)),
            ]
        chain.send_many(txs)

    def can_liquidate(self, model: AaveV3Model, answers: dict[str, int], user: str, block: int) -> tuple[bool, str]:
        """Whether some liquidationCall of ``user`` passes at ``block``: the pair the verdict names first, then
        the other (collateral, debt) pairs, each with the whole debt, then smaller amounts (the dust rule can
        refuse one amount and take another). Where the model says "not liquidatable", one call is enough."""
        outcome = evaluate_aave(model.market_at(answers), model.user)
        legs = outcome.evaluation.legs
        colls = [leg.asset for leg in sorted(legs, key=lambda leg: -leg.value_usd) if leg.side == "collateral" and leg.amount]
        debts = [(leg.asset, leg.amount) for leg in sorted(legs, key=lambda leg: -leg.value_usd) if leg.side == "debt" and leg.amount]
        if not colls or not debts:
            return False, "no collateral or no debt"
        pairs = [(c, d, amount) for c in colls for d, amount in debts]
        first = (outcome.verdict.collateral_asset, outcome.verdict.debt_asset)
        pairs.sort(key=lambda p: (p[0], p[1]) != first)
        if not outcome.verdict.liquidatable:
            pairs = pairs[:1]
        reasons = []
        for coll, debt, owed in pairs:
            for cover in (UINT256_MAX, owed // 2, owed // 10, owed // 100) if outcome.verdict.liquidatable else (UINT256_MAX,):
                if cover == 0:
                    continue
                ok, reason = self.chain.try_call("Pool", self.fx.pool, "liquidationCall", coll, debt, user, cover, True, sender=self.address, block=block)
                if ok:
                    return True, ""
                reasons.append(reason.removeprefix("eth_call: execution reverted: "))
        return False, " / ".join(reasons)


def aave_account_data(rpc, pool: str, accounts: list[str], block: int) -> dict[str, tuple[int, ...]]:  # type: ignore[no-untyped-def]
    fn = load_abi("AaveV3Pool").fn("getUserAccountData")
    results = Multicaller(rpc).run([Call(pool, fn, (a,)) for a in accounts], block)
    return {a: tuple(r.value) for a, r in zip(accounts, results, strict=True)}


def aave_shocked_answers(model: AaveV3Model, shocks: Shocks) -> dict[str, int]:
    return {k: shocked(op.answer, shock_of(shocks, op.symbol)) for k, op in model.oracle_prices().items() if shock_of(shocks, op.symbol) != 1}


@pytest.mark.parametrize("market_name", ["market_v35", "market_v33", "market_v36"])
def test_aave_models_reproduce_every_stored_position(market_name: str, request, anvil, rpc, engine, db_url, clean_chain) -> None:  # type: ignore[no-untyped-def]
    market: Market = request.getfixturevalue(market_name)
    settings, proto = settings_for(anvil, market.fixture, db_url)
    snap = run_snapshot(settings, proto, engine, rpc=rpc).snapshot
    stored = latest_positions(engine)
    assert_models_equal_rows(stored, len(snap.positions))
    assert len(stored) > 200 and any(s.row.details["emode_category"] == "1" for s in stored), "eMode users are covered"
    # The models' oracle answers are the prices the run read, and each names the direction that hurts.
    prices = {p.asset: p.price for p in snap.prices}
    for s in stored:
        assert isinstance(s.model, AaveV3Model) and s.model.market.revision == market.fixture.revision and s.model.user.account == s.row.address
        for op in s.model.oracle_prices().values():
            assert op.answer == prices[op.asset]
            sides = {leg["side"] for leg in s.row.legs if leg["asset"] == op.asset}
            if sides == {"collateral"}:
                assert op.direction == FALLING
            elif sides == {"debt"}:
                assert op.direction != FALLING
    # One account's positions only.
    one = stored[7].row.address
    assert [s.row.address for s in latest_positions(engine, account=one)] == [one]


def test_aave_shocks_agree_with_the_pool(market_v35: Market, anvil, rpc, engine, db_url, clean_chain) -> None:  # type: ignore[no-untyped-def]
    fx, chain = market_v35.fixture, clean_chain
    liquidator = AaveLiquidator(market_v35, chain)
    settings, proto = settings_for(anvil, fx, db_url)
    base = run_snapshot(settings, proto, engine, rpc=rpc).snapshot
    stored = latest_positions(engine)
    models = {s.row.address: s.model for s in stored}
    assert all(isinstance(m, AaveV3Model) for m in models.values())
    b, t = base.block.number, base.block.timestamp
    txs = [feed_tx(chain, fx.asset(sym).feed, shocked(fx.price(sym, b), m)) for sym, m in SHOCKS.items()]
    expected = {a: m.evaluate(SHOCKS) for a, m in models.items()}  # type: ignore[union-attr]
    with block_at(chain, t, txs) as block:
        on_chain = aave_account_data(rpc, fx.pool, sorted(models), block)
        problems = []
        for account, model in models.items():
            ev = expected[account]
            coll, debt, _avail, _lt, _ltv, hf = on_chain[account]
            unit = model.market.base_currency_unit  # type: ignore[union-attr]
            if (hf, to_usd(coll, unit), to_usd(debt, unit)) != (ev.health_factor, ev.collateral_usd, ev.debt_usd):
                problems.append(f"{account}: pool HF {hf}, model {ev.health_factor}")
            if ev.debt_usd:
                ok, reason = liquidator.can_liquidate(model, aave_shocked_answers(model, SHOCKS), account, block)  # type: ignore[arg-type]
                if ok != ev.liquidatable:
                    problems.append(f"{account}: liquidationCall {ok} ({reason[:120]}), model {ev.liquidatable}")
                elif not ok and "HEALTH_FACTOR_NOT_BELOW_THRESHOLD" not in reason:  # refused for its health, nothing else
                    problems.append(f"{account}: liquidationCall refused for another reason: {reason[:120]}")
        assert not problems, problems[:5]
        assert_stress_equals(stored, expected, lambda p: p.address)
        newly = [a for a, ev in expected.items() if ev.liquidatable and not models[a].evaluate().liquidatable]  # type: ignore[union-attr]
        assert newly and any(ev.debt_usd and not ev.liquidatable for ev in expected.values()), "the shocks split the borrowers"
        fresh = run_snapshot(settings, proto, engine, rpc=rpc, at_block=block).snapshot
        assert fresh.block.timestamp == t
        assert_snapshot_equals_models(fresh.positions, {(a, ""): ev for a, ev in expected.items()})


def test_aave_liquidation_answers_flip_the_pool(market_v35: Market, anvil, rpc, engine, db_url, clean_chain) -> None:  # type: ignore[no-untyped-def]
    fx, chain = market_v35.fixture, clean_chain
    liquidator = AaveLiquidator(market_v35, chain)
    settings, proto = settings_for(anvil, fx, db_url)
    base = run_snapshot(settings, proto, engine, rpc=rpc).snapshot
    healthy = [s for s in latest_positions(engine) if s.row.debt_usd and not s.row.liquidatable]

    def answers(s: StoredPosition) -> list[tuple[str, int]]:
        """(symbol, liquidation answer) of its largest collateral whose price alone can liquidate it, and of its largest debt."""
        model = s.model
        assert isinstance(model, AaveV3Model)
        by_value = sorted(s.row.legs, key=lambda leg: -int(leg["value_usd"]))
        out = []
        for side in ("collateral", "debt"):
            for leg in by_value:
                if leg["side"] == side and (answer := model.liquidation_answer(leg["symbol"])) is not None:
                    out.append((leg["symbol"], answer))
                    break
                if leg["side"] == side:  # no price of this collateral alone liquidates it, not even 0
                    assert not model.evaluate_at({leg["symbol"]: 0}).liquidatable
        return out if len(out) == 2 else []

    # A few healthy borrowers: one in an eMode category, others not.
    chosen = [next(s for s in healthy if s.row.details["emode_category"] == "1" and answers(s))]
    chosen += [s for s in healthy if s.row.details["emode_category"] == "0" and answers(s)][:2]
    checked = 0
    for s in chosen:
        model = s.model
        assert isinstance(model, AaveV3Model)
        for symbol, answer in answers(s):
            op = model.oracle_prices()[symbol_key(symbol)]
            back = answer + 1 if op.direction == FALLING else answer - 1
            for value, expected in ((answer, True), (back, False)):
                assert model.evaluate_at({symbol: value}).liquidatable == expected
                with block_at(chain, base.block.timestamp, [feed_tx(chain, fx.asset(symbol).feed, value)]) as block:
                    hf = aave_account_data(rpc, fx.pool, [s.row.address], block)[s.row.address][5]
                    ok, reason = liquidator.can_liquidate(model, {symbol_key(symbol): value}, s.row.address, block)
                    assert (hf < WAD, ok) == (expected, expected), f"{s.row.address} {symbol} at {value}: HF {hf}, liquidationCall {ok} {reason[:120]}"
                    assert hf == model.evaluate_at({symbol: value}).health_factor
                checked += 1
    assert checked == 12


# --- Compound V3 ---------------------------------------------------------------------------------------------
def comet_feed_txs(comet: Comet, chain: DevChain, answers: dict[str, int]) -> list[Tx]:
    return [feed_tx(chain, comet.fixture.asset(sym).feed, a) for sym, a in answers.items()]


def test_comet_models_reproduce_every_stored_position(comet: Comet, anvil, rpc, engine, db_url, clean_chain) -> None:  # type: ignore[no-untyped-def]
    settings, proto = comet_settings(anvil, comet.fixture, db_url)
    snap = run_snapshot(settings, proto, engine, rpc=rpc).snapshot
    stored = latest_positions(engine, protocol=proto.name)
    assert_models_equal_rows(stored, len(snap.positions))
    prices = {p.asset: p.price for p in snap.prices}
    sides = set()
    for s in stored:
        assert isinstance(s.model, CompoundV3Model) and s.model.user.account == s.row.address
        for op in s.model.oracle_prices().values():
            assert op.answer == prices[op.asset]
        sides |= {leg["side"] for leg in s.row.legs}
    assert sides == {"collateral", "debt", "supply"}


def test_comet_shocks_agree_with_the_comet(comet: Comet, anvil, rpc, engine, db_url, clean_chain) -> None:  # type: ignore[no-untyped-def]
    fx, chain = comet.fixture, clean_chain
    settings, proto = comet_settings(anvil, fx, db_url)
    base = run_snapshot(settings, proto, engine, rpc=rpc).snapshot
    stored = latest_positions(engine)
    models = {s.row.address: s.model for s in stored}
    b, t = base.block.number, base.block.timestamp
    shocks = {sym: m for sym, m in SHOCKS.items() if sym in fx.assets or sym == fx.base.symbol}
    assert set(shocks) == {"WETH", "WBTC", "USDC"}
    txs = comet_feed_txs(comet, chain, {sym: shocked(fx.price(sym, b), m) for sym, m in shocks.items()})
    expected = {a: m.evaluate(shocks) for a, m in models.items()}  # type: ignore[union-attr]
    with block_at(chain, t, txs) as block:
        problems = []
        for account, model in models.items():
            assert isinstance(model, CompoundV3Model)
            ev = expected[account]
            answers = {k: shocked(op.answer, shock_of(shocks, op.symbol)) for k, op in model.oracle_prices().items()}
            view = evaluate_comet(model.market_at(answers), model.user).verdict.view_liquidatable
            if fx.is_liquidatable(account, block) != view:
                problems.append(f"{account}: isLiquidatable {not view}, model {view}")
            ok, reason = fx.can_absorb(comet.absorber, [account], block)
            if ok != ev.liquidatable:
                problems.append(f"{account}: absorb {ok} ({reason[:80]}), model {ev.liquidatable}")
        assert not problems, problems[:5]
        assert_stress_equals(stored, expected, lambda p: p.address)
        assert any(ev.liquidatable and not models[a].evaluate().liquidatable for a, ev in expected.items())  # type: ignore[union-attr]
        assert any(ev.debt_usd and not ev.liquidatable for ev in expected.values())
        fresh = run_snapshot(settings, proto, engine, rpc=rpc, at_block=block).snapshot
        assert_snapshot_equals_models(fresh.positions, {(a, ""): ev for a, ev in expected.items()})


def test_comet_liquidation_answers_flip_absorb(comet: Comet, anvil, rpc, engine, db_url, clean_chain) -> None:  # type: ignore[no-untyped-def]
    fx, chain = comet.fixture, clean_chain
    settings, proto = comet_settings(anvil, fx, db_url)
    base = run_snapshot(settings, proto, engine, rpc=rpc).snapshot
    healthy = [s for s in latest_positions(engine) if s.row.debt_usd and not s.row.liquidatable]
    by_asset: dict[str, StoredPosition] = {}  # per collateral asset a healthy borrower that its price alone can liquidate
    for s in healthy:
        model = s.model
        assert isinstance(model, CompoundV3Model)
        for symbol in {leg["symbol"] for leg in s.row.legs if leg["side"] == "collateral"}:
            answer = model.liquidation_answer(symbol)
            # The adapter's own liquidation price (risk.comet.liquidation_price) is the same answer, or absent.
            assert s.row.details.get(f"liquidation_price_usd_1e8.{symbol}") == (None if answer is None else str(answer))
            if answer is None:
                assert not model.evaluate_at({symbol: 0}).liquidatable
            elif symbol not in by_asset:
                by_asset[symbol] = s
    assert set(by_asset) == set(fx.assets)
    checked = 0
    for collateral, s in sorted(by_asset.items()):
        model = s.model
        assert isinstance(model, CompoundV3Model)
        for symbol in (collateral, fx.base.symbol):
            op = model.oracle_prices()[symbol_key(symbol)]
            answer = model.liquidation_answer(symbol)
            assert answer is not None, (s.row.address, symbol)
            back = answer + 1 if op.direction == FALLING else answer - 1
            for value, expected in ((answer, True), (back, False)):
                with block_at(chain, base.block.timestamp, comet_feed_txs(comet, chain, {symbol: value})) as block:
                    ok, reason = fx.can_absorb(comet.absorber, [s.row.address], block)
                    assert ok == expected, f"{s.row.address} {symbol} at {value}: absorb {ok} {reason[:80]}"
                checked += 1
    assert checked == 4 * len(fx.assets)


# --- Morpho Blue ---------------------------------------------------------------------------------------------
LOAN_USD = {"USDC": 99_990_000, "WETH": 3_000 * 10**8 + 12_345}  # 8-decimal USD feeds of the loan tokens


def morpho_with_feeds(morpho: Morpho, chain: DevChain, anvil, db_url: str):  # type: ignore[no-untyped-def]
    """Settings whose ``usd_feeds`` price the loan tokens (feeds deployed now), and the feeds by symbol."""
    feeds = {sym: chain.deploy("MockAggregatorV3", 8, f"{sym} / USD", answer) for sym, answer in LOAN_USD.items()}
    usd_feeds = {morpho.fixture.tokens[sym]: feed for sym, feed in feeds.items()}
    settings, proto = morpho_settings(anvil, morpho.fixture, db_url, usd_feeds=usd_feeds)
    return settings, proto, feeds


def morpho_txs(morpho: Morpho, chain: DevChain, feeds: dict[str, str], ratios: dict[bytes, int], usd: dict[str, int]) -> list[Tx]:
    fx = morpho.fixture
    txs = [feed_tx(chain, feeds[sym], a) for sym, a in usd.items()]
    for market_id, price in ratios.items():
        m = fx.get_market(market_id)
        txs.append(Tx(fx.owner, m.params.oracle, "MorphoOracleMock", "setPrice", (price,), f"price {m.label}"))
    return txs


def test_morpho_models_reproduce_every_stored_position(morpho: Morpho, anvil, rpc, engine, db_url, clean_chain) -> None:  # type: ignore[no-untyped-def]
    # Without USD feeds (USD values 0) and with them.
    for settings, proto in (morpho_settings(anvil, morpho.fixture, db_url, name="morpho-plain"), morpho_with_feeds(morpho, clean_chain, anvil, db_url)[:2]):
        snap = run_snapshot(settings, proto, engine, rpc=rpc).snapshot
        stored = latest_positions(engine, protocol=proto.name)
        assert_models_equal_rows(stored, len(snap.positions))
        ratios = {p.market: p.price for p in snap.prices if p.market}
        for s in stored:
            assert isinstance(s.model, MorphoBlueModel) and s.model.market.market_id == s.row.market == s.model.market_id
            assert s.model.oracle_prices()[symbol_key(s.model.priced.collateral_symbol)].answer == ratios[s.row.market]
    assert any(s.row.collateral_usd for s in stored)
    assert {k for s in stored for k in s.model.oracle_prices()} == {"USDC", "WETH", "WSTETH", "WBTC"}  # type: ignore[union-attr]


def test_morpho_shocks_agree_with_liquidate(morpho: Morpho, anvil, rpc, engine, db_url, clean_chain) -> None:  # type: ignore[no-untyped-def]
    fx, chain = morpho.fixture, clean_chain
    settings, proto, feeds = morpho_with_feeds(morpho, chain, anvil, db_url)
    base = run_snapshot(settings, proto, engine, rpc=rpc).snapshot
    stored = latest_positions(engine)
    models = {(s.row.address, s.row.market): s.model for s in stored}
    b, t = base.block.number, base.block.timestamp
    # Each market's oracle: price x m_collateral / m_loan (floored once); the loan tokens' USD feeds: x m_loan.
    ratios = {}
    for m in fx.markets.values():
        move = shock_of(SHOCKS, m.spec.collateral_symbol) / shock_of(SHOCKS, m.spec.loan_symbol)
        ratios[m.id] = shocked(fx.price(m, b), move)
    usd = {sym: shocked(LOAN_USD[sym], shock_of(SHOCKS, sym)) for sym in feeds}
    expected = {k: m.evaluate(SHOCKS) for k, m in models.items()}  # type: ignore[union-attr]
    with block_at(chain, t, morpho_txs(morpho, chain, feeds, ratios, usd)) as block:
        problems = []
        for (account, market_id), ev in expected.items():
            ok, reason = fx.can_liquidate(morpho.liquidator, bytes.fromhex(market_id[2:]), account, block)
            if ok != ev.liquidatable:
                problems.append(f"{account} {market_id[:10]}: liquidate {ok} ({reason[:80]}), model {ev.liquidatable}")
        assert not problems, problems[:5]
        assert_stress_equals(stored, expected, lambda p: (p.address, p.market))
        assert any(ev.liquidatable and not models[k].evaluate().liquidatable for k, ev in expected.items())  # type: ignore[union-attr]
        assert any(ev.debt_usd and not ev.liquidatable for ev in expected.values())
        fresh = run_snapshot(settings, proto, engine, rpc=rpc, at_block=block).snapshot
        assert_snapshot_equals_models(fresh.positions, expected)


def test_morpho_liquidation_answers_flip_liquidate(morpho: Morpho, anvil, rpc, engine, db_url, clean_chain) -> None:  # type: ignore[no-untyped-def]
    fx, chain = morpho.fixture, clean_chain
    settings, proto, feeds = morpho_with_feeds(morpho, chain, anvil, db_url)
    base = run_snapshot(settings, proto, engine, rpc=rpc).snapshot
    chosen: dict[str, StoredPosition] = {}  # one healthy borrower per market
    for s in latest_positions(engine):
        if s.row.debt_usd and not s.row.liquidatable:
            chosen.setdefault(s.row.market, s)
    assert len(chosen) == len(fx.markets)
    checked = 0
    for market_id, s in sorted(chosen.items()):
        model = s.model
        assert isinstance(model, MorphoBlueModel)
        coll, loan = model.priced.collateral_symbol, model.priced.loan_symbol
        mid = bytes.fromhex(market_id[2:])
        ratio = model.market.price
        # The collateral: its answer is the market oracle's ratio, the adapter's own liquidation price.
        answer = model.liquidation_answer(coll)
        assert answer is not None and str(answer) == s.row.details["liquidation_oracle_price"]
        for value, expected in ((answer, True), (answer + 1, False)):
            with block_at(chain, base.block.timestamp, morpho_txs(morpho, chain, feeds, {mid: value}, {})) as block:
                ok, reason = fx.can_liquidate(morpho.liquidator, mid, s.row.address, block)
                assert ok == expected, f"{s.row.address} {coll} ratio {value}: liquidate {ok} {reason[:80]}"
            checked += 1
        # The loan token: its answer is the loan's USD feed; the market oracle moves inversely with it.
        stored_usd = model.oracle_prices()[symbol_key(loan)].answer
        answer = model.liquidation_answer(loan)
        assert answer is not None and answer > stored_usd
        for value, expected in ((answer, True), (answer - 1, False)):
            with block_at(chain, base.block.timestamp, morpho_txs(morpho, chain, feeds, {mid: ratio * stored_usd // value}, {loan: value})) as block:
                ok, reason = fx.can_liquidate(morpho.liquidator, mid, s.row.address, block)
                assert ok == expected, f"{s.row.address} {loan} USD {value}: liquidate {ok} {reason[:80]}"
                positions = run_snapshot(settings, proto, engine, rpc=rpc, at_block=block).snapshot.positions
                fresh = next(p for p in positions if (p.account, p.market) == (s.row.address, market_id))
                assert position_numbers(fresh) == ev_numbers(model.evaluate_at({loan: value}))
            checked += 1
    assert checked == 4 * len(fx.markets)
