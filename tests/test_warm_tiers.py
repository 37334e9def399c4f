"""Risk tiers of the warm book (``WarmOptions.hot_band_bps``, ``hot_max``, ``cold_every``) and its verdict pass.

a. ``nearness``: liquidatable, a health factor below 1 + band, or (without one) a liquidating move below the band.
b. Aave, after a price crash: a hot position (near the threshold) whose kept state is corrupted is found by the very
   next refresh without any sample; a cold corrupted one is not (the periodic full read finds it); the refresh
   reports its hot count; ``hot_max`` caps the reads to the nearest positions; the fast kernel's liquidatable set is
   the positions' set.
c. Every adapter with a kernel (``verdicts``), after a crash: the refresh's liquidatable set is the kernel's, equal
   to the positions' (no disagreement logged).
d. GMX re-read mode: hot accounts and a slice of the cold ones are read from the node per refresh, the others keep
   their last positions (at most ``cold_every - 1`` refreshes old); what is read equals a full read at the block.

Chain changes are reverted afterwards (``aave_chain``, ``gmx_chain``).
"""

from __future__ import annotations

import logging
import random
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest

from indexer.chain.block import block_ref
from indexer.chain.multicall import Multicaller
from indexer.chain.rpc import RpcClient
from indexer.constants import UINT256_MAX, WAD
from indexer.devnet.chain import DevChain
from indexer.domain import AccountKey, BlockRef, Position
from indexer.protocols.registry import make_adapter
from indexer.warm.book import WarmBook, WarmError, WarmOptions, nearness
from tests.conftest import Gmx, Market, gmx_settings, settings_for
from tests.test_warm_refresh import aave_case, comet_case, gmx_case, known_at, morpho_case, perps_case, send

BLOCK = BlockRef(31337, 1, "0x" + "00" * 32, 0)


def position(hf: int, *, liquidatable: bool = False, drop: float | None = None) -> Position:
    return Position("p", "k", "0xA", BLOCK, 0, 0, 0, hf, liquidatable, 0, drop, ())


# --- a. the band ---------------------------------------------------------------------------------------------------
def test_nearness_is_the_hot_band() -> None:
    band = 500
    assert nearness(position(WAD * 104 // 100), band) == pytest.approx(0.04)
    assert nearness(position(WAD * 105 // 100 - 1), band) is not None
    assert nearness(position(WAD * 105 // 100), band) is None  # 1.05 exactly is outside
    assert nearness(position(WAD * 2, liquidatable=True), band) == pytest.approx(1.0)  # liquidatable: hot whatever its HF
    assert nearness(position(WAD // 2, liquidatable=True), band) == pytest.approx(-0.5)
    assert nearness(position(UINT256_MAX, drop=0.049), band) == pytest.approx(0.049)  # no HF: the liquidating move
    assert nearness(position(UINT256_MAX, drop=0.05), band) is None
    assert nearness(position(UINT256_MAX, drop=None), band) is None
    assert nearness(position(UINT256_MAX, liquidatable=True), band) == -1.0
    assert nearness(position(WAD * 104 // 100), 0) is None  # band 0: only the liquidatable


def test_options_are_checked() -> None:
    for bad in ({"hot_max": -1}, {"hot_band_bps": -1}, {"cold_every": 0}, {"sample_size": -1}):
        with pytest.raises(WarmError, match=next(iter(bad))):
            WarmOptions(**bad)  # type: ignore[arg-type]


# --- b. Aave -------------------------------------------------------------------------------------------------------
@pytest.fixture()
def aave_chain(devchain: DevChain, aave_markets: None) -> Iterator[DevChain]:
    """Only the Aave markets: the chain is reverted afterwards (deployed before the snapshot, never inside)."""
    snap = devchain.snapshot()
    yield devchain
    devchain.revert(snap)


def crashed_book(rpc: RpcClient, anvil: Any, market: Market, **options: Any) -> tuple[WarmBook, Any]:
    """A book started on the v3.5 market after a crash that leaves some positions liquidatable and some near it."""
    fx = market.fixture
    for symbol, percent in (("WETH", 88), ("wstETH", 88), ("WBTC", 90)):
        fx.set_price(symbol, fx.price(symbol) * percent // 100)
    _settings, proto = settings_for(anvil, fx, "sqlite://")
    adapter = make_adapter(proto, rpc, Multicaller(rpc, batch_size=500))
    block = block_ref(rpc, "latest", 31337)
    book = WarmBook(adapter, WarmOptions(**{"sample_size": 0, "full_every": 0, **options}))
    start = book.start(block, known_at(adapter, adapter.load_market(block), block))
    assert start.liquidatable == tuple(sorted(p.key for p in start.positions if p.liquidatable)), "the kernel's verdicts are the positions'"
    return book, start


def test_a_corrupted_hot_position_is_found_by_the_next_refresh(
    aave_chain: DevChain, rpc: RpcClient, anvil: Any, market_v35: Market, caplog: pytest.LogCaptureFixture
) -> None:
    book, start = crashed_book(rpc, anvil, market_v35)
    near = [p.key for p in start.positions if nearness(p, 500) is not None and not p.liquidatable]
    assert near and start.liquidatable, "the crash leaves positions liquidatable and others near it"
    assert set(book.near) == set(near) | set(start.liquidatable)
    assert set(book.near[: len(start.liquidatable)]) == set(start.liquidatable), "the liquidatable first"
    hot = list(book.near)
    victim = near[0]
    kept = book.states[victim]
    book.states[victim] = replace(kept, scaled_collateral={rid: v + 1 for rid, v in kept.scaled_collateral.items()})
    aave_chain.mine()
    with caplog.at_level(logging.WARNING, logger="indexer.warm.book"):
        warm = book.refresh(block_ref(rpc, "latest", 31337))
    assert warm.hot == len(hot) and warm.sampled == ()
    assert warm.full_read == "mismatch" and warm.mismatches == (victim,), (warm.full_read, warm.mismatches)
    assert any(victim.account in r.getMessage() and "check=hot re-read" in r.getMessage() for r in caplog.records)
    assert book.states[victim] == kept  # the full read put the chain's state back
    assert warm.liquidatable == tuple(sorted(p.key for p in warm.positions if p.liquidatable))


def test_a_corrupted_cold_position_waits_for_the_periodic_read(aave_chain: DevChain, rpc: RpcClient, anvil: Any, market_v35: Market) -> None:
    book, start = crashed_book(rpc, anvil, market_v35, full_every=2)
    cold = [p.key for p in start.positions if nearness(p, 500) is None]
    victim = cold[len(cold) // 2]
    kept = book.states[victim]
    book.states[victim] = replace(kept, scaled_collateral={rid: v + 1 for rid, v in kept.scaled_collateral.items()})
    hot = len(book.near)
    aave_chain.mine()
    warm = book.refresh(block_ref(rpc, "latest", 31337))
    assert warm.full_read == "" and warm.mismatches == () and warm.hot == hot
    assert warm.hot > 0 and warm.accounts_read == warm.hot  # the hot pass reads only the hot; it does not see the victim
    assert warm.liquidatable == tuple(sorted(p.key for p in warm.positions if p.liquidatable))
    aave_chain.mine()
    warm = book.refresh(block_ref(rpc, "latest", 31337))
    assert warm.full_read == "periodic" and warm.mismatches == (victim,)


def test_hot_max_caps_the_reads_to_the_nearest(aave_chain: DevChain, rpc: RpcClient, anvil: Any, market_v35: Market) -> None:
    book, _start = crashed_book(rpc, anvil, market_v35, hot_max=3)
    assert len(book.near) > 3
    fourth = book.near[3]
    book.states[fourth] = replace(book.states[fourth], configuration=book.states[fourth].configuration ^ (1 << 255))
    aave_chain.mine()
    quiet = book.refresh(block_ref(rpc, "latest", 31337))
    assert quiet.hot == 3 and quiet.accounts_read == 3 and quiet.touched == ()
    assert quiet.full_read == "" and quiet.mismatches == (), "the fourth nearest is not read"
    nearest = book.near[:3]
    for key in nearest:  # a change no event announced in each of the three nearest: all three are read
        book.states[key] = replace(book.states[key], configuration=book.states[key].configuration ^ (1 << 255))
    aave_chain.mine()
    warm = book.refresh(block_ref(rpc, "latest", 31337))
    assert warm.hot == 3 and warm.full_read == "mismatch" and warm.mismatches == tuple(sorted(nearest))
    # Every hot position read: more accounts, and no fewer requests, than with hot_max = 3.
    wide = WarmBook(book.adapter, WarmOptions(sample_size=0, full_every=0, hot_max=10_000))
    wide.start(warm.block, book.known)
    aave_chain.mine()
    all_hot = wide.refresh(block_ref(rpc, "latest", 31337))
    assert all_hot.hot == len(wide.near) > 3 and all_hot.accounts_read == all_hot.hot
    assert all_hot.rpc_requests >= quiet.rpc_requests


# --- c. the kernels in the book ----------------------------------------------------------------------------------------
CASES = {"aave_v3": ("market_v35", aave_case), "compound_v3": ("comet", comet_case), "morpho_blue": ("morpho", morpho_case), "synthetix_perps_v2": ("perps", perps_case)}


@pytest.fixture()
def deployed(request: pytest.FixtureRequest, devchain: DevChain) -> Iterator[tuple[str, Any]]:
    """(kind, the kind's session fixture), deployed before the snapshot; the chain is reverted afterwards."""
    kind = request.param
    value = request.getfixturevalue(CASES[kind][0])
    snap = devchain.snapshot()
    yield kind, value
    devchain.revert(snap)


@pytest.mark.parametrize("deployed", sorted(CASES), indirect=True)
def test_the_kernel_decides_the_book(deployed: tuple[str, Any], devchain: DevChain, rpc: RpcClient, anvil: Any, caplog: pytest.LogCaptureFixture) -> None:
    kind, fixture = deployed
    case = CASES[kind][1](rpc, anvil, fixture, devchain)
    adapter = case.make()
    assert hasattr(adapter, "verdicts")
    block = block_ref(rpc, "latest", 31337)
    book = WarmBook(adapter, WarmOptions(sample_size=4))
    with caplog.at_level(logging.ERROR, logger="indexer.warm.book"):
        start = book.start(block, known_at(adapter, adapter.load_market(block), block))
        send(devchain, case.crash())
        devchain.mine()
        warm = book.refresh(block_ref(rpc, "latest", 31337))
    assert not [r for r in caplog.records if "fast verdicts differ" in r.getMessage()], "the kernel agrees with the positions"
    for refresh in (start, warm):
        assert refresh.liquidatable == tuple(sorted({book._state_key(p) for p in refresh.positions if p.liquidatable}))
    assert warm.liquidatable and warm.full_read == ""


# --- d. GMX re-read mode -------------------------------------------------------------------------------------------
@pytest.fixture()
def gmx_prices(gmx: Gmx) -> Any:
    """The GMX fixture's reference price book (Python state the chain's revert does not restore) is restored."""
    book = list(gmx.fixture.price_book)
    yield gmx
    gmx.fixture.price_book[:] = book


@pytest.fixture()
def gmx_chain(devchain: DevChain, gmx_prices: Gmx) -> Iterator[DevChain]:
    """Only the Aave markets and GMX deployed (before the snapshot); the chain is reverted afterwards."""
    snap = devchain.snapshot()
    yield devchain
    devchain.revert(snap)


COLD_EVERY = 3


def test_gmx_reread_mode_reads_cold_positions_in_slices(gmx_chain: DevChain, rpc: RpcClient, anvil: Any, gmx_prices: Gmx) -> None:
    chain = gmx_chain
    case = gmx_case(rpc, anvil, gmx_prices, chain)
    _settings, proto = gmx_settings(anvil, gmx_prices, "sqlite://")
    adapter = make_adapter(proto, rpc, Multicaller(rpc, batch_size=25))  # small batches: requests follow the calls
    block = block_ref(rpc, "latest", 31337)
    known = known_at(adapter, adapter.load_market(block), block)
    tiered = WarmBook(adapter, WarmOptions(gmx_mode="reread", cold_every=COLD_EVERY, sample_size=0, full_every=0))
    # The reference: every position at every block, derived off-chain (equal to the Reader's answers,
    # tests/test_warm_refresh.py); and, for the first refresh only, every position re-read from the node.
    derived = WarmBook(make_adapter(proto, rpc, Multicaller(rpc, batch_size=25)), WarmOptions(gmx_mode="derive", sample_size=0, full_every=0))
    flat = WarmBook(make_adapter(proto, rpc, Multicaller(rpc, batch_size=25)), WarmOptions(gmx_mode="reread", cold_every=1, sample_size=0, full_every=0))
    for book in (tiered, derived, flat):
        book.start(block, known)
    rng = random.Random(3)
    blocks = [block.number]
    for step in range(COLD_EVERY):  # each slice once
        for tx in case.prices(rng):
            chain.send(tx)
        chain.increase_time(600)
        chain.mine()
        block = block_ref(rpc, "latest", 31337)
        hot = {k.account for k in tiered.near}  # the previous refresh's hot accounts
        warm, everything = tiered.refresh(block), derived.refresh(block)
        blocks.append(block.number)
        assert warm.full_read == "" and everything.full_read == ""
        full = {(p.account, p.market): p for p in everything.positions}
        assert {(p.account, p.market) for p in warm.positions} == set(full)
        fresh = [p for p in warm.positions if p.block == block]
        stale = [p for p in warm.positions if p.block != block]
        assert fresh and stale and tiered.gmx is not None and tiered.gmx.reused == len(stale)
        assert all(p == full[(p.account, p.market)] for p in fresh), "what is read is a full read's"
        assert all(p.block.number in blocks[-COLD_EVERY:-1] for p in stale), "a cold position is at most cold_every - 1 refreshes old"
        assert hot and not any(p.account in hot for p in stale), "hot accounts are read every refresh"
        if step == 0:
            assert warm.rpc_requests < flat.refresh(block).rpc_requests
        assert warm.liquidatable == tuple(sorted(p.key for p in warm.positions if p.liquidatable))
