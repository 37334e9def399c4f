"""Fast exact verdicts (``adapter.verdicts``) of Compound V3, Morpho Blue and Synthetix PerpsV2 against the positions path.

``verdicts(market, states)`` must say, for every kept raw state, exactly what ``Position.liquidatable`` of the
position ``positions_from_states`` builds from it says, and leave out exactly the states that path leaves out.

a. Property tests (hypothesis) per protocol, without a chain: random markets (accrual over up to ten years, paused
   absorb, invalid prices, unpriced Comet assets, undecidable Morpho markets, off-chain-domain PerpsV2 settings) and
   states (zero debt, dust, 1-wei balances, and states placed exactly at the liquidation boundary and 1 wei either
   side, found by an exact search with the reference rule); a second call with some states replaced by new objects
   checks the per-state cache.
b. On the session's anvil fixtures after a large adverse price move (and, for Comet, a feed answering 0): the
   verdicts equal the positions' ``liquidatable`` of a full read, with some True and some False.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from eth_utils import to_checksum_address

from indexer.chain.block import block_ref
from indexer.chain.logs import scan_logs
from indexer.chain.multicall import Multicaller
from indexer.chain.rpc import RpcClient
from indexer.devnet.chain import DevChain, Tx
from indexer.domain import AccountKey, BlockRef
from indexer.protocols.base import ProtocolAdapter
from indexer.protocols.compound_v3 import CometSnapshot, CompoundV3Adapter
from indexer.protocols.morpho_blue import MorphoBlueAdapter, MorphoMarketInfo, MorphoSnapshot
from indexer.protocols.registry import make_adapter
from indexer.protocols.synthetix_perps_v2 import PerpsSnapshot, SynthetixPerpsV2Adapter
from indexer.risk import comet, morpho
from indexer.risk.fast_comet import CACHE_SLACK, CometVerdicts
from indexer.risk.reprice.morpho_blue import MorphoPricedMarket
from indexer.risk.synthetix_perps import PerpsMarket, PerpsPosition, can_liquidate_at
from tests.conftest import Comet, Morpho, Perps, comet_settings, morpho_settings, perps_settings

NOW = 1_700_000_000
BLOCK = BlockRef(chain_id=1, number=100, hash="0x" + "00" * 32, timestamp=NOW)
TEN_YEARS = 10 * 31_536_000
PROPERTY = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def addr(i: int) -> str:
    return "0x%040x" % (i + 1)


def boundary(liquidatable: Callable[[int], bool], lo: int, hi: int) -> int | None:
    """The least ``x`` in [lo, hi] with ``liquidatable(x)`` for a predicate monotone rising in ``x``; None if none."""
    if not liquidatable(hi):
        return None
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if liquidatable(mid):
            hi = mid
        else:
            lo = mid
    return lo if liquidatable(lo) else hi


def near(x: int | None) -> list[int]:
    return [] if x is None else [v for v in (x - 1, x, x + 1) if v >= 0]


def assert_same(adapter: Any, market: Any, states: dict[AccountKey, Any]) -> dict[AccountKey, bool]:
    """``adapter.verdicts`` == the positions' ``liquidatable``, key for key (the same keys left out)."""
    want = {AccountKey(p.account, p.market): p.liquidatable for p in adapter.positions_from_states(market, set(states), states, BLOCK)}
    got = adapter.verdicts(market, states)
    assert got == want, sorted((k, got.get(k), want.get(k)) for k in set(got) | set(want) if got.get(k) != want.get(k))[:5]
    return got


def replace_some(states: dict[AccountKey, Any], change: Callable[[Any], Any], every: int = 2) -> dict[AccountKey, Any]:
    """The same book with every ``every``-th state replaced by a new (changed) object, and one state dropped."""
    out = {k: (change(s) if i % every == 0 else s) for i, (k, s) in enumerate(states.items())}
    if len(out) > 1:
        out.pop(next(iter(out)))
    return out


# --- a. Comet ---------------------------------------------------------------------------------------------------
@st.composite
def comet_books(draw: st.DrawFn) -> tuple[CometSnapshot, dict[AccountKey, comet.CometUser]]:
    n_assets = draw(st.integers(1, 4))
    offsets = draw(st.lists(st.integers(0, 23), min_size=n_assets, max_size=n_assets, unique=True))  # >= 16: extended asset list
    assets = []
    for j, offset in enumerate(offsets):
        decimals = draw(st.sampled_from((0, 6, 8, 18)))
        lcf = draw(st.integers(10**17, 10**18))
        assets.append(
            comet.CometAsset(
                offset, addr(100 + j), f"T{j}", decimals, addr(200 + j), 10**decimals, lcf - draw(st.integers(0, 10**17)), lcf, 9 * 10**17, 10**40,
                draw(st.one_of(st.just(1), st.integers(1, 10**14))),
            )
        )  # fmt: skip
    base_decimals = draw(st.sampled_from((6, 18)))
    market = comet.CometMarket(
        base_token=addr(99), base_symbol="BASE", base_decimals=base_decimals, base_scale=10**base_decimals,
        base_price=draw(st.integers(1, 10**12)), base_borrow_min=0,
        base_supply_index=draw(st.integers(10**15, 3 * 10**15)), base_borrow_index=draw(st.integers(10**15, 3 * 10**15)),
        total_supply_base=0, total_borrow_base=0, last_accrual_time=NOW - draw(st.sampled_from((0, 1, 13, 86_400, TEN_YEARS))),
        pause_flags=draw(st.sampled_from((0, 0, 0, 1 << comet.PAUSE_ABSORB_OFFSET, 0b111))),
        supply_rate=draw(st.integers(0, 3 * 10**9)), borrow_rate=draw(st.integers(0, 5 * 10**9)), assets=tuple(assets), block_timestamp=NOW,
    )  # fmt: skip
    unpriced = draw(st.sets(st.sampled_from([a.asset for a in assets] + [market.base_token]), max_size=2)) if draw(st.booleans()) else set()
    if unpriced:  # what load_market leaves: price 0 for the tokens getPrice refuses
        market = replace(
            market,
            assets=tuple(replace(a, price=0) if a.asset in unpriced else a for a in market.assets),
            base_price=0 if market.base_token in unpriced else market.base_price,
        )
    now = comet.accrued(market)
    users: list[comet.CometUser] = []
    for _ in range(draw(st.integers(1, 6))):
        held = draw(st.sets(st.sampled_from(offsets + [31]), max_size=n_assets + 1))  # bit 31: an offset the market does not have
        balances = {o: draw(st.sampled_from((0, 1, 7)) | st.integers(0, 10**24)) for o in held}
        principal = draw(st.sampled_from((0, -1, 1)) | st.integers(-(10**18), 10**18))
        users.append(comet.CometUser("", principal, sum(1 << o for o in held), balances))
        # the same collateral at the smallest debt that makes it absorbable, and 1 wei either side
        edge = boundary(lambda p, u=users[-1]: comet.is_liquidatable(now, replace(u, principal=-p)), 0, 2**256)
        users += [replace(users[-1], principal=-p) for p in near(edge)]
    states = {AccountKey(addr(i)): replace(u, account=addr(i)) for i, u in enumerate(users)}
    return CometSnapshot(addr(98), market, (), unpriced=frozenset(unpriced)), states


def comet_adapter() -> CompoundV3Adapter:
    return CompoundV3Adapter("comet-fast", SimpleNamespace(comet=addr(98)), None, None)  # type: ignore[arg-type]  # no reads here


@PROPERTY
@given(comet_books(), st.integers(-(10**12), 10**12))
def test_comet_verdicts_equal_the_positions_path(book: tuple[CometSnapshot, dict[AccountKey, comet.CometUser]], delta: int) -> None:
    snap, states = book
    adapter = comet_adapter()
    assert_same(adapter, snap, states)
    # the warm call: cached states, some replaced by new objects (principal moved), one dropped; then a later block
    again = replace_some(states, lambda u: replace(u, principal=u.principal + delta))
    assert_same(adapter, snap, again)
    later = replace(snap, market=replace(snap.market, block_timestamp=NOW + 86_400 * 30))
    assert_same(adapter, later, again)


def test_comet_boundary_and_left_out_states_by_hand() -> None:
    weth = comet.CometAsset(0, addr(100), "WETH", 18, addr(200), 10**18, 8 * 10**17, 85 * 10**16, 9 * 10**17, 10**30, 2000 * 10**8)
    link = comet.CometAsset(1, addr(101), "LINK", 18, addr(201), 10**18, 7 * 10**17, 8 * 10**17, 9 * 10**17, 10**30, 15 * 10**8)
    m = comet.CometMarket(addr(99), "USDC", 6, 10**6, 10**8, 0, 10**15, 10**15, 0, 0, NOW, 0, 0, 0, (weth, link), NOW)
    states = {
        AccountKey(addr(1)): comet.CometUser(addr(1), -1700 * 10**6, 1, {0: 10**18}),  # debt == liquidity: not absorbable
        AccountKey(addr(2)): comet.CometUser(addr(2), -1700 * 10**6 - 1, 1, {0: 10**18}),  # 1 wei more: absorbable
        AccountKey(addr(3)): comet.CometUser(addr(3), 10**6, 0, {}),  # a supplier
        AccountKey(addr(4)): comet.CometUser(addr(4), -(10**6), 0b10, {1: 10**18}),  # holds LINK
    }
    adapter = comet_adapter()
    snap = CometSnapshot(addr(98), m, ())
    assert assert_same(adapter, snap, states) == {AccountKey(addr(1)): False, AccountKey(addr(2)): True, AccountKey(addr(3)): False, AccountKey(addr(4)): False}
    link_refused = CometSnapshot(addr(98), replace(m, assets=(weth, replace(link, price=0))), (), unpriced=frozenset({link.asset}))
    assert set(assert_same(adapter, link_refused, states)) == {AccountKey(addr(i)) for i in (1, 2, 3)}
    paused = CometSnapshot(addr(98), replace(m, pause_flags=1 << comet.PAUSE_ABSORB_OFFSET), ())
    assert not any(assert_same(adapter, paused, states).values())


def test_comet_cache_follows_replaced_states_and_stays_bounded() -> None:
    """A state replaced by a new object is compiled again (the old verdict is not reused), and the cache of
    compiled states does not grow with the replacements."""
    weth = comet.CometAsset(0, addr(100), "WETH", 18, addr(200), 10**18, 8 * 10**17, 85 * 10**16, 9 * 10**17, 10**30, 2000 * 10**8)
    m = comet.CometMarket(addr(99), "USDC", 6, 10**6, 10**8, 0, 10**15, 10**15, 0, 0, NOW, 0, 0, 0, (weth,), NOW)
    fast, key = CometVerdicts(), AccountKey(addr(1))
    for i in range(3 * CACHE_SLACK):
        owed = 1700 * 10**6 + i % 2  # alternately at the boundary and 1 wei over it
        assert fast(m, {key: comet.CometUser(addr(1), -owed, 1, {0: 10**18})}) == {key: bool(i % 2)}
    assert len(fast._cache) <= 1 + CACHE_SLACK


# --- a. Morpho Blue ---------------------------------------------------------------------------------------------
@st.composite
def morpho_books(draw: st.DrawFn) -> tuple[MorphoSnapshot, dict[AccountKey, morpho.MorphoPosition]]:
    snap = MorphoSnapshot(addr(97), BLOCK)
    ids = ["0x%064x" % (k + 1) for k in range(draw(st.integers(1, 3)))]
    dead = "0x" + "ee" * 32  # a market that cannot be decided (not created, or its oracle reverts): read, not kept
    snap.tried.update(ids + [dead])
    by_market: dict[str, morpho.MorphoMarket] = {}
    for k, market_id in enumerate(ids):
        borrow_assets = draw(st.sampled_from((0, 1)) | st.integers(10**6, 10**30))
        borrow_shares = draw(st.sampled_from((0, 10**6)) | st.integers(borrow_assets * 10**6 // 2, borrow_assets * 10**6 + 10**6))
        m = morpho.MorphoMarket(
            market_id=market_id, loan_token=addr(300 + k), collateral_token=addr(400 + k), oracle=addr(500 + k),
            irm=draw(st.sampled_from(("0x" + "00" * 20, addr(600 + k)))),
            lltv=draw(st.sampled_from((625 * 10**15, 77 * 10**16, 86 * 10**16, 915 * 10**15, 945 * 10**15, 10**18 - 1)) | st.integers(1, 10**18)),
            total_supply_assets=borrow_assets + draw(st.integers(0, 10**30)), total_supply_shares=draw(st.integers(0, 10**36)),
            total_borrow_assets=borrow_assets, total_borrow_shares=borrow_shares,
            last_update=NOW - draw(st.sampled_from((0, 1, 12, 86_400, TEN_YEARS))), fee=draw(st.sampled_from((0, 10**17, 25 * 10**16))),
            price=draw(st.sampled_from((0, 1, 10**36)) | st.integers(10**20, 10**50)),
            borrow_rate=draw(st.sampled_from((0, 1)) | st.integers(10**8, 2 * 10**10)), block_timestamp=NOW,
        )  # fmt: skip
        by_market[market_id] = m
        snap.markets[market_id] = MorphoMarketInfo(MorphoPricedMarket(m, "L", 6, "C", 18, None, 0), None)
    positions: list[tuple[str, morpho.MorphoPosition]] = []
    for _ in range(draw(st.integers(1, 6))):
        market_id = draw(st.sampled_from(ids + [dead]))
        pos = morpho.MorphoPosition(
            "",
            draw(st.integers(0, 10**20)),
            draw(st.sampled_from((0, 1)) | st.integers(10**6, 10**36)),
            draw(st.sampled_from((0, 1)) | st.integers(10**6, 10**30)),
        )
        positions.append((market_id, pos))
        if market_id in by_market:  # the smallest debt (in shares) that makes this collateral liquidatable, and 1 wei either side
            now = morpho.accrued(by_market[market_id])
            edge = boundary(lambda s, p=pos, n=now: not morpho.is_healthy(n, replace(p, borrow_shares=s)), 0, 2**300)
            positions += [(market_id, replace(pos, borrow_shares=s)) for s in near(edge)]
    states = {AccountKey(addr(i), mid): replace(p, account=addr(i)) for i, (mid, p) in enumerate(positions)}
    return snap, states


def morpho_adapter() -> MorphoBlueAdapter:
    return MorphoBlueAdapter("morpho-fast", SimpleNamespace(morpho=addr(97), markets=[], usd_feeds={}), None, None)  # type: ignore[arg-type]


@PROPERTY
@given(morpho_books(), st.integers(-(10**12), 10**12))
def test_morpho_verdicts_equal_the_positions_path(book: tuple[MorphoSnapshot, dict[AccountKey, morpho.MorphoPosition]], delta: int) -> None:
    snap, states = book
    adapter = morpho_adapter()
    assert_same(adapter, snap, states)
    again = replace_some(states, lambda p: replace(p, borrow_shares=max(0, p.borrow_shares + delta)))
    assert_same(adapter, snap, again)


# --- a. Synthetix PerpsV2 ---------------------------------------------------------------------------------------
U = 10**18


@st.composite
def perps_books(draw: st.DrawFn) -> tuple[PerpsSnapshot, dict[AccountKey, tuple[PerpsPosition, bool]]]:
    markets: dict[str, PerpsMarket] = {}
    for k in range(draw(st.integers(1, 2))):
        off_domain = draw(st.integers(0, 9)) == 0  # signed settings or price the chain never has: the reference decides
        sign = (lambda: draw(st.sampled_from((1, -1)))) if off_domain else (lambda: 1)
        address = addr(700 + k)
        markets[address] = PerpsMarket(
            address=address, market_key=b"sX%dPERP" % k, base_asset=f"sX{k}",
            price=sign() * draw(st.sampled_from((0, 1, 3000 * U)) | st.integers(0, 10**24)), price_invalid=draw(st.integers(0, 5)) == 0,
            skew=draw(st.integers(-(10**24), 10**24)), funding_last_recomputed=NOW - draw(st.sampled_from((0, 1, 3600, TEN_YEARS))),
            funding_rate_last_recomputed=draw(st.integers(-(10**17), 10**17)), latest_funding_entry=draw(st.integers(-(10**22), 10**22)),
            skew_scale=sign() * draw(st.integers(1, 10**25)), max_funding_velocity=draw(st.integers(0, 10**19)),
            liquidation_buffer_ratio=sign() * draw(st.integers(0, 10**17)), liquidation_premium_multiplier=sign() * draw(st.integers(0, 3 * U)),
            liquidation_fee_ratio=sign() * draw(st.integers(0, 10**16)), min_keeper_fee=sign() * draw(st.integers(0, 20 * U)),
            max_keeper_fee=sign() * draw(st.integers(0, 2000 * U)), keeper_liquidation_fee=sign() * draw(st.integers(0, 2 * U)), block_timestamp=NOW,
        )  # fmt: skip
    unknown = addr(799)  # a market not configured: its states are left out
    positions: list[tuple[str, PerpsPosition]] = []
    for _ in range(draw(st.integers(1, 6))):
        address = draw(st.sampled_from(list(markets) + [unknown]))
        pos = PerpsPosition(
            "", draw(st.integers(0, 10**6)), draw(st.sampled_from((0, 1, 7))), draw(st.sampled_from((0, 1)) | st.integers(0, 10**25)),
            draw(st.integers(0, 10**24)), draw(st.sampled_from((0, 1, -1)) | st.integers(-(10**24), 10**24)), draw(st.integers(-(10**22), 10**22)),
        )  # fmt: skip
        positions.append((address, pos))
        m = markets.get(address)
        if m is not None and pos.size and m.skew_scale > 0:  # the largest margin still liquidatable, and 1 wei either side
            edge = boundary(lambda x, p=pos, m=m: not can_liquidate_at(m, replace(p, margin=x), m.price), 0, 2**160)
            positions += [(address, replace(pos, margin=x)) for x in near(None if edge is None else edge - 1)]
    states = {AccountKey(addr(i), a): (replace(p, account=addr(i)), draw(st.booleans())) for i, (a, p) in enumerate(positions)}
    return PerpsSnapshot(markets, ()), states


def perps_adapter() -> SynthetixPerpsV2Adapter:
    return SynthetixPerpsV2Adapter("perps-fast", SimpleNamespace(), None, None)  # type: ignore[arg-type]


@PROPERTY
@given(perps_books(), st.integers(-(10**20), 10**20))
def test_synthetix_verdicts_equal_the_positions_path(book: tuple[PerpsSnapshot, dict[AccountKey, tuple[PerpsPosition, bool]]], delta: int) -> None:
    snap, states = book
    adapter = perps_adapter()
    assert_same(adapter, snap, states)
    again = replace_some(states, lambda s: (replace(s[0], margin=max(0, s[0].margin + delta)), not s[1]))
    assert_same(adapter, snap, again)
    later = PerpsSnapshot({a: replace(m, block_timestamp=NOW + 7 * 86_400) for a, m in snap.markets.items()}, ())
    assert_same(adapter, later, again)


# --- accounts named by discovery logs (``accounts_from_logs`` through ``base.accounts_in_topics``) ------------------
def word(address: str) -> str:
    return "0x" + "00" * 12 + address[2:].lower()


def shout(hex_text: str) -> str:
    """Upper-case hex digits, as some nodes return topics."""
    return "0x" + hex_text[2:].upper()


def test_morpho_and_perps_accounts_from_logs() -> None:
    """The (account, market) pairs named by the discovery events; zero addresses, other events and short topic
    lists name nobody; configured Morpho ``markets`` filter; topics compare case-insensitively."""
    m1, m2 = "0x" + "1a" * 32, "0x" + "2b" * 32
    a, b, c, zero = "0x" + "aa" * 20, "0x" + "bb" * 20, "0x" + "cc" * 20, "0x" + "00" * 20
    A, B = to_checksum_address(a), to_checksum_address(b)
    adapter = morpho_adapter()
    borrow, supply = adapter.abi.event("Borrow"), adapter.abi.event("SupplyCollateral")
    other = adapter.abi.event("Repay").topic0

    def log(ev: Any, market: str, account: str) -> dict[str, Any]:
        topics = [shout(ev.topic0), shout(market), word(zero), word(zero)]
        topics[ev.topic_index("onBehalf")] = word(account)
        return {"address": addr(97), "topics": topics, "data": "0x"}

    logs = [log(borrow, m1, a), log(supply, m2, b), log(supply, m1, zero), {"address": addr(97), "topics": [other, m1, word(c), word(c)]}]
    logs += [{"address": addr(97), "topics": [borrow.topic0, m2]}]  # too short to name anyone
    assert adapter.accounts_from_logs(logs) == {AccountKey(A, m1), AccountKey(B, m2)}
    only = MorphoBlueAdapter("morpho-fast", SimpleNamespace(morpho=addr(97), markets=[m2], usd_feeds={}), None, None)  # type: ignore[arg-type]
    assert only.accounts_from_logs(logs) == {AccountKey(B, m2)}

    perps = perps_adapter()
    modified = perps.abi.event("PositionModified")
    i = modified.topic_index("account")

    def plog(market: str, account: str, topic0: str = modified.topic0) -> dict[str, Any]:
        topics = [topic0, word(zero), word(zero), word(zero)][: max(i + 1, 2)]
        topics[i] = word(account)
        return {"address": market.lower(), "topics": topics, "data": "0x"}

    p1, p2 = addr(700), addr(701)
    plogs = [plog(p1, a), plog(p2, a), plog(p1, b), plog(p2, zero), plog(p1, c, perps.abi.event("MarginTransferred").topic0)]
    plogs += [{"address": p2, "topics": [modified.topic0]}]
    assert perps.accounts_from_logs(plogs) == {AccountKey(A, to_checksum_address(p1)), AccountKey(A, to_checksum_address(p2)), AccountKey(B, to_checksum_address(p1))}


# --- b. the session's anvil fixtures after a large adverse move ------------------------------------------------
@pytest.fixture()
def moved_chain(devchain: DevChain, comet: Comet, morpho: Morpho, perps: Perps) -> Iterator[DevChain]:
    """Chain changes of the test are reverted (the three fixtures deployed before the snapshot)."""
    snap = devchain.snapshot()
    yield devchain
    devchain.revert(snap)


def full_states(rpc: RpcClient, proto: Any) -> tuple[ProtocolAdapter, Any, set[AccountKey], dict[AccountKey, Any], BlockRef]:
    """A fresh adapter, its market at the latest block, every account the discovery events name and their states."""
    adapter = make_adapter(proto, rpc, Multicaller(rpc, batch_size=500))
    block = block_ref(rpc, "latest", 31337)
    market = adapter.load_market(block)
    filt = adapter.log_filter(market)
    known = adapter.accounts_from_logs(scan_logs(rpc, filt.addresses, filt.topics, 0, block.number, chunk=100_000, max_chunk=100_000))
    return adapter, market, known, adapter.read_states(market, sorted(known), block), block


def check_on_chain(adapter: Any, market: Any, known: set[AccountKey], states: dict[AccountKey, Any], block: BlockRef) -> dict[AccountKey, bool]:
    got = adapter.verdicts(market, states)  # first: Morpho reads its markets here
    want = {AccountKey(p.account, p.market): p.liquidatable for p in adapter.positions_from_states(market, known, states, block)}
    assert got == want
    assert adapter.verdicts(market, states) == want  # the warm call (compiled states cached)
    assert any(want.values()) and not all(want.values()), sum(want.values())
    return got


def test_comet_verdicts_on_chain_after_a_crash(moved_chain: DevChain, rpc: RpcClient, anvil: Any, comet: Comet) -> None:
    fx = comet.fixture
    _settings, proto = comet_settings(anvil, fx, "sqlite://")
    feed = fx.asset("LINK").feed
    moved_chain.send_many(
        [Tx(moved_chain.deployer, fx.asset(sym).feed, "MockAggregatorV3", "updateAnswer", (int(fx.price(sym) * 0.8),)) for sym in ("WETH", "WBTC")]
        + [Tx(moved_chain.deployer, feed, "MockAggregatorV3", "updateAnswer", (0,))]  # getPrice(LINK) reverts: LINK holders left out
    )
    adapter, market, known, states, block = full_states(rpc, proto)
    got = check_on_chain(adapter, market, known, states, block)
    link = next(a.offset for a in market.market.assets if a.symbol == "LINK")
    left_out = {k for k, u in states.items() if (u.assets_in >> link) & 1}
    assert left_out and set(got) == set(states) - left_out


def test_morpho_verdicts_on_chain_after_a_crash(moved_chain: DevChain, rpc: RpcClient, anvil: Any, morpho: Morpho) -> None:
    fx = morpho.fixture
    _settings, proto = morpho_settings(anvil, fx, "sqlite://")
    moved_chain.send_many([Tx(fx.owner, m.params.oracle, "MorphoOracleMock", "setPrice", (int(fx.price(m) * 0.85),)) for m in fx.markets.values()])
    moved_chain.increase_time(30 * 86_400)  # a month of interest, accrued off-chain
    moved_chain.mine()
    adapter, market, known, states, block = full_states(rpc, proto)
    check_on_chain(adapter, market, known, states, block)
    # verdicts read the markets first; the prices and market state are those of a read by positions alone
    alone = full_states(rpc, proto)
    alone[0].positions_from_states(alone[1], alone[2], alone[3], alone[4])
    assert adapter.prices(market) == alone[0].prices(alone[1]) and adapter.market_state(market) == alone[0].market_state(alone[1])


def test_synthetix_verdicts_on_chain_after_a_crash(moved_chain: DevChain, rpc: RpcClient, anvil: Any, perps: Perps) -> None:
    fx = perps.fixture
    _settings, proto = perps_settings(anvil, fx, "sqlite://")
    (k1, k2) = list(fx.markets)[:2]
    moved_chain.send_many([fx.set_price_tx(k1, int(fx.price(k1)[0] * 0.85)), fx.set_price_tx(k2, int(fx.price(k2)[0] * 1.15))])
    moved_chain.increase_time(3 * 86_400)  # unrecorded funding moves with the clock
    moved_chain.mine()
    adapter, market, known, states, block = full_states(rpc, proto)
    check_on_chain(adapter, market, known, states, block)
