"""The PerpsV2 fixture behaves like Synthetixio/synthetix PerpsV2 (PerpsV2MarketBase / Views / Liquidate).

Every expectation is recomputed here in Python with integer 18-decimal math written out below
(SafeDecimalMath truncation, toward zero for signed values), from the market's raw state at the block:
the skew-driven funding velocity, ``_currentFundingRate``, ``_unrecordedFunding``, the funding sequence,
``_remainingMargin``, ``_liquidationMargin`` + ``_liquidationPremium`` with the ``<=`` rule,
``_approxLiquidationPrice``, ``_fillPrice`` / ``_orderFee`` and the liquidation fee split.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from eth_abi import decode
from eth_utils import keccak, to_checksum_address

from indexer.devnet.chain import DevChain
from indexer.devnet.seed import seeded_address
from indexer.devnet.synthetix_perps import PerpsFixture, PerpsSeedResult, deploy_perps_v2, seed_perps_positions

SEED = 71
SEEDED = 200
ETH, BTC = "sETHPERP", "sBTCPERP"
UNIT = 10**18
DAY = 86_400


# --- PerpsV2's arithmetic, written out -------------------------------------------------------------------
def mul(x: int, y: int) -> int:
    p = x * y
    return abs(p) // UNIT * (1 if p >= 0 else -1)


def div(x: int, y: int) -> int:
    n = x * UNIT
    q = abs(n) // abs(y)
    return q if (n >= 0) == (y > 0) else -q


@dataclass(frozen=True)
class Params:
    taker_fee: int
    maker_fee: int
    max_leverage: int
    skew_scale: int
    max_funding_velocity: int
    premium_multiplier: int
    buffer_ratio: int
    min_keeper_fee: int
    max_keeper_fee: int
    liquidation_fee_ratio: int
    keeper_liquidation_fee: int
    min_initial_margin: int


@dataclass(frozen=True)
class State:
    """What the formulas need of a market at a block (funding-related storage and the price)."""

    price: int
    skew: int
    last_recomputed: int
    rate_last: int
    latest_entry: int  # fundingSequence[length - 1]
    length: int
    p: Params

    def velocity(self) -> int:
        pskew = max(-UNIT, min(UNIT, div(self.skew, self.p.skew_scale)))
        return mul(pskew, self.p.max_funding_velocity)

    def elapsed(self, ts: int) -> int:
        return div(ts - self.last_recomputed, DAY)

    def rate(self, ts: int) -> int:
        return self.rate_last + mul(self.velocity(), self.elapsed(ts))

    def unrecorded(self, ts: int, price: int | None = None) -> int:
        price = self.price if price is None else price
        avg = -div(self.rate_last + self.rate(ts), 2 * UNIT)
        return mul(mul(avg, self.elapsed(ts)), price)

    def next_entry(self, ts: int, price: int | None = None) -> int:
        return self.latest_entry + self.unrecorded(ts, price)

    def liq_fee(self, size: int, price: int) -> int:
        prop = mul(mul(abs(size), price), self.p.liquidation_fee_ratio)
        return max(min(prop, self.p.max_keeper_fee), self.p.min_keeper_fee)

    def liq_margin(self, size: int, price: int) -> int:
        return mul(mul(abs(size), price), self.p.buffer_ratio) + self.liq_fee(size, price) + self.p.keeper_liquidation_fee

    def premium(self, size: int, price: int) -> int:
        if size == 0:
            return 0
        return mul(mul(div(abs(size), self.p.skew_scale), abs(mul(size, price))), self.p.premium_multiplier)


@dataclass(frozen=True)
class Pos:
    id: int
    index: int
    margin: int
    last_price: int
    size: int
    start_entry: int  # fundingSequence[lastFundingIndex]


def funding(st: State, pos: Pos, ts: int, price: int | None = None) -> int:
    if pos.index == 0:
        return 0
    return mul(pos.size, st.next_entry(ts, price) - pos.start_entry)


def pnl(pos: Pos, price: int) -> int:
    return mul(pos.size, price - pos.last_price)


def margin_plus(st: State, pos: Pos, ts: int, price: int | None = None) -> int:
    price = st.price if price is None else price
    return pos.margin + pnl(pos, price) + funding(st, pos, ts, price)


def remaining(st: State, pos: Pos, ts: int, price: int | None = None) -> int:
    return max(0, margin_plus(st, pos, ts, price))


def can_liquidate(st: State, pos: Pos, ts: int, price: int | None = None) -> bool:
    price = st.price if price is None else price
    if pos.size == 0:
        return False
    rem_liq = max(0, margin_plus(st, pos, ts, price) - st.premium(pos.size, price))
    return rem_liq <= st.liq_margin(pos.size, price)


def approx_liquidation_price(st: State, pos: Pos, ts: int) -> int:
    if pos.size == 0:
        return 0
    net = st.next_entry(ts) - pos.start_entry
    result = pos.last_price + div(st.liq_margin(pos.size, st.price) - (pos.margin - st.premium(pos.size, st.price)), pos.size) - net
    return max(0, result)


def fill_price(skew: int, size: int, price: int, skew_scale: int) -> int:
    before = price + mul(price, div(skew, skew_scale))
    after = price + mul(price, div(skew + size, skew_scale))
    return div(before + after, 2 * UNIT)


def order_fee(skew: int, size: int, fill: int, taker: int, maker: int) -> int:
    def same(a: int, b: int) -> bool:
        return a == 0 or b == 0 or (a > 0) == (b > 0)

    notional = mul(size, fill)
    if same(skew + size, skew):
        return abs(mul(notional, taker if same(notional, skew) else maker))
    taker_size = abs(div(skew + size, size))
    return mul(mul(abs(notional), taker_size), taker) + mul(mul(abs(notional), UNIT - taker_size), maker)


# --- chain helpers ---------------------------------------------------------------------------------------
def params(fx: PerpsFixture, market: str) -> Params:
    key = fx.market(market).spec.market_key.encode().ljust(32, b"\0")
    return Params(
        fx.setting("takerFee", key), fx.setting("makerFee", key), fx.setting("maxLeverage", key),
        fx.setting("skewScale", key), fx.setting("maxFundingVelocity", key),
        fx.setting("liquidationPremiumMultiplier", key), fx.setting("liquidationBufferRatio", key),
        fx.setting("minKeeperFee"), fx.setting("maxKeeperFee"), fx.setting("liquidationFeeRatio"),
        fx.setting("keeperLiquidationFee"), fx.setting("minInitialMargin"),
    )


def state(fx: PerpsFixture, market: str, block: int | str = "latest") -> State:
    length = int(fx.call(market, "fundingSequenceLength", block=block)[0])
    return State(
        price=fx.price(market, block)[0],
        skew=fx.skew(market, block),
        last_recomputed=int(fx.call(market, "fundingLastRecomputed", block=block)[0]),
        rate_last=int(fx.call(market, "fundingRateLastRecomputed", block=block)[0]),
        latest_entry=int(fx.call(market, "fundingSequence", length - 1, block=block)[0]),
        length=length,
        p=params(fx, market),
    )


def pos(fx: PerpsFixture, user: str, market: str, block: int | str = "latest") -> Pos:
    p = fx.position(user, market, block)
    start = int(fx.call(market, "fundingSequence", p.last_funding_index, block=block)[0])
    return Pos(p.id, p.last_funding_index, p.margin, p.last_price, p.size, start)


EVENT_TYPES = {
    "PositionModified(uint256,address,uint256,int256,int256,uint256,uint256,uint256,int256)": ["uint256", "int256", "int256", "uint256", "uint256", "uint256", "int256"],
    "PositionFlagged(uint256,address,address,uint256,uint256)": ["uint256", "address", "address", "uint256", "uint256"],
    "PositionLiquidated(uint256,address,address,int256,uint256,uint256,uint256,uint256)": ["uint256", "address", "address", "int256", "uint256", "uint256", "uint256", "uint256"],
    "MarginTransferred(address,int256)": ["int256"],
    "FundingRecomputed(int256,int256,uint256,uint256)": ["int256", "int256", "uint256", "uint256"],
}
TOPIC = {"0x" + keccak(text=sig).hex(): sig for sig in EVENT_TYPES}


def events(receipt: dict, name: str) -> list[tuple[list[str], tuple]]:
    out = []
    for log in receipt["logs"]:
        sig = TOPIC.get(log["topics"][0])
        if sig and sig.startswith(name + "("):
            out.append((log["topics"][1:], decode(EVENT_TYPES[sig], bytes.fromhex(log["data"][2:]))))
    return out


# --- fixtures --------------------------------------------------------------------------------------------
@dataclass
class Perps:
    fx: PerpsFixture
    seeded: PerpsSeedResult

    @property
    def chain(self) -> DevChain:
        return self.fx.chain


@pytest.fixture(scope="module")
def perps(devchain: DevChain) -> Perps:
    fx = deploy_perps_v2(devchain)
    seeded = seed_perps_positions(fx, SEEDED, random.Random(SEED), SEED)
    devchain.increase_time(600)
    devchain.mine()
    return Perps(fx, seeded)


@pytest.fixture()
def clean(perps: Perps) -> Iterator[Perps]:
    snap = perps.chain.snapshot()
    yield perps
    perps.chain.revert(snap)


def open_position(fx: PerpsFixture, user: str, market: str, size: int, margin: int) -> dict:
    fx.chain.fund([user])
    fx.do(fx.transfer_margin_tx(user, market, margin))
    return fx.do(fx.modify_position_tx(user, market, size))[0]


# --- tests -----------------------------------------------------------------------------------------------
def test_seeded_book_has_both_sides_opposite_skews_and_near_liquidation(perps: Perps) -> None:
    fx, s = perps.fx, perps.seeded
    assert len(s.accounts) == SEEDED and len(set(s.accounts)) == SEEDED
    assert s.accounts[0] == seeded_address(SEED, 0)
    assert len(s.longs) + len(s.shorts) == SEEDED and s.longs and s.shorts
    assert len(s.near_liquidation) >= 10
    for a in s.accounts:
        p = fx.position(a, s.market_of[a])
        assert p.size != 0 and (p.size > 0) == (a in s.longs)
        lev = abs(p.size) * p.last_price // UNIT * 100 // p.margin
        assert lev <= 5000  # margin is net of the fee; at most max leverage
    # Long skew in sETH (rate rising, longs pay), short skew in sBTC (rate falling, shorts pay).
    assert fx.skew(ETH) > 0 > fx.skew(BTC)
    assert int(fx.call(ETH, "currentFundingRate")[0]) > 0 > int(fx.call(BTC, "currentFundingRate")[0])
    assert not any(fx.can_liquidate(a, s.market_of[a]) for a in s.near_liquidation)


def test_funding_and_position_views_follow_the_velocity_model(perps: Perps) -> None:
    fx, s, chain = perps.fx, perps.seeded, perps.chain
    block = chain.block_number()
    ts = chain.block_timestamp(block)
    for market in (ETH, BTC):
        st = state(fx, market, block)
        assert int(fx.call(market, "currentFundingVelocity", block=block)[0]) == st.velocity()
        assert int(fx.call(market, "currentFundingRate", block=block)[0]) == st.rate(ts)
        assert fx.call(market, "unrecordedFunding", block=block) == (st.unrecorded(ts), False)
        size = int(fx.call(market, "marketSize", block=block)[0])
        assert fx.call(market, "marketSizes", block=block) == (abs((size + st.skew) // 2), abs((size - st.skew) // 2))
        users = [a for a in s.accounts if s.market_of[a] == market][:40]
        for u in users:
            p = pos(fx, u, market, block)
            f = funding(st, p, ts)
            assert fx.accrued_funding(u, market, block) == (f, False)
            assert fx.profit_loss(u, market, block) == (pnl(p, st.price), False)
            assert fx.remaining_margin(u, market, block) == (remaining(st, p, ts), False)
            assert fx.call(market, "notionalValue", u, block=block) == (mul(p.size, st.price), False)
            assert fx.can_liquidate(u, market, block) == can_liquidate(st, p, ts)
            # The crowded side pays: longs in sETH, shorts in sBTC.
            if (market == ETH) == (p.size > 0):
                assert f <= 0


def test_funding_accrues_with_time_and_recompute_appends_the_entry(clean: Perps) -> None:
    fx, s, chain = clean.fx, clean.seeded, clean.chain
    user = next(a for a in s.longs if s.market_of[a] == ETH and a not in s.near_liquidation)
    st = state(fx, ETH)
    p = pos(fx, user, ETH)
    t0 = chain.block_timestamp()
    for dt in (3600, 5 * 3600 + 17, 2 * DAY):
        chain.set_next_timestamp(t0 + dt)
        chain.mine()
        assert fx.accrued_funding(user, ETH) == (funding(st, p, t0 + dt), False)
    # A margin transfer recomputes funding first: FundingRecomputed(entry, rate, lengthBefore, timestamp).
    t1 = t0 + 2 * DAY + 100
    chain.set_next_timestamp(t1)
    receipt = fx.do(fx.transfer_margin_tx(user, ETH, 10 * UNIT))[0]
    ((_, rec),) = events(receipt, "FundingRecomputed")
    assert rec == (st.next_entry(t1), st.rate(t1), st.length, t1)
    assert int(fx.call(ETH, "fundingSequence", st.length)[0]) == st.next_entry(t1)
    ((topics, mod),) = events(receipt, "PositionModified")
    new_margin = margin_plus(st, p, t1) + 10 * UNIT
    assert mod == (new_margin, p.size, 0, st.price, st.length, 0, st.skew)
    assert to_checksum_address("0x" + topics[1][-40:]) == user
    assert events(receipt, "MarginTransferred")[0][1] == (10 * UNIT,)
    after = fx.position(user, ETH)
    assert (after.margin, after.last_price, after.last_funding_index) == (new_margin, st.price, st.length)


def test_trade_fills_at_the_skew_adjusted_price_with_maker_taker_fee(clean: Perps) -> None:
    fx, chain = clean.fx, clean.chain
    user = seeded_address(SEED, 900_001)
    for market, size in ((ETH, 7 * UNIT), (BTC, -UNIT // 2), (BTC, 3 * UNIT)):
        st = state(fx, market)
        fill = fill_price(st.skew, size, st.price, st.p.skew_scale)
        fee = order_fee(st.skew, size, fill, st.p.taker_fee, st.p.maker_fee)
        chain.fund([user])
        if fx.position(user, market).size == 0:
            fx.do(fx.transfer_margin_tx(user, market, 5_000 * UNIT))
        before = fx.position(user, market)
        receipt = fx.do(fx.modify_position_tx(user, market, size, fill))[0]  # desired == fill: accepted
        ((_, ev),) = events(receipt, "PositionModified")
        margin, new_size, trade, last_price, _, ev_fee, skew = ev
        assert (last_price, ev_fee, trade, skew) == (fill, fee, size, st.skew + size)
        assert new_size == before.size + size
        if before.size == 0:
            assert margin == before.margin - fee
    # A worse fill than desired reverts with "Price impact exceeded".
    st = state(fx, ETH)
    fill = fill_price(st.skew, UNIT, st.price, st.p.skew_scale)
    ok, msg = fx.try_tx(fx.modify_position_tx(user, ETH, UNIT, fill - 1))
    assert not ok and "Price impact exceeded" in msg


def test_remaining_margin_is_floored_at_zero(clean: Perps) -> None:
    fx, s, chain = clean.fx, clean.seeded, clean.chain
    user = max((a for a in s.longs if s.market_of[a] == ETH), key=lambda a: fx.position(a, ETH).size)
    fx.set_price(ETH, 1_000 * UNIT)
    block = chain.block_number()
    st, p = state(fx, ETH, block), pos(fx, user, ETH, block)
    assert margin_plus(st, p, chain.block_timestamp(block)) < 0
    assert fx.remaining_margin(user, ETH, block) == (0, False)
    assert fx.can_liquidate(user, ETH, block)
    assert fx.call(ETH, "accessibleMargin", user, block=block) == (0, False)


def test_can_liquidate_flips_exactly_at_the_le_boundary_including_premium(clean: Perps) -> None:
    fx, chain = clean.fx, clean.chain
    user = seeded_address(SEED, 900_002)
    open_position(fx, user, ETH, UNIT, 100 * UNIT)  # 1 sETH long, ~30x: every price wei moves the margin by 1 wei
    st, p = state(fx, ETH), pos(fx, user, ETH)
    assert st.rate_last >= 0 and st.velocity() > 0  # funding falls as the price rises: D(P+1) - D(P) <= 1
    ts = chain.block_timestamp() + 1000

    def d(price: int) -> int:
        return max(0, margin_plus(st, p, ts, price) - st.premium(p.size, price)) - st.liq_margin(p.size, price)

    lo, hi = 1_000 * UNIT, st.price
    assert d(lo) <= 0 < d(hi)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if d(mid) <= 0 else (lo, mid)
    boundary = lo
    assert d(boundary) == 0 and d(boundary + 1) > 0  # equality: only `<=` makes this price liquidatable
    # Without the premium the position would not be liquidatable at the boundary.
    assert remaining(st, p, ts, boundary) > st.liq_margin(p.size, boundary)

    for price, expected in ((boundary, True), (boundary + 1, False)):
        snap = chain.snapshot()
        chain.set_next_timestamp(ts)
        fx.set_price(ETH, price)
        block = chain.block_number()
        assert fx.can_liquidate(user, ETH, block) is expected
        assert fx.remaining_margin(user, ETH, block) == (remaining(st, p, ts, price), False)
        fee = int(fx.call(ETH, "liquidationFee", user, block=block)[0])
        assert fee == (st.liq_fee(p.size, price) if expected else 0)
        chain.revert(snap)


def test_liquidation_price_matches_the_approximation(perps: Perps) -> None:
    fx, s, chain = perps.fx, perps.seeded, perps.chain
    block = chain.block_number()
    ts = chain.block_timestamp(block)
    for market in (ETH, BTC):
        st = state(fx, market, block)
        users = [a for a in s.accounts if s.market_of[a] == market][:30]
        users += [a for a in s.near_liquidation if s.market_of[a] == market]
        for u in users:
            p = pos(fx, u, market, block)
            assert fx.liquidation_price(u, market, block) == (approx_liquidation_price(st, p, ts), False)
    assert fx.liquidation_price(seeded_address(SEED, 900_099), ETH, block) == (0, False)


def test_funding_alone_pushes_a_position_over_and_flag_then_liquidate(clean: Perps) -> None:
    fx, s, chain = clean.fx, clean.seeded, clean.chain
    user = next(a for a in s.near_liquidation if s.market_of[a] == ETH)
    st, p = state(fx, ETH), pos(fx, user, ETH)
    now = chain.block_timestamp()
    assert not can_liquidate(st, p, now) and not fx.can_liquidate(user, ETH)
    lo, hi = now, now + 30 * DAY  # price unchanged: only funding (longs pay in sETH) moves the margin
    assert can_liquidate(st, p, hi)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if can_liquidate(st, p, mid) else (mid, hi)
    chain.set_next_timestamp(hi - 1)
    chain.mine()
    assert not fx.can_liquidate(user, ETH)
    chain.set_next_timestamp(hi)
    chain.mine()
    assert fx.can_liquidate(user, ETH)
    assert fx.profit_loss(user, ETH)[0] == pnl(p, st.price)  # same PnL as before: funding did it

    flagger, keeper = seeded_address(SEED, 900_010), seeded_address(SEED, 900_011)
    chain.fund([flagger, keeper])
    # Liquidating needs a flag first; trading is refused once flagged.
    ok, msg = fx.try_tx(fx.liquidate_tx(keeper, ETH, user))
    assert not ok and "Position not flagged" in msg
    chain.set_next_timestamp(hi + 5)
    receipt = fx.do(fx.flag_tx(flagger, ETH, user))[0]
    ((_, flagged),) = events(receipt, "PositionFlagged")
    assert flagged == (p.id, user.lower(), flagger.lower(), st.price, hi + 5)
    assert fx.is_flagged(user, ETH)
    ok, msg = fx.try_tx(fx.transfer_margin_tx(user, ETH, 1_000 * UNIT))
    assert not ok and "Position flagged" in msg

    st2, p2 = state(fx, ETH), pos(fx, user, ETH)
    t_liq = chain.block_timestamp() + 30
    chain.set_next_timestamp(t_liq)
    receipt = fx.do(fx.liquidate_tx(keeper, ETH, user))[0]
    rem = remaining(st2, p2, t_liq)
    flagger_fee = st2.liq_fee(p2.size, st2.price)
    keeper_fee = st2.p.keeper_liquidation_fee
    stakers = max(0, rem - flagger_fee - keeper_fee)
    ((_, liq),) = events(receipt, "PositionLiquidated")
    assert liq == (p2.id, user.lower(), keeper.lower(), p2.size, st2.price, flagger_fee, keeper_fee, stakers)
    ((topics, mod),) = [e for e in events(receipt, "PositionModified")]
    assert mod == (0, 0, 0, st2.price, st2.length, 0, st2.skew - p2.size)
    assert int(topics[0], 16) == p2.id
    assert fx.position(user, ETH).size == 0 and not fx.is_flagged(user, ETH)
    assert fx.skew(ETH) == st2.skew - p2.size
    assert int(fx.call(ETH, "sUSDIssued", flagger)[0]) == flagger_fee


def test_flag_needs_the_rule_and_force_liquidation_needs_endorsement(clean: Perps) -> None:
    fx, s, chain = clean.fx, clean.seeded, clean.chain
    healthy = next(a for a in s.shorts if s.market_of[a] == ETH)
    keeper = seeded_address(SEED, 900_020)
    chain.fund([keeper])
    ok, msg = fx.try_tx(fx.flag_tx(keeper, ETH, healthy))
    assert not ok and "Position cannot be liquidated" in msg

    user = next(a for a in s.near_liquidation if s.market_of[a] == BTC)
    fx.set_price(BTC, fx.price(BTC)[0] * 103 // 100)  # shorts lose 3 %
    fx.do(fx.flag_tx(keeper, BTC, user))
    ok, msg = fx.try_tx(fx.force_liquidate_tx(BTC, user, sender=keeper))
    assert not ok and "address not endorsed" in msg
    p = fx.position(user, BTC)
    receipt = fx.do(fx.force_liquidate_tx(BTC, user))[0]  # the owner is endorsed; no keeper fee
    ((_, liq),) = events(receipt, "PositionLiquidated")
    assert liq[2] == fx.owner.lower() and liq[3] == p.size and liq[6] == 0


def test_invalid_price_is_reported_and_blocks_actions(clean: Perps) -> None:
    fx, s = clean.fx, clean.seeded
    user = next(a for a in s.near_liquidation if s.market_of[a] == ETH)
    fx.set_price(ETH, fx.price(ETH)[0] // 2)
    assert fx.can_liquidate(user, ETH)
    fx.set_price_invalid(ETH, True)
    assert fx.price(ETH)[1] and fx.remaining_margin(user, ETH)[1] and fx.liquidation_price(user, ETH)[1]
    assert not fx.can_liquidate(user, ETH) and int(fx.call(ETH, "liquidationFee", user)[0]) == 0
    ok, msg = fx.try_tx(fx.flag_tx(fx.owner, ETH, user))
    assert not ok and "Invalid price" in msg
    fx.set_price_invalid(ETH, False)
    fx.set_price(ETH, 0)
    assert fx.price(ETH) == (0, True) and not fx.can_liquidate(user, ETH)
