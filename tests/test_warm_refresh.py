"""Warm refresh (``indexer.warm``) against full re-reads, for every protocol.

a. Randomized (seeded) sequences of user actions (supply, borrow, repay, withdraw, transfers, collateral switches,
   eMode, trades, margin moves, liquidations, new accounts), interest and funding accrual (the clock moves) and
   oracle price moves: after each refresh, the warm book's positions equal a full read of every known account at
   the same block (every ``Position`` field, its raw ``state``, the prices and the market state), without a
   mismatch in the sample and without a full re-read.
b. A corrupted kept state is found by the sample (or, with no sample, by the periodic full read), logged with its
   account, and the book re-reads everything.
c. GMX: the locally derived ``getPositionInfo`` equals the Reader's answer for every position.
d. RPC requests per warm refresh are the same at two book sizes when the same number of accounts is touched: Aave
   with ~1.2k and ~10.2k accounts (bulk-seeded through Multicall3, 1000 supplies per transaction), the other
   protocols with the session's book and 1000 more accounts.

All chain changes happen inside ``clean_chain`` (reverted afterwards).
"""

from __future__ import annotations

import logging
import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

import pytest

from indexer.chain.block import block_ref
from indexer.chain.logs import scan_logs
from indexer.chain.multicall import Multicaller
from indexer.chain.rpc import RpcClient
from indexer.constants import MULTICALL3_ADDRESS, UINT256_MAX
from indexer.devnet.chain import DevChain, Tx, artifact_abi
from indexer.devnet.seed import seeded_address
from indexer.domain import AccountKey, BlockRef, Position
from indexer.errors import IndexerError
from indexer.protocols.base import ProtocolAdapter
from indexer.protocols.registry import make_adapter
from indexer.warm.book import WarmBook, WarmOptions, WarmRefresh
from tests.conftest import Comet, Gmx, Market, Morpho, Perps, comet_settings, gmx_settings, morpho_settings, perps_settings, settings_for

STEPS = 6  # refreshes per protocol in the randomized sequence (GMX: fewer, its full reads are slow on anvil)
ACTION_SHARE = 0.5  # each step tries each kind of action with this probability (the case's required ones always)
CRASH_STEP = 1  # the step whose price move is a large adverse one (liquidations follow)
FLOAT30 = 10**30

Actions = list[Callable[[random.Random, dict[tuple[str, str], Position]], list[Tx]]]


@dataclass
class Case:
    """One protocol: how to build its adapter, and what users (and oracles) do to it."""

    make: Callable[[], ProtocolAdapter]  # a fresh adapter (fresh multicaller)
    actions: Actions  # each returns the transactions of one user action (tried in order; stops at a revert)
    prices: Callable[[random.Random], list[Tx]]  # oracle moves
    crash: Callable[[], list[Tx]]  # a large adverse move, so that liquidations happen
    steps: int = STEPS
    required: tuple[str, ...] = ("liquidate",)  # actions tried every step, that must have gone through at least once


def adapter_for(rpc: RpcClient, proto: Any) -> ProtocolAdapter:
    return make_adapter(proto, rpc, Multicaller(rpc, batch_size=500))


def known_at(adapter: ProtocolAdapter, market: Any, block: BlockRef) -> set[AccountKey]:
    filt = adapter.log_filter(market)
    return adapter.accounts_from_logs(scan_logs(adapter.rpc, filt.addresses, filt.topics, 0, block.number, chunk=100_000, max_chunk=100_000))


def full_read(adapter: ProtocolAdapter, block: BlockRef, known: set[AccountKey]) -> tuple[list[Position], list[Any], dict[str, Any], set[AccountKey]]:
    """What ``indexer run`` reads at ``block``: every known account (discovered from block 0), its verdicts."""
    market = adapter.load_market(block)
    known = known | known_at(adapter, market, block)
    positions = adapter.positions(market, sorted(known), block)
    return positions, adapter.prices(market), adapter.market_state(market), known


def assert_same(warm: WarmRefresh, positions: list[Position], prices: list[Any], market_state: dict[str, Any]) -> None:
    got = {(p.account, p.market): p for p in warm.positions}
    want = {(p.account, p.market): p for p in positions}
    assert sorted(got) == sorted(want), (sorted(set(got) ^ set(want))[:5], warm.block.number)
    bad = [k for k in want if got[k] != want[k] or got[k].state != want[k].state]
    if bad:
        k = bad[0]
        g, w = got[k], want[k]
        fields = [f for f in Position.__dataclass_fields__ if getattr(g, f) != getattr(w, f)]
        pytest.fail(f"{len(bad)} positions differ at block {warm.block.number}; first {k}: fields {fields}: warm {[getattr(g, f) for f in fields]} full {[getattr(w, f) for f in fields]}")
    assert list(warm.prices) == list(prices)
    assert warm.market_state == market_state


def send(chain: DevChain, txs: list[Tx]) -> int:
    """Send ``txs`` one by one (one block each) until one would revert; how many went through."""
    for n, tx in enumerate(txs):
        try:
            chain.send(tx)
        except IndexerError:
            return n
    return len(txs)


def run_sequence(chain: DevChain, case: Case, seed: int, *, gmx_book: list[WarmBook] | None = None) -> None:
    """The randomized sequence: actions, price moves and time, a refresh and a full read after each step."""
    rng = random.Random(seed)
    book = WarmBook(case.make(), WarmOptions(sample_size=8, seed=seed))
    if gmx_book is not None:
        gmx_book.append(book)
    block = block_ref(chain.rpc, "latest", 31337)
    positions, _prices, _state, known = full_read(case.make(), block, set())
    start = book.start(block, known)
    assert {(p.account, p.market) for p in start.positions} == {(p.account, p.market) for p in positions}
    by = {(p.account, p.market): p for p in start.positions}
    touched_total = 0
    done: Counter[str] = Counter()
    for step in range(case.steps):
        for action in rng.sample(case.actions, len(case.actions)):
            if action.__name__ in case.required or rng.random() < ACTION_SHARE:
                txs = action(rng, by)
                if txs and send(chain, txs) == len(txs):
                    done[action.__name__] += 1
        if step == CRASH_STEP:
            send(chain, case.crash())
        elif rng.random() < 0.6:
            send(chain, case.prices(rng))
        if rng.random() < 0.7:
            chain.increase_time(rng.choice((13, 600, 3600, 86_400, 5 * 86_400)))
            chain.mine(rng.choice((1, 1, 3)))
        block = block_ref(chain.rpc, "latest", 31337)
        warm = book.refresh(block)
        positions, prices, market_state, known = full_read(case.make(), block, known)
        assert warm.full_read == "" and warm.mismatches == (), (warm.full_read, warm.mismatches)
        assert book.known == known
        assert_same(warm, positions, prices, market_state)
        assert len(warm.touched) < len(warm.positions)
        touched_total += len(warm.touched)
        by = {(p.account, p.market): p for p in warm.positions}
    assert touched_total > 0, "the sequence changed no position"
    assert all(done[name] for name in case.required), done


# --- the protocols' cases --------------------------------------------------------------------------------------
def _legs(p: Position, side: str) -> list[Any]:
    return [leg for leg in p.legs if leg.side == side and leg.amount > 0]


def _pick(rng: random.Random, by: dict[tuple[str, str], Position], want: Callable[[Position], bool]) -> Position | None:
    found = [p for _, p in sorted(by.items()) if want(p)]
    return rng.choice(found) if found else None


def aave_case(rpc: RpcClient, anvil: Any, market: Market, chain: DevChain) -> Case:
    fx = market.fixture
    _settings, proto = settings_for(anvil, fx, "sqlite://")
    users = list(market.seeded.accounts)
    symbols = list(fx.assets)
    liquidator = seeded_address(9101, 0)
    chain.fund([liquidator])
    setup: list[Tx] = []
    for a in fx.assets.values():
        setup += [Tx(liquidator, a.token, "TestERC20", "mint", (liquidator, 10**40)), Tx(liquidator, a.token, "TestERC20", "approve", (fx.pool, UINT256_MAX))]
    chain.send_many(setup)

    def units(sym: str, usd: float) -> int:
        spec = fx.assets[sym].spec
        return int(usd * 10**8 * 10**spec.decimals) // spec.price

    def supply(rng: random.Random, by: Any) -> list[Tx]:
        sym = rng.choice(symbols)
        return fx.supply_txs(rng.choice(users), sym, units(sym, rng.uniform(50, 20_000)))

    def new_supplier(rng: random.Random, by: Any) -> list[Tx]:
        user = seeded_address(9102, rng.randrange(10**9))
        chain.fund([user])
        sym = rng.choice(symbols)
        return fx.supply_txs(user, sym, units(sym, rng.uniform(500, 5_000))) + [fx.borrow_tx(user, "USDC", units("USDC", 100))]

    def borrow(rng: random.Random, by: Any) -> list[Tx]:
        p = _pick(rng, by, lambda p: bool(_legs(p, "collateral")))
        sym = rng.choice(symbols)
        return [fx.borrow_tx(p.account, sym, units(sym, rng.uniform(10, 2_000)))] if p else []

    def repay(rng: random.Random, by: Any) -> list[Tx]:
        p = _pick(rng, by, lambda p: bool(_legs(p, "debt")))
        if p is None:
            return []
        leg = rng.choice(_legs(p, "debt"))
        amount = UINT256_MAX if rng.random() < 0.3 else leg.amount // 3 + 1
        token = fx.assets[leg.symbol].token
        return [
            Tx(p.account, token, "TestERC20", "mint", (p.account, leg.amount * 2 + 10**6)),
            Tx(p.account, token, "TestERC20", "approve", (fx.pool, UINT256_MAX)),
            Tx(p.account, fx.pool, "Pool", "repay", (token, amount, 2, p.account)),
        ]

    def withdraw(rng: random.Random, by: Any) -> list[Tx]:
        p = _pick(rng, by, lambda p: bool(_legs(p, "collateral")))
        if p is None:
            return []
        leg = rng.choice(_legs(p, "collateral"))
        amount = UINT256_MAX if not _legs(p, "debt") and rng.random() < 0.5 else leg.amount // 5 + 1
        return [Tx(p.account, fx.pool, "Pool", "withdraw", (fx.assets[leg.symbol].token, amount, p.account))]

    def transfer(rng: random.Random, by: Any) -> list[Tx]:
        p = _pick(rng, by, lambda p: bool(_legs(p, "collateral")))
        if p is None:
            return []
        leg = rng.choice(_legs(p, "collateral"))
        return [fx.transfer_atoken_tx(p.account, rng.choice(users), leg.symbol, leg.amount // 4 + 1)]

    def switch(rng: random.Random, by: Any) -> list[Tx]:
        p = _pick(rng, by, lambda p: bool(p.legs))
        if p is None:
            return []
        if rng.random() < 0.5:
            return [fx.emode_tx(p.account, rng.choice((0, 1)))]
        leg = rng.choice(p.legs)
        return [Tx(p.account, fx.pool, "Pool", "setUserUseReserveAsCollateral", (fx.assets[leg.symbol].token, leg.side != "collateral"))]

    def liquidate(rng: random.Random, by: Any) -> list[Tx]:
        p = _pick(rng, by, lambda p: p.liquidatable and bool(_legs(p, "collateral")) and bool(_legs(p, "debt")))
        if p is None:
            return []
        coll, debt = rng.choice(_legs(p, "collateral")), rng.choice(_legs(p, "debt"))
        args = (fx.assets[coll.symbol].token, fx.assets[debt.symbol].token, p.account, UINT256_MAX, rng.random() < 0.5)
        return [Tx(liquidator, fx.pool, "Pool", "liquidationCall", args)]

    def feed(sym: str, factor: float) -> Tx:
        return Tx(chain.deployer, fx.assets[sym].feed, "MockAggregatorV3", "updateAnswer", (int(fx.price(sym) * factor),))

    def prices(rng: random.Random) -> list[Tx]:
        return [feed(sym, rng.uniform(0.93, 1.06)) for sym in rng.sample(["WETH", "wstETH", "WBTC", "LINK"], 2)]

    return Case(
        make=lambda: adapter_for(rpc, proto),
        actions=[supply, new_supplier, borrow, repay, withdraw, transfer, switch, liquidate],
        prices=prices,
        crash=lambda: [feed("WETH", 0.82), feed("wstETH", 0.82), feed("WBTC", 0.85)],
        required=("liquidate", "borrow", "repay"),
    )


def comet_case(rpc: RpcClient, anvil: Any, comet: Comet, chain: DevChain) -> Case:
    fx = comet.fixture
    _settings, proto = comet_settings(anvil, fx, "sqlite://")
    users = list(comet.seeded.accounts)
    chain.fund([comet.absorber])
    collateral = list(fx.assets)

    def units(sym: str, usd: float) -> int:
        return int(usd * 10**8 * 10 ** fx.asset(sym).decimals) // fx.price(sym)

    def supply_collateral(rng: random.Random, by: Any) -> list[Tx]:
        sym = rng.choice(collateral)
        return fx.supply_collateral_txs(rng.choice(users), sym, units(sym, rng.uniform(100, 20_000)))

    def new_borrower(rng: random.Random, by: Any) -> list[Tx]:
        user = seeded_address(9201, rng.randrange(10**9))
        chain.fund([user])
        return fx.supply_collateral_txs(user, "WETH", units("WETH", 5_000)) + [fx.borrow_tx(user, units("USDC", 1_000))]

    def supply_base(rng: random.Random, by: Any) -> list[Tx]:
        p = _pick(rng, by, lambda p: p.debt_usd > 0)
        return fx.supply_base_txs(p.account if p else rng.choice(users), units("USDC", rng.uniform(50, 5_000)))

    def borrow(rng: random.Random, by: Any) -> list[Tx]:
        p = _pick(rng, by, lambda p: bool(_legs(p, "collateral")))
        return [fx.borrow_tx(p.account, units("USDC", rng.uniform(100, 3_000)))] if p else []

    def withdraw_collateral(rng: random.Random, by: Any) -> list[Tx]:
        p = _pick(rng, by, lambda p: bool(_legs(p, "collateral")))
        if p is None:
            return []
        leg = rng.choice(_legs(p, "collateral"))
        return [fx.withdraw_collateral_tx(p.account, leg.symbol, leg.amount // 4 + 1)]

    def transfer(rng: random.Random, by: Any) -> list[Tx]:
        p = _pick(rng, by, lambda p: bool(_legs(p, "collateral")))
        if p is None:
            return []
        if rng.random() < 0.5:
            leg = rng.choice(_legs(p, "collateral"))
            return [fx.transfer_collateral_tx(p.account, rng.choice(users), leg.symbol, leg.amount // 3 + 1)]
        return [fx.transfer_base_tx(p.account, rng.choice(users), units("USDC", rng.uniform(10, 500)))]

    def absorb(rng: random.Random, by: Any) -> list[Tx]:
        found = sorted(p.account for p in by.values() if p.liquidatable)
        return [fx.absorb_tx(comet.absorber, rng.sample(found, min(3, len(found))))] if found else []

    def feed(sym: str, factor: float) -> Tx:
        return Tx(chain.deployer, fx.asset(sym).feed, "MockAggregatorV3", "updateAnswer", (int(fx.price(sym) * factor),))

    def prices(rng: random.Random) -> list[Tx]:
        return [feed(sym, rng.uniform(0.95, 1.05)) for sym in rng.sample(collateral, 2)]

    return Case(
        make=lambda: adapter_for(rpc, proto),
        actions=[supply_collateral, new_borrower, supply_base, borrow, withdraw_collateral, transfer, absorb],
        prices=prices,
        crash=lambda: [feed("WETH", 0.9), feed("WBTC", 0.9), feed("LINK", 0.9)],
        required=("absorb", "transfer", "borrow"),
    )


def morpho_case(rpc: RpcClient, anvil: Any, morpho: Morpho, chain: DevChain) -> Case:
    fx = morpho.fixture
    _settings, proto = morpho_settings(anvil, fx, "sqlite://")
    markets = list(fx.markets.values())
    users = list(morpho.seeded.accounts)

    def market_of(p: Position) -> Any:
        return fx.get_market(bytes.fromhex(p.market[2:]))

    def whole(sym: str, x: float) -> int:
        return int(Decimal(str(x)) * 10 ** fx.decimals(sym))

    def supply_collateral(rng: random.Random, by: Any) -> list[Tx]:
        m = rng.choice(markets)
        sym = m.spec.collateral_symbol
        return fx.supply_collateral_txs(rng.choice(users), m, whole(sym, 20_000 / float(fx.token_specs[sym].usd) * rng.uniform(0.01, 1)))

    def new_borrower(rng: random.Random, by: Any) -> list[Tx]:
        user = seeded_address(9301, rng.randrange(10**9))
        chain.fund([user])
        m = rng.choice(markets)
        sym, loan = m.spec.collateral_symbol, m.spec.loan_symbol
        coll = whole(sym, 10_000 / float(fx.token_specs[sym].usd))
        return fx.supply_collateral_txs(user, m, coll) + [fx.borrow_tx(user, m, assets=whole(loan, 1_000 / float(fx.token_specs[loan].usd)))]

    def borrow(rng: random.Random, by: Any) -> list[Tx]:
        p = _pick(rng, by, lambda p: int(p.state.get("collateral", 0)) > 0 and not p.liquidatable)
        if p is None:
            return []
        m = market_of(p)
        loan = m.spec.loan_symbol
        return [fx.borrow_tx(p.account, m, assets=whole(loan, rng.uniform(10, 2_000) / float(fx.token_specs[loan].usd)))]

    def repay(rng: random.Random, by: Any) -> list[Tx]:
        p = _pick(rng, by, lambda p: int(p.state.get("borrow_shares", 0)) > 0)
        if p is None:
            return []
        shares = int(p.state["borrow_shares"])
        m = market_of(p)
        mint = whole(m.spec.loan_symbol, 10**7 / float(fx.token_specs[m.spec.loan_symbol].usd))
        return fx.repay_txs(p.account, m, shares=shares if rng.random() < 0.3 else shares // 3 + 1, mint=mint)

    def withdraw_collateral(rng: random.Random, by: Any) -> list[Tx]:
        p = _pick(rng, by, lambda p: int(p.state.get("collateral", 0)) > 0)
        return [fx.withdraw_collateral_tx(p.account, market_of(p), int(p.state["collateral"]) // 5 + 1)] if p else []

    def lend(rng: random.Random, by: Any) -> list[Tx]:
        m = rng.choice(markets)
        loan = m.spec.loan_symbol
        return fx.supply_txs(rng.choice(morpho.seeded.lenders), m, whole(loan, 50_000 / float(fx.token_specs[loan].usd)))

    def accrue(rng: random.Random, by: Any) -> list[Tx]:
        return [fx.accrue_interest_tx(rng.choice(markets))]

    def liquidate(rng: random.Random, by: Any) -> list[Tx]:
        p = _pick(rng, by, lambda p: p.liquidatable and int(p.state.get("borrow_shares", 0)) > 1)
        if p is None:
            return []
        return [fx.liquidate_tx(morpho.liquidator, market_of(p), p.account, repaid_shares=int(p.state["borrow_shares"]) // 2)]

    def oracle(m: Any, factor: float) -> Tx:
        return Tx(fx.owner, m.params.oracle, "MorphoOracleMock", "setPrice", (int(fx.price(m) * factor),))

    def prices(rng: random.Random) -> list[Tx]:
        return [oracle(m, rng.uniform(0.96, 1.04)) for m in rng.sample(markets, 2)]

    return Case(
        make=lambda: adapter_for(rpc, proto),
        actions=[supply_collateral, new_borrower, borrow, repay, withdraw_collateral, lend, accrue, liquidate],
        prices=prices,
        crash=lambda: [oracle(m, 0.93) for m in markets],
        required=("liquidate", "borrow", "repay"),
    )


def perps_case(rpc: RpcClient, anvil: Any, perps: Perps, chain: DevChain) -> Case:
    fx = perps.fixture
    _settings, proto = perps_settings(anvil, fx, "sqlite://")
    keys = list(fx.markets)
    users = list(perps.seeded.accounts)
    chain.fund([perps.keeper])
    unit = 10**18

    def key_of(p: Position) -> str:
        return next(k for k in keys if fx.markets[k].address == p.market)

    def margin(rng: random.Random, by: Any) -> list[Tx]:
        p = _pick(rng, by, lambda p: not p.liquidatable and p.details.get("flagged") == "false")
        if p is None:
            return []
        delta = int(rng.uniform(50, 3_000) * unit) * (1 if rng.random() < 0.6 else -1)
        return [fx.transfer_margin_tx(p.account, key_of(p), delta)]

    def trade(rng: random.Random, by: Any) -> list[Tx]:
        p = _pick(rng, by, lambda p: not p.liquidatable and p.details.get("flagged") == "false")
        if p is None:
            return []
        size = int(p.details["size"])
        return [fx.modify_position_tx(p.account, key_of(p), int(size * rng.uniform(-0.3, 0.3)) or unit // 100)]

    def close(rng: random.Random, by: Any) -> list[Tx]:
        p = _pick(rng, by, lambda p: not p.liquidatable and int(p.details["size"]) != 0 and p.details.get("flagged") == "false")
        return [fx.close_tx(p.account, key_of(p), size=int(p.details["size"]))] if p else []

    def new_trader(rng: random.Random, by: Any) -> list[Tx]:
        user = seeded_address(9401, rng.randrange(10**9))
        chain.fund([user])
        k = rng.choice(keys)
        price = fx.price(k)[0]
        size = int(Decimal(5_000) * unit * unit / price) * (1 if rng.random() < 0.5 else -1)
        return [fx.transfer_margin_tx(user, k, 2_000 * unit), fx.modify_position_tx(user, k, size)]

    def flag(rng: random.Random, by: Any) -> list[Tx]:
        p = _pick(rng, by, lambda p: p.liquidatable and p.details.get("flagged") == "false")
        return [fx.flag_tx(perps.keeper, key_of(p), p.account)] if p else []

    def liquidate(rng: random.Random, by: Any) -> list[Tx]:
        p = _pick(rng, by, lambda p: p.details.get("flagged") == "true")
        return [fx.liquidate_tx(perps.keeper, key_of(p), p.account)] if p else []

    def move(k: str, factor: float) -> Tx:
        return fx.set_price_tx(k, int(fx.price(k)[0] * factor))

    def prices(rng: random.Random) -> list[Tx]:
        return [move(k, rng.uniform(0.96, 1.04)) for k in keys]

    return Case(
        make=lambda: adapter_for(rpc, proto),
        actions=[margin, trade, close, new_trader, flag, liquidate],
        prices=prices,
        crash=lambda: [move(keys[0], 0.9), move(keys[1], 1.1)],
        required=("flag", "liquidate", "trade"),
    )


def gmx_case(rpc: RpcClient, anvil: Any, gmx: Gmx, chain: DevChain) -> Case:
    fx = gmx.fixture
    _settings, proto = gmx_settings(anvil, gmx, "sqlite://")
    seeded = list(gmx.seeded.positions)
    names = list(fx.markets)

    def amount(sym: str, usd: float) -> int:
        t = fx.tokens[sym]
        return int(Decimal(str(usd)) * 10**t.decimals / fx.ref_usd()[sym])

    def increase(rng: random.Random, by: Any) -> list[Tx]:
        s = rng.choice(seeded)
        m = fx.market(s.market)
        size = int(rng.uniform(100, 20_000)) * FLOAT30
        return [fx.increase_tx(s.account, m, s.collateral, s.is_long, amount(s.collateral, rng.uniform(50, 2_000)), size, fx.market_prices(m))]

    def decrease(rng: random.Random, by: Any) -> list[Tx]:
        s = rng.choice(seeded)
        m = fx.market(s.market)
        return [fx.decrease_tx(s.account, m, s.collateral, s.is_long, 0, s.size_usd // rng.choice((4, 10, 1)), fx.market_prices(m))]

    def new_position(rng: random.Random, by: Any) -> list[Tx]:
        user = seeded_address(9501, rng.randrange(10**9))
        m = fx.markets[rng.choice(names)]
        coll = rng.choice((m.long, m.short))
        return [fx.increase_tx(user, m, coll, rng.random() < 0.5, amount(coll, 1_000), 10_000 * FLOAT30, fx.market_prices(m))]

    def liquidate(rng: random.Random, by: Any) -> list[Tx]:
        p = _pick(rng, by, lambda p: p.liquidatable)
        if p is None:
            return []
        key = bytes.fromhex(p.market[2:])
        return [fx.liquidate_tx(key, fx.market_prices(fx.position_market(key)))]

    def move(sym: str, factor: float) -> list[Tx]:
        usd = fx.ref_usd()[sym] * Decimal(str(round(factor, 6)))
        fx.set_price(sym, usd)
        token = fx.tokens[sym]
        return [Tx(chain.deployer, gmx.feeds[token.address], "MockAggregatorV3", "updateAnswer", (int(usd * 10**8),))]

    def prices(rng: random.Random) -> list[Tx]:
        return move("WETH", rng.uniform(0.97, 1.03)) + move("WBTC", rng.uniform(0.97, 1.03))

    return Case(
        make=lambda: adapter_for(rpc, proto),
        actions=[increase, decrease, new_position, liquidate],
        prices=prices,
        crash=lambda: move("WETH", 0.9) + move("WBTC", 1.08),
        steps=3,
        required=("liquidate", "increase"),
    )


# --- a. the randomized sequences --------------------------------------------------------------------------------
def test_aave_v3_warm_refresh_equals_full_read(clean_chain: DevChain, rpc: RpcClient, anvil: Any, market_v35: Market) -> None:
    run_sequence(clean_chain, aave_case(rpc, anvil, market_v35, clean_chain), seed=91)


def test_compound_v3_warm_refresh_equals_full_read(clean_chain: DevChain, rpc: RpcClient, anvil: Any, comet: Comet) -> None:
    run_sequence(clean_chain, comet_case(rpc, anvil, comet, clean_chain), seed=92)


def test_morpho_blue_warm_refresh_equals_full_read(clean_chain: DevChain, rpc: RpcClient, anvil: Any, morpho: Morpho) -> None:
    run_sequence(clean_chain, morpho_case(rpc, anvil, morpho, clean_chain), seed=93)


def test_synthetix_perps_v2_warm_refresh_equals_full_read(clean_chain: DevChain, rpc: RpcClient, anvil: Any, perps: Perps) -> None:
    run_sequence(clean_chain, perps_case(rpc, anvil, perps, clean_chain), seed=94)


@pytest.fixture()
def gmx_prices(gmx: Gmx) -> Any:
    """The GMX fixture's reference price book (Python state the chain's revert does not restore) is restored."""
    book = list(gmx.fixture.price_book)
    yield gmx
    gmx.fixture.price_book[:] = book


def test_gmx_v2_warm_refresh_equals_full_read_and_derives_the_reader(clean_chain: DevChain, rpc: RpcClient, anvil: Any, gmx_prices: Gmx) -> None:
    gmx = gmx_prices
    books: list[WarmBook] = []
    run_sequence(clean_chain, gmx_case(rpc, anvil, gmx, clean_chain), seed=95, gmx_book=books)
    book = books[0]
    assert book.gmx is not None and book.gmx.rereading == "", book.gmx.rereading if book.gmx else None
    # c. every position's derived getPositionInfo at the feed prices is the Reader's own answer
    assert book.block is not None and book.gmx.last is not None and len(book.gmx.last.first) >= len(book.states)
    assert book.gmx.verify(set(book.states), book.block) == []


# --- b. a state the events did not announce ----------------------------------------------------------------------
def test_a_corrupted_state_is_found_by_the_sample_and_everything_is_re_read(
    clean_chain: DevChain, rpc: RpcClient, anvil: Any, comet: Comet, caplog: pytest.LogCaptureFixture
) -> None:
    case = comet_case(rpc, anvil, comet, clean_chain)
    block = block_ref(rpc, "latest", 31337)
    positions, _p, _s, known = full_read(case.make(), block, set())
    book = WarmBook(case.make(), WarmOptions(sample_size=10_000, seed=1))
    book.start(block, known)
    victim = sorted(book.states)[7]
    book.states[victim] = replace(book.states[victim], principal=book.states[victim].principal + 1)
    clean_chain.mine()
    block = block_ref(rpc, "latest", 31337)
    with caplog.at_level(logging.WARNING, logger="indexer.warm.book"):
        warm = book.refresh(block)
    assert warm.full_read == "mismatch" and warm.mismatches == (victim,)
    assert any(victim.account in r.getMessage() and "mismatch" in r.getMessage() for r in caplog.records)
    assert warm.accounts_read == len(known)
    assert_same(warm, *full_read(case.make(), block, known)[:3])


# --- d. requests per refresh at two book sizes ---------------------------------------------------------------------
# The two book sizes of the request-count test: accounts added to the session's Aave market (about 230 already).
BOOK_SIZES = (1_000, 10_000)
# Accounts created per aggregate3 transaction when bulk seeding (one supply each: ~0.15M gas).
BULK_PER_TX = 1_000


def aggregate3(chain: DevChain, calls: list[tuple[str, bytes]], *, gas_each: int = 400_000) -> None:
    """One transaction from the deployer through Multicall3 ``aggregate3`` (no call may fail)."""
    data = artifact_abi("Multicall3").fn("aggregate3").encode([(target, False, payload) for target, payload in calls])
    params = {"from": chain.deployer, "to": MULTICALL3_ADDRESS, "data": "0x" + data.hex(), "gas": hex(len(calls) * gas_each + 1_000_000)}
    tx_hash = chain.rpc.request("eth_sendTransaction", [params])
    while (receipt := chain.rpc.request("eth_getTransactionReceipt", [tx_hash])) is None:
        time.sleep(0.01)
    assert int(receipt["status"], 16) == 1, f"bulk transaction reverted: {tx_hash}"


def bulk_aave_suppliers(chain: DevChain, market: Market, users: list[str], symbol: str, amount: int) -> None:
    """``users`` each get an Aave position (a supply on their behalf), ``BULK_PER_TX`` per transaction."""
    fx, erc20, pool = market.fixture, artifact_abi("TestERC20"), artifact_abi("Pool")
    token = fx.assets[symbol].token
    for start in range(0, len(users), BULK_PER_TX):
        chunk = users[start : start + BULK_PER_TX]
        calls = [(token, erc20.fn("mint").encode(MULTICALL3_ADDRESS, amount * len(chunk))), (token, erc20.fn("approve").encode(fx.pool, UINT256_MAX))]
        calls += [(fx.pool, pool.fn("supply").encode(token, amount, u, 0)) for u in chunk]
        aggregate3(chain, calls)


def test_warm_refresh_requests_do_not_grow_with_the_book(clean_chain: DevChain, rpc: RpcClient, anvil: Any, market_v35: Market) -> None:
    """The same actions (five accounts touched, a price move, a day of interest) cost the same requests per refresh
    with ~1.2k and ~10.2k accounts in the book; a full read grows with the book."""
    chain, fx = clean_chain, market_v35.fixture
    _settings, proto = settings_for(anvil, fx, "sqlite://")
    added: list[str] = []
    measured: dict[int, tuple[int, int, int, int]] = {}
    for size in BOOK_SIZES:
        new = [seeded_address(9601, i) for i in range(len(added), size)]
        bulk_aave_suppliers(chain, market_v35, new, "USDC", 10_000 * 10**6)
        added += new
        block = block_ref(rpc, "latest", 31337)
        adapter = adapter_for(rpc, proto)
        known = known_at(adapter, adapter.load_market(block), block)
        book = WarmBook(adapter, WarmOptions(sample_size=16, seed=3))
        start = book.start(block, known)
        touched = added[:5]
        aggregate3(chain, [(fx.assets["WETH"].token, artifact_abi("TestERC20").fn("mint").encode(MULTICALL3_ADDRESS, 5 * 10**18)),
                           (fx.assets["WETH"].token, artifact_abi("TestERC20").fn("approve").encode(fx.pool, UINT256_MAX))]
                   + [(fx.pool, artifact_abi("Pool").fn("supply").encode(fx.assets["WETH"].token, 10**18, u, 0)) for u in touched])  # fmt: skip
        fx.set_price("WETH", fx.price("WETH") * 97 // 100)
        chain.increase_time(86_400)
        chain.mine()
        warm = book.refresh(block_ref(rpc, "latest", 31337))
        assert warm.full_read == "" and {k.account for k in warm.touched} == set(touched)
        measured[size] = (len(book.known), warm.rpc_requests, start.rpc_requests, len(warm.positions))
    (n1, warm1, full1, _), (n2, warm2, full2, positions2) = measured[BOOK_SIZES[0]], measured[BOOK_SIZES[1]]
    assert n2 - n1 == BOOK_SIZES[1] - BOOK_SIZES[0] and positions2 >= BOOK_SIZES[1]
    assert warm1 == warm2, measured
    assert full2 > full1, measured


# The other protocols: the session's book (~240 positions) and the same book with this many more accounts.
MORE_ACCOUNTS = 1_000


def _bulk(chain: DevChain, token: str, spender: str, total: int, calls: list[tuple[str, bytes]], per_tx: int = BULK_PER_TX) -> None:
    """``calls`` made by Multicall3 (which first mints ``total`` of ``token`` to itself and approves ``spender``)."""
    erc20 = artifact_abi("TestERC20")
    head = [(token, erc20.fn("mint").encode(MULTICALL3_ADDRESS, total)), (token, erc20.fn("approve").encode(spender, UINT256_MAX))]
    for start in range(0, len(calls), per_tx):
        aggregate3(chain, (head if start == 0 else []) + calls[start : start + per_tx])


@dataclass
class Growth:
    """How to add accounts with positions to one protocol in bulk, and what touches a few of them."""

    case: Case
    add: Callable[[list[str]], None]  # give each address a position
    touch: Callable[[list[str]], None]  # change the positions of these (already added) addresses


def comet_growth(rpc: RpcClient, anvil: Any, comet: Comet, chain: DevChain) -> Growth:
    fx, comet_abi = comet.fixture, artifact_abi("Comet")
    weth = fx.assets["WETH"].token

    def supply(users: list[str], amount: int) -> None:
        _bulk(chain, weth, fx.comet, amount * len(users), [(fx.comet, comet_abi.fn("supplyTo").encode(u, weth, amount)) for u in users])

    return Growth(comet_case(rpc, anvil, comet, chain), lambda users: supply(users, 10**18), lambda users: supply(users, 10**17))


def morpho_growth(rpc: RpcClient, anvil: Any, morpho: Morpho, chain: DevChain) -> Growth:
    fx, morpho_abi = morpho.fixture, artifact_abi("Morpho")
    m = next(iter(fx.markets.values()))
    token = fx.tokens[m.spec.collateral_symbol]

    def supply(users: list[str], amount: int) -> None:
        calls = [(fx.morpho, morpho_abi.fn("supplyCollateral").encode(m.params.as_tuple(), amount, u, b"")) for u in users]
        _bulk(chain, token, fx.morpho, amount * len(users), calls)

    return Growth(morpho_case(rpc, anvil, morpho, chain), lambda users: supply(users, 10**6), lambda users: supply(users, 10**5))


def gmx_growth(rpc: RpcClient, anvil: Any, gmx: Gmx, chain: DevChain) -> Growth:
    fx, manager = gmx.fixture, artifact_abi("GmxPositionManager")
    m = fx.markets["ETH/USD"]
    usdc = fx.tokens["USDC"]

    def increase(users: list[str], collateral: int, size: int) -> None:
        prices = fx.market_prices(m)
        args = [(u, m.market_token, usdc.address, i % 2 == 0, collateral, size, prices) for i, u in enumerate(users)]
        calls = [(fx.manager, manager.fn("increasePosition").encode(*a)) for a in args]
        for start in range(0, len(calls), BULK_PER_TX // 4):  # ~1M gas each
            aggregate3(chain, calls[start : start + BULK_PER_TX // 4], gas_each=3_000_000)

    return Growth(gmx_case(rpc, anvil, gmx, chain), lambda users: increase(users, 500 * 10**6, 2_000 * FLOAT30), lambda users: increase(users, 50 * 10**6, 100 * FLOAT30))


def perps_growth(rpc: RpcClient, anvil: Any, perps: Perps, chain: DevChain) -> Growth:
    fx = perps.fixture
    key = next(iter(fx.markets))

    def margin(users: list[str], amount: int) -> None:
        chain.fund(users)
        txs = [fx.transfer_margin_tx(u, key, amount) for u in users]
        for start in range(0, len(txs), 250):  # anvil's receipts slow down with the square of a block's transactions
            chain.send_many(txs[start : start + 250])

    return Growth(perps_case(rpc, anvil, perps, chain), lambda users: margin(users, 1_000 * 10**18), lambda users: margin(users, 10**18))


@pytest.mark.parametrize("kind", ["compound_v3", "morpho_blue", "synthetix_perps_v2", "gmx_v2"])
def test_warm_refresh_requests_do_not_grow_with_the_book_in_every_protocol(
    kind: str, request: pytest.FixtureRequest, clean_chain: DevChain, rpc: RpcClient, anvil: Any
) -> None:
    """The session's book, then the same book with ``MORE_ACCOUNTS`` more: the same actions (three accounts touched,
    a price move, an hour) cost the same requests per refresh."""
    chain = clean_chain
    growth = {
        "compound_v3": lambda: comet_growth(rpc, anvil, request.getfixturevalue("comet"), chain),
        "morpho_blue": lambda: morpho_growth(rpc, anvil, request.getfixturevalue("morpho"), chain),
        "synthetix_perps_v2": lambda: perps_growth(rpc, anvil, request.getfixturevalue("perps"), chain),
        "gmx_v2": lambda: gmx_growth(rpc, anvil, request.getfixturevalue("gmx_prices"), chain),
    }[kind]()
    first = [seeded_address(9701, i) for i in range(3)]
    growth.add(first)  # the accounts touched below exist at both sizes
    measured = []
    for more in ([], [seeded_address(9702, i) for i in range(MORE_ACCOUNTS)]):
        if more:
            growth.add(more)
        block = block_ref(rpc, "latest", 31337)
        adapter = growth.case.make()
        known = known_at(adapter, adapter.load_market(block), block)
        book = WarmBook(adapter, WarmOptions(sample_size=16, seed=5))
        start = book.start(block, known)
        growth.touch(first)
        send(chain, growth.case.prices(random.Random(7)))
        chain.increase_time(3_600)
        chain.mine()
        warm = book.refresh(block_ref(rpc, "latest", 31337))
        assert warm.full_read == "" and {k.account for k in warm.touched} == set(first), warm.touched
        measured.append((len(book.known), len(warm.positions), warm.rpc_requests, start.rpc_requests))
    (n1, _p1, warm1, _full1), (n2, p2, warm2, _full2) = measured
    assert n2 - n1 >= MORE_ACCOUNTS and p2 >= MORE_ACCOUNTS
    assert warm1 == warm2, measured


def test_the_periodic_full_read_finds_what_no_sample_met(clean_chain: DevChain, rpc: RpcClient, anvil: Any, comet: Comet) -> None:
    case = comet_case(rpc, anvil, comet, clean_chain)
    block = block_ref(rpc, "latest", 31337)
    adapter = case.make()
    book = WarmBook(adapter, WarmOptions(sample_size=0, full_every=2))
    book.start(block, known_at(adapter, adapter.load_market(block), block))
    victim = sorted(book.states)[3]
    book.states[victim] = replace(book.states[victim], collateral={})
    clean_chain.mine()
    assert book.refresh(block_ref(rpc, "latest", 31337)).full_read == ""  # no sample: not seen yet
    clean_chain.mine()
    warm = book.refresh(block_ref(rpc, "latest", 31337))
    assert warm.full_read == "periodic" and warm.mismatches == (victim,)
    assert_same(warm, *full_read(case.make(), warm.block, book.known)[:3])
