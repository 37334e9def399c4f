"""Fast exact Aave V3 verdicts (``risk.fast_aave``, ``AaveV3Adapter.verdicts``) against the reference rule.

a. Random markets (every formula family: revisions <= 8, 9, >= 10; eMode of both kinds, LT-0 reserves, dropped
   reserve slots, paused / inactive / grace-period reserves, the sentinel, zero prices) and random users (zero
   debt, dust, bits on dropped slots, unknown eMode categories): the kernel's verdict is
   ``evaluate_aave(...).evaluation.liquidatable``, at the first call and again from the cached compiled users at
   other prices; and at the boundary: the scaled debt one wei below and at the first HF < 1 (and < 0.95).
b. The speed-ups of the Position path give the same outputs: the price-drop search equals the plain bisection
   over repriced markets, the written-out state encoder equals ``risk.state.encode``.
c. On the session's anvil fixtures (revisions 7, 9, 10) after a price crash, with one reserve unpriced:
   ``adapter.verdicts`` equals ``Position.liquidatable`` of ``positions_from_states`` for the same accounts
   (the unpriced reserve's users absent from both), and the eMode categories are read once for both.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from indexer.chain.block import block_ref
from indexer.chain.multicall import Multicaller
from indexer.constants import RAY, WAD
from indexer.devnet.chain import DevChain
from indexer.domain import AccountKey
from indexer.protocols.aave_v3 import AaveV3Adapter, encode_user
from indexer.protocols.registry import make_adapter
from indexer.risk.aave_v3 import (
    AaveEModeCategory,
    AaveMarket,
    AaveReserve,
    AaveUser,
    account_data,
    make_configuration,
    price_drop_to_liquidation,
    with_collateral_prices_scaled,
)
from indexer.risk.distance import uniform_price_drop
from indexer.risk.fast_aave import AaveVerdicts
from indexer.risk.reprice.aave_v3 import evaluate_aave
from indexer.risk.state import encode
from tests.conftest import Market, settings_for

NOW = 1_700_000_000
PROPS = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True, database=None)
REVISIONS = (5, 7, 8, 9, 10, 11)  # <= 8: legacy rounding; 9: v3.5; >= 10: LT-0 collateral counted


# --- strategies ---------------------------------------------------------------------------------------
@st.composite
def reserves(draw: st.DrawFn, rid: int) -> AaveReserve:
    lt = draw(st.sampled_from((0, 1, 7100, 7800, 8300, 9500)) | st.integers(0, 10_000))
    decimals = draw(st.sampled_from((0, 2, 6, 8, 18, 24)))
    cfg = make_configuration(
        ltv=draw(st.integers(0, lt)),
        liquidation_threshold=lt,
        liquidation_bonus=10_500,
        decimals=decimals,
        active=draw(st.integers(0, 9)) > 0,
        paused=draw(st.integers(0, 9)) == 0,
        legacy_emode_category=draw(st.integers(0, 3)),
    )
    return AaveReserve(
        reserve_id=rid,
        asset=f"0x{rid + 1:040x}",
        symbol=f"R{rid}",
        configuration=cfg,
        normalized_income=draw(st.integers(RAY, 3 * RAY)),
        normalized_debt=draw(st.integers(RAY, 3 * RAY)),
        price=draw(st.sampled_from((0, 1, 10**8)) | st.integers(0, 10**13)),
        grace_period_until=draw(st.sampled_from((0, 0, 0, NOW - 1, NOW, NOW + 1))),
    )


@st.composite
def markets(draw: st.DrawFn, revision: int | None = None) -> AaveMarket:
    size = draw(st.integers(1, 6))
    slots: list[AaveReserve | None] = [None if rid and draw(st.integers(0, 6)) == 0 else draw(reserves(rid)) for rid in range(size)]
    categories = {}
    for cid in draw(st.sets(st.integers(1, 4), max_size=3)):
        lt = draw(st.integers(0, 10_000))
        categories[cid] = AaveEModeCategory(cid, draw(st.integers(0, lt)), lt, 10_100, draw(st.integers(0, 2**size - 1)), 0, draw(st.booleans()))
    return AaveMarket(
        revision=revision if revision is not None else draw(st.sampled_from(REVISIONS)),
        reserves=tuple(slots),
        emode_categories=categories,
        base_currency_unit=10**8,
        block_timestamp=NOW,
        sentinel_allows_liquidation=draw(st.sampled_from((None, None, True, False))),
    )


AMOUNTS = st.integers(0, 3) | st.integers(0, 10**9) | st.integers(0, 10**30)


@st.composite
def users(draw: st.DrawFn, size: int) -> AaveUser:
    width = size + 1  # one bit pair past the last reserve: the pool ignores it, so must the kernel
    configuration = draw(st.integers(0, 4**width - 1))
    if draw(st.integers(0, 4)) == 0:
        configuration &= int("10" * width, 2)  # collateral bits only: no debt
    collateral = {rid: draw(AMOUNTS) for rid in range(width) if draw(st.booleans())}
    debt = {rid: draw(AMOUNTS) for rid in range(width) if draw(st.booleans())}
    return AaveUser(f"0xU{draw(st.integers(0, 10**6))}", configuration, draw(st.sampled_from((0, 0, 1, 2, 3, 4, 9))), collateral, debt)


def reference(market: AaveMarket, user: AaveUser) -> bool:
    return evaluate_aave(market, user).evaluation.liquidatable


def repriced(market: AaveMarket, factors: list[int]) -> AaveMarket:
    slots = tuple(r if r is None else replace(r, price=r.price * f // 100) for r, f in zip(market.reserves, factors, strict=False))
    return replace(market, reserves=slots + market.reserves[len(slots) :])


# --- a. random markets and users --------------------------------------------------------------------------
@PROPS
@given(data=st.data())
def test_verdicts_equal_the_reference_rule(data: st.DataObject) -> None:
    market = data.draw(markets())
    book = {AccountKey(f"0x{i:040x}"): data.draw(users(len(market.reserves))) for i in range(data.draw(st.integers(1, 12)))}
    kernel = AaveVerdicts()
    assert kernel(market, book) == {k: reference(market, u) for k, u in book.items()}
    # The warm book's case: the same state objects (compiled forms cached) at other prices.
    moved = repriced(market, data.draw(st.lists(st.integers(0, 200), min_size=len(market.reserves), max_size=len(market.reserves))))
    assert kernel(moved, book) == {k: reference(moved, u) for k, u in book.items()}


@PROPS
@given(data=st.data())
def test_verdicts_skip_the_users_of_skipped_reserves(data: st.DataObject) -> None:
    market = data.draw(markets())
    book = {AccountKey(f"0x{i:040x}"): data.draw(users(len(market.reserves))) for i in range(8)}
    rid = data.draw(st.integers(0, len(market.reserves) - 1))
    skip = 0b11 << (2 * rid)
    assert AaveVerdicts()(market, book, skip_bits=skip) == {k: reference(market, u) for k, u in book.items() if not u.configuration & skip}


def _first_debt_below(market: AaveMarket, user: AaveUser, debt_rid: int, threshold: int) -> int | None:
    """The smallest scaled debt in ``debt_rid`` with HF < ``threshold`` (HF falls as the debt grows), or None."""

    def hf(scaled: int) -> int:
        return account_data(market, replace(user, scaled_debt={**user.scaled_debt, debt_rid: scaled})).health_factor

    lo, hi = 0, 10**40
    if hf(hi) >= threshold:
        return None
    while hi - lo > 1:  # hf(lo) >= threshold > hf(hi), or lo = 0
        mid = (lo + hi) // 2
        if hf(mid) < threshold:
            hi = mid
        else:
            lo = mid
    return hi


@PROPS
@given(data=st.data(), revision=st.sampled_from(REVISIONS))
def test_verdicts_at_the_health_factor_boundary(data: st.DataObject, revision: int) -> None:
    """A user with collateral and debt priced so that HF crosses 1 (and 0.95, for the sentinel) between two
    scaled debts one wei apart: the kernel agrees with the reference on both sides."""
    market = data.draw(markets(revision))
    live = [r.reserve_id for r in market.reserves if r is not None]
    coll_rid, debt_rid = data.draw(st.sampled_from(live)), data.draw(st.sampled_from(live))
    base = data.draw(users(len(market.reserves)))
    config = base.configuration | (0b10 << (2 * coll_rid)) | (0b01 << (2 * debt_rid))
    user = replace(base, configuration=config, scaled_collateral={**base.scaled_collateral, coll_rid: data.draw(st.integers(10**6, 10**28))})
    for threshold in (WAD, 95 * 10**16):
        first = _first_debt_below(market, user, debt_rid, threshold)
        if first is None:
            continue
        for scaled in (first - 1, first, first + 1):
            if scaled < 0:
                continue
            u = replace(user, scaled_debt={**user.scaled_debt, debt_rid: scaled})
            assert AaveVerdicts()(market, {"k": u}) == {"k": reference(market, u)}, (threshold, scaled)
    kernel = AaveVerdicts()
    assert kernel(market, {"k": user}) == {"k": reference(market, user)}


def test_verdicts_at_one_exactly_for_each_family() -> None:
    """Hand-built: HF = 1e18 exactly is not liquidatable, one wei more debt is, in each formula family."""
    cfg = make_configuration(ltv=8000, liquidation_threshold=8500, liquidation_bonus=10500, decimals=18)
    for revision in (7, 9, 10):
        market = AaveMarket(revision, (AaveReserve(0, "0xA", "A", cfg, RAY, RAY, 2 * 10**8, 0),), {}, 10**8, NOW, None)
        at_one = AaveUser("0xU", 0b11, 0, {0: 10**18}, {0: 85 * 10**16})
        assert account_data(market, at_one).health_factor == WAD
        below = replace(at_one, scaled_debt={0: 85 * 10**16 + 10**10})
        assert account_data(market, below).health_factor < WAD
        assert AaveVerdicts()(market, {"at": at_one, "below": below}) == {"at": False, "below": True}


def test_emode_does_not_count_lt0_collateral_through_v3_5() -> None:
    """An eMode category covering a reserve whose own LT is 0: through v3.5 the reserve is not counted at all
    (the category's LT does not apply), from v3.6 it is counted with the category's LT."""
    lt0 = make_configuration(ltv=0, liquidation_threshold=0, liquidation_bonus=0, decimals=18)
    normal = make_configuration(ltv=7500, liquidation_threshold=8000, liquidation_bonus=10500, decimals=18)
    slots = (AaveReserve(0, "0xA", "A", lt0, RAY, RAY, 10**8, 0), AaveReserve(1, "0xB", "B", normal, RAY, RAY, 10**8, 0))
    category = {1: AaveEModeCategory(1, 8500, 9000, 10100, 0b01, 0b11, False)}
    user = AaveUser("0xU", 0b1110, 1, {0: 1000 * 10**18, 1: 100 * 10**18}, {1: 500 * 10**18})
    for revision, expected in ((7, True), (9, True), (10, False)):
        market = AaveMarket(revision, slots, category, 10**8, NOW, None)
        assert reference(market, user) is expected
        assert AaveVerdicts()(market, {"k": user}) == {"k": expected}


# --- b. the Position path's speed-ups are the same functions ----------------------------------------------
def plain_price_drop(market: AaveMarket, user: AaveUser) -> float | None:
    """The price-drop search as first written: a bisection over repriced markets (the reference)."""
    data = account_data(market, user)
    if data.total_debt_base == 0:
        return None
    if data.health_factor < WAD:
        return 0.0
    assets = {market.reserves[leg.reserve_id].asset for leg in data.collateral_legs if leg.counted}  # type: ignore[union-attr]
    if not assets:
        return None
    return uniform_price_drop(lambda keep, scale: account_data(with_collateral_prices_scaled(market, assets, keep, scale), user).health_factor < WAD)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True, database=None)
@given(data=st.data())
def test_price_drop_equals_the_plain_bisection(data: st.DataObject) -> None:
    market = data.draw(markets())
    user = data.draw(users(len(market.reserves)))
    assert price_drop_to_liquidation(market, user) == plain_price_drop(market, user)


@settings(max_examples=60, deadline=None, derandomize=True, database=None)
@given(data=st.data())
def test_price_drop_near_the_boundary_equals_the_plain_bisection(data: st.DataObject) -> None:
    """HF just above 1: the boundary is a few units of the search's resolution away."""
    market = data.draw(markets(data.draw(st.sampled_from(REVISIONS))))
    live = [r.reserve_id for r in market.reserves if r is not None]
    coll_rid, debt_rid = data.draw(st.sampled_from(live)), data.draw(st.sampled_from(live))
    user = AaveUser("0xU", (0b10 << (2 * coll_rid)) | (0b01 << (2 * debt_rid)), 0, {coll_rid: data.draw(st.integers(10**6, 10**28))}, {})
    first = _first_debt_below(market, user, debt_rid, WAD)
    if first is not None and first > 1:
        user = replace(user, scaled_debt={debt_rid: first - 1})
    assert price_drop_to_liquidation(market, user) == plain_price_drop(market, user)


@settings(max_examples=100, deadline=None, derandomize=True, database=None)
@given(data=st.data(), revision=st.sampled_from(REVISIONS))
def test_price_drop_with_debt_in_a_collateral_asset_equals_the_plain_bisection(data: st.DataObject, revision: int) -> None:
    """Collateral and debt in the same reserve (its debt price moves with the collateral's) beside a fixed debt,
    small balances: each leg's rounding moves the boundary."""
    market = data.draw(markets(revision))
    live = [r.reserve_id for r in market.reserves if r is not None]
    rid, other = data.draw(st.sampled_from(live)), data.draw(st.sampled_from(live))
    small = st.integers(1, 10**4) | st.integers(1, 10**12)
    config = (0b11 << (2 * rid)) | (0b01 << (2 * other))
    user = AaveUser("0xU", config, data.draw(st.sampled_from((0, 1, 2))), {rid: data.draw(small)}, {rid: data.draw(small), other: data.draw(small)})
    assert price_drop_to_liquidation(market, user) == plain_price_drop(market, user)


@settings(max_examples=50, deadline=None, derandomize=True, database=None)
@given(data=st.data())
def test_state_encoder_equals_the_generic_one(data: st.DataObject) -> None:
    user = data.draw(users(4))
    assert encode_user(user) == encode(user)
    assert list(encode_user(user)) == list(encode(user))  # the same key order (stored JSON text)


# --- c. the session's fixtures ------------------------------------------------------------------------------
@pytest.fixture()
def aave_chain(devchain: DevChain, aave_markets: None) -> Iterator[DevChain]:
    """Only the Aave markets: the chain is reverted afterwards (deployed before the snapshot, never inside)."""
    snap = devchain.snapshot()
    yield devchain
    devchain.revert(snap)


@pytest.mark.parametrize("name", ["market_v33", "market_v35", "market_v36"])
def test_verdicts_equal_the_positions_on_the_fixtures(name: str, request: pytest.FixtureRequest, rpc, anvil, aave_chain: DevChain) -> None:  # type: ignore[no-untyped-def]
    market: Market = request.getfixturevalue(name)
    fx = market.fixture
    for symbol, percent in (("WETH", 80), ("wstETH", 79), ("WBTC", 86)):
        fx.set_price(symbol, fx.price(symbol) * percent // 100)
    fx.set_price("LINK", 0)  # getAssetPrice reverts: the users of LINK are left out
    _settings, proto = settings_for(anvil, fx, "sqlite://")
    adapter = make_adapter(proto, rpc, Multicaller(rpc, batch_size=500))
    assert isinstance(adapter, AaveV3Adapter)
    block = block_ref(rpc, "latest", 31337)
    snap = adapter.load_market(block)
    assert snap.unpriced and snap.block_number == block.number
    keys = {AccountKey(a) for a in market.seeded.accounts}
    states = adapter.read_states(snap, sorted(keys), block)
    verdicts = adapter.verdicts(snap, states)
    requests = rpc.request_count
    positions = adapter.positions_from_states(snap, keys, states, block)
    assert rpc.request_count == requests, "the eMode categories the verdicts read are not read again"
    assert verdicts == {p.key: p.liquidatable for p in positions}
    assert 0 < sum(verdicts.values()) < len(verdicts), "the crash liquidates some positions, not all"
    assert len(verdicts) < len(states), "the users of the unpriced reserve are left out"
    assert any(states[k].emode_category for k in verdicts), "eMode users are decided too"
    again = adapter.verdicts(snap, states)  # from the cached compiled states
    assert again == verdicts
