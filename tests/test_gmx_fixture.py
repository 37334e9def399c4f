"""The GMX v2 fixture behaves like gmx-synthetics for what the indexer reads: keys, layouts, events, pending
borrowing / funding fees, PnL prices and the isPositionLiquidatable rule (PROTOCOLS.md §5.1).

Expectations are recomputed here from GMX's formulas (MarketUtils / PositionUtils) on values read from the
DataStore, independently of the fixture's Solidity.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from eth_abi import decode
from eth_utils import keccak

from indexer.chain.abi import Abi
from indexer.devnet.chain import DevChain
from indexer.devnet.gmx_market import (
    FLOAT_PRECISION,
    FLOAT_PRECISION_SQRT,
    MIN_COLLATERAL_USD,
    POSITION_LIST,
    GmxFixture,
    GmxSeedResult,
    account_position_list_key,
    borrowing_factor_key,
    cumulative_borrowing_factor_key,
    cumulative_borrowing_factor_updated_at_key,
    deploy_gmx,
    funding_factor_key,
    funding_fee_amount_per_size_key,
    funding_updated_at_key,
    max_funding_factor_per_second_key,
    min_collateral_factor_for_liquidation_key,
    min_collateral_factor_key,
    open_interest_in_tokens_key,
    open_interest_key,
    pool_amount_key,
    position_fee_factor_key,
    position_key,
    seed_gmx_positions,
)
from indexer.devnet.seed import seeded_address

SEED = 61
POSITIONS = 200
ABIS = Path(__file__).resolve().parents[1] / "abis"
READER = Abi(json.loads((ABIS / "GmxReader.json").read_text()))
EMITTER = Abi(json.loads((ABIS / "GmxEventEmitter.json").read_text()))
EVENT_LOG1_TOPIC0 = "0x137a44067c8961cd7e1d876f4754a5a3a75989b4552f1843fc69c3b372def160"
POSITION_INCREASE_HASH = "0xf94196ccb31f81a3e67df18f2a62cbfb50009c80a7d3c728a3f542e3abc5cb63"
POSITION_DECREASE_HASH = "0x07d51b51b408d7c62dcc47cc558da5ce6a6e0fd129a427ebce150f52b0e5171a"


@pytest.fixture(scope="module")
def gmx(devchain: DevChain) -> tuple[GmxFixture, GmxSeedResult]:
    fx = deploy_gmx(devchain)
    seeded = seed_gmx_positions(fx, POSITIONS, random.Random(SEED), SEED, first_index=70_000)
    devchain.increase_time(2 * 24 * 3600 + 17)
    devchain.mine()
    return fx, seeded


@pytest.fixture()
def snap(devchain: DevChain, gmx: tuple[GmxFixture, GmxSeedResult]) -> Iterator[DevChain]:
    s = devchain.snapshot()
    yield devchain
    devchain.revert(s)


# --- GMX arithmetic, written out ------------------------------------------------------------------------
def apply_factor(v: int, f: int) -> int:
    return v * f // FLOAT_PRECISION


def to_factor(v: int, d: int) -> int:
    return v * FLOAT_PRECISION // d


def ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def oi(fx: GmxFixture, m, block: int) -> dict[tuple[str, bool], int]:  # type: ignore[no-untyped-def]
    out = {}
    for sym in (m.long, m.short):
        for is_long in (True, False):
            out[(sym, is_long)] = fx.get_uint(open_interest_key(m.market_token, fx.tokens[sym].address, is_long), block)
    return out


def next_cumulative_borrowing(fx: GmxFixture, m, is_long: bool, prices, block: int) -> int:  # type: ignore[no-untyped-def]
    mt = m.market_token
    updated = fx.get_uint(cumulative_borrowing_factor_updated_at_key(mt, is_long), block)
    duration = fx.chain.block_timestamp(block) - updated
    if is_long:
        tokens = sum(fx.get_uint(open_interest_in_tokens_key(mt, fx.tokens[s].address, True), block) for s in (m.long, m.short))
        reserved = tokens * prices[0][1]
    else:
        reserved = sum(v for (s, il), v in oi(fx, m, block).items() if not il)
    token = m.long if is_long else m.short
    pool = fx.get_uint(pool_amount_key(mt, fx.tokens[token].address), block) * (prices[1] if is_long else prices[2])[0]
    per_second = 0 if reserved == 0 else apply_factor(to_factor(reserved, pool), fx.get_uint(borrowing_factor_key(mt, is_long), block))
    return fx.get_uint(cumulative_borrowing_factor_key(mt, is_long), block) + duration * per_second


def next_funding_fee_per_size(fx: GmxFixture, m, collateral: str, is_long: bool, prices, block: int) -> int:  # type: ignore[no-untyped-def]
    """latestFundingFeeAmountPerSize as getPositionInfo sees it (stored + getNextFundingAmountPerSize delta)."""
    mt = m.market_token
    stored = fx.get_uint(funding_fee_amount_per_size_key(mt, fx.tokens[collateral].address, is_long), block)
    o = oi(fx, m, block)
    long_oi = o[(m.long, True)] + o[(m.short, True)]
    short_oi = o[(m.long, False)] + o[(m.short, False)]
    if long_oi == 0 or short_oi == 0:
        return stored
    duration = fx.chain.block_timestamp(block) - fx.get_uint(funding_updated_at_key(mt), block)
    diff = abs(long_oi - short_oi)
    f = apply_factor(to_factor(diff, long_oi + short_oi), fx.get_uint(funding_factor_key(mt), block))
    f = min(f, fx.get_uint(max_funding_factor_per_second_key(mt), block))
    longs_pay = long_oi > short_oi
    if longs_pay != is_long:
        return stored  # the receiving side's fee per size does not move
    funding_usd = apply_factor(max(long_oi, short_oi), duration * f)
    side_oi = long_oi if is_long else short_oi
    oi_c = o[(collateral, is_long)]
    usd_c = funding_usd * oi_c // side_oi
    if usd_c == 0 or oi_c == 0:
        return stored
    price_max = (prices[1] if collateral == m.long else prices[2])[1]
    per_size = ceil_div(usd_c * FLOAT_PRECISION * FLOAT_PRECISION_SQRT, oi_c)
    return stored + ceil_div(per_size, price_max)


def remaining_collateral_stored(fx: GmxFixture, key: bytes, prices, block: int | str) -> tuple[int, int]:  # type: ignore[no-untyped-def]
    """PositionUtils.isPositionLiquidatable's remainingCollateralUsd with stored funding / borrowing state
    (impact factors are 0 in the demo), and the forLiquidation threshold max(MIN_COLLATERAL_USD, size x factor)."""
    (account, market, coll), n, (is_long,) = fx.get_position(key, block)
    m = fx.market(market)
    size, tokens, amount, _pending, bf, ffps = n[0], n[1], n[2], n[3], n[4], n[5]
    cprice = prices[1] if fx.tokens[m.long].address.lower() == coll.lower() else prices[2]
    pnl = tokens * prices[0][0] - size if is_long else size - tokens * prices[0][1]
    o = oi(fx, m, block if block != "latest" else fx.chain.block_number())
    long_oi = o[(m.long, True)] + o[(m.short, True)]
    short_oi = o[(m.long, False)] + o[(m.short, False)]
    nl, ns = (long_oi - size, short_oi) if is_long else (long_oi, short_oi - size)
    improved = abs(nl - ns) < abs(long_oi - short_oi)
    position_fee = apply_factor(size, fx.get_uint(position_fee_factor_key(m.market_token, improved), block)) // cprice[0]
    cumulative = fx.get_uint(cumulative_borrowing_factor_key(m.market_token, is_long), block)
    borrowing = apply_factor(size, cumulative - bf) // cprice[0]
    latest = fx.get_uint(funding_fee_amount_per_size_key(m.market_token, coll, is_long), block)
    funding = ceil_div(size * (latest - ffps), FLOAT_PRECISION * FLOAT_PRECISION_SQRT)
    remaining = amount * cprice[0] + pnl - (position_fee + borrowing + funding) * cprice[0]
    threshold = apply_factor(size, fx.get_uint(min_collateral_factor_for_liquidation_key(m.market_token), block))
    return remaining, max(threshold, fx.get_uint(MIN_COLLATERAL_USD, block))


# --- keys, layouts, events ------------------------------------------------------------------------------
def test_keys_and_layouts_decode_with_the_real_abis(gmx: tuple[GmxFixture, GmxSeedResult]) -> None:
    fx, seeded = gmx
    assert fx.position_count() == POSITIONS == len(seeded.positions)
    assert {p.is_long for p in seeded.positions} == {True, False}
    assert {p.collateral for p in seeded.positions} == {"WETH", "WBTC", "USDC"}
    p = seeded.positions[0]
    m = fx.markets[p.market]
    assert p.key == keccak(bytes(12) + bytes.fromhex(p.account[2:]) + bytes(12) + bytes.fromhex(m.market_token[2:])
                           + bytes(12) + bytes.fromhex(fx.tokens[p.collateral].address[2:]) + (1 if p.is_long else 0).to_bytes(32, "big"))
    assert p.key == position_key(p.account, m.market_token, fx.tokens[p.collateral].address, p.is_long)
    assert fx.chain.call("GmxDataStore", fx.data_store, "containsBytes32", POSITION_LIST, p.key)[0]
    assert fx.chain.call("GmxDataStore", fx.data_store, "getBytes32ValuesAt", account_position_list_key(p.account), 0, 10)[0] == (p.key,)

    fn = READER.fn("getAccountPositions")
    raw = fx.chain.rpc.call(fx.reader, fn.encode(fx.data_store, p.account, 0, 10), "latest")
    (positions,) = fn.decode(raw)
    assert len(positions) == 1
    (account, market, coll), numbers, (is_long,) = positions[0]
    assert (account.lower(), market.lower(), coll.lower(), is_long) == (p.account.lower(), m.market_token.lower(), fx.tokens[p.collateral].address.lower(), p.is_long)
    assert numbers[0] == p.size_usd and numbers[1] > 0 and numbers[3] == 0  # pendingImpactAmount (impact factors 0)

    fn = READER.fn("getPositionInfo")
    prices = fx.market_prices(m)
    (info,) = fn.decode(fx.chain.rpc.call(fx.reader, fn.encode(fx.data_store, "0x" + "00" * 20, p.key, prices, 0, "0x" + "00" * 20, True), "latest"))
    assert info[0] == p.key and tuple(info[1][1]) == tuple(numbers)
    assert info[2][6] == prices[1] if p.collateral == m.long else info[2][6] == prices[2]  # fees.collateralTokenPrice

    fn = READER.fn("getMarket")
    (props,) = fn.decode(fx.chain.rpc.call(fx.reader, fn.encode(fx.data_store, m.market_token), "latest"))
    assert [a.lower() for a in props] == [a.lower() for a in m.props(fx.tokens)]


def _event_logs(fx: GmxFixture, receipt: dict) -> list[tuple[list[str], tuple]]:  # type: ignore[type-arg]
    ev = EMITTER.event("EventLog1")
    out = []
    for log in receipt["logs"]:
        if log["address"].lower() == fx.event_emitter.lower() and log["topics"][0] == ev.topic0:
            data = decode([t for _, t in ev.data], bytes.fromhex(log["data"][2:]))
            out.append((log["topics"], data))
    return out


def test_position_events_use_eventlog1_with_the_account_as_topic1(snap: DevChain, gmx: tuple[GmxFixture, GmxSeedResult]) -> None:
    fx, _ = gmx
    assert EMITTER.event("EventLog1").topic0 == EVENT_LOG1_TOPIC0
    account = seeded_address(SEED, -3)
    m = fx.markets["ETH/USD"]
    receipt = fx.do(fx.increase_tx(account, m, "USDC", False, 2_000 * 10**6, 10_000 * FLOAT_PRECISION, fx.market_prices(m)))[0]
    [(topics, data)] = _event_logs(fx, receipt)
    assert topics[1] == POSITION_INCREASE_HASH == "0x" + keccak(text="PositionIncrease").hex()
    assert topics[2] == "0x" + "00" * 12 + account[2:].lower()
    msg_sender, name, log_data = data
    assert name == "PositionIncrease" and msg_sender.lower() == fx.helper.lower()
    key = position_key(account, m.market_token, fx.tokens["USDC"].address, False)
    assert dict(log_data[4][0])["positionKey"] == key
    assert dict(log_data[0][0])["account"].lower() == account.lower()
    uints = dict(log_data[1][0])
    assert uints["sizeInUsd"] == 10_000 * FLOAT_PRECISION and uints["orderType"] == 2

    receipt = fx.do(fx.decrease_tx(account, m, "USDC", False, 0, 10_000 * FLOAT_PRECISION, fx.market_prices(m)))[0]
    [(topics, data)] = _event_logs(fx, receipt)
    assert topics[1] == POSITION_DECREASE_HASH and data[1] == "PositionDecrease"
    assert fx.get_position(key)[0][0] == "0x" + "00" * 20  # closed and removed
    assert not fx.chain.call("GmxDataStore", fx.data_store, "containsBytes32", POSITION_LIST, key)[0]


# --- pending fees ----------------------------------------------------------------------------------------
def test_pending_borrowing_and_funding_grow_in_position_info_only(snap: DevChain, gmx: tuple[GmxFixture, GmxSeedResult]) -> None:
    fx, seeded = gmx
    chain = snap
    eth = [p for p in seeded.positions if p.market == "ETH/USD"]
    payer = next(p for p in eth if p.is_long and p.collateral == "USDC")  # ETH/USD is long-heavy: longs pay
    receiver = next(p for p in eth if not p.is_long)
    m = fx.markets["ETH/USD"]
    b0 = chain.block_number()
    infos0 = {p.key: fx.position_info(p.key, fx.market_prices(m), b0) for p in (payer, receiver)}
    chain.increase_time(5 * 24 * 3600)
    chain.mine()
    b1 = chain.block_number()
    prices = fx.market_prices(m, b1)
    for p in (payer, receiver):
        assert fx.get_position(p.key, b1) == fx.get_position(p.key, b0)  # stored state does not move
        info = fx.position_info(p.key, prices, b1)
        position = fx.get_position(p.key, b1)
        size, bf, ffps = position[1][0], position[1][4], position[1][5]
        cprice = prices[1] if p.collateral == m.long else prices[2]
        # borrowing: applyFactor(size, nextCumulative - position.borrowingFactor) / collateral min price
        nxt = next_cumulative_borrowing(fx, m, p.is_long, prices, b1)
        assert info[2][3][0] == apply_factor(size, nxt - bf)
        assert info[2][3][1] == info[2][3][0] // cprice[0]
        assert info[2][3][1] > infos0[p.key][2][3][1] > 0
        # funding: ceil(size x (latest - position) / 1e45)
        latest = next_funding_fee_per_size(fx, m, p.collateral, p.is_long, prices, b1)
        assert info[2][2][3] == latest
        assert info[2][2][0] == ceil_div(size * (latest - ffps), FLOAT_PRECISION * FLOAT_PRECISION_SQRT)
        assert info[2][15] == info[2][14] + info[2][2][0]  # totalCostAmount = excluding funding + funding
    assert fx.position_info(payer.key, prices, b1)[2][2][0] > infos0[payer.key][2][2][0] > 0
    recv = fx.position_info(receiver.key, prices, b1)[2][2]
    assert recv[0] == 0 and recv[1] + recv[2] > 0  # receivers get claimable funding, pay none
    assert fx.get_uint(cumulative_borrowing_factor_key(m.market_token, True), b1) == fx.get_uint(cumulative_borrowing_factor_key(m.market_token, True), b0)


# --- PnL prices -------------------------------------------------------------------------------------------
def test_long_pnl_uses_min_price_short_pnl_uses_max(gmx: tuple[GmxFixture, GmxSeedResult]) -> None:
    fx, seeded = gmx
    for p in [next(q for q in seeded.positions if q.is_long), next(q for q in seeded.positions if not q.is_long)]:
        prices = fx.market_prices(p.market)
        info = fx.position_info(p.key, prices)
        size, tokens = info[1][1][0], info[1][1][1]
        assert prices[0][0] < prices[0][1]
        expected = tokens * prices[0][0] - size if p.is_long else size - tokens * prices[0][1]
        assert info[4] == info[5] == expected


# --- the liquidation rule -----------------------------------------------------------------------------------
def test_is_position_liquidatable_flips_where_the_rule_says(gmx: tuple[GmxFixture, GmxSeedResult]) -> None:
    fx, seeded = gmx
    picked = [
        next(p for p in seeded.positions if p.is_long and p.market == "ETH/USD" and p.collateral == "WETH" and p.size_usd > 20_000 * FLOAT_PRECISION),
        next(p for p in seeded.positions if not p.is_long and p.market == "BTC/USD" and p.collateral == "USDC" and p.size_usd > 20_000 * FLOAT_PRECISION),
    ]
    block = fx.chain.block_number()
    for p in picked:
        m = fx.markets[p.market]
        ref = fx.ref_usd()[m.index]
        verdicts = set()
        for k in range(-40, 41, 2):
            prices = fx.market_prices(m, index_usd=ref * (1 + Decimal(k) / 100))
            liq, reason, (remaining, min_usd, for_lev) = fx.is_liquidatable(p.key, prices, block)
            py_remaining, threshold = remaining_collateral_stored(fx, p.key, prices, block)
            assert remaining == py_remaining
            assert liq == (py_remaining < threshold)
            if liq:
                assert reason in ("min collateral", "< 0", "min collateral for leverage")
            verdicts.add(liq)
        assert verdicts == {True, False}, p


def test_near_liquidation_seeds_and_liquidate_call(snap: DevChain, gmx: tuple[GmxFixture, GmxSeedResult]) -> None:
    fx, seeded = gmx
    near = seeded.near_liquidation
    assert len(near) >= 20
    verdicts = {p.key: fx.is_liquidatable(p.key, fx.market_prices(p.market))[0] for p in near}
    assert any(verdicts.values()) and not all(verdicts.values())
    # liquidatePosition updates funding / borrowing first: it agrees with the rule on pending fees
    for p in near[:10]:
        prices = fx.market_prices(p.market)
        ok, _ = fx.can_liquidate(p.key, prices)
        info = fx.position_info(p.key, prices)
        cprice = prices[1] if p.collateral == fx.markets[p.market].long else prices[2]
        remaining = info[1][1][2] * cprice[0] + info[4] - info[2][15] * cprice[0]
        threshold = max(apply_factor(p.size_usd, fx.markets[p.market].spec.min_collateral_factor_for_liquidation), FLOAT_PRECISION)
        assert ok == (remaining < threshold)
    p = next(q for q in near if verdicts[q.key])
    receipt = fx.do(fx.liquidate_tx(p.key, fx.market_prices(p.market)))[0]
    [(topics, data)] = _event_logs(fx, receipt)
    assert topics[1] == POSITION_DECREASE_HASH and dict(data[2][1][0])["orderType"] == 7
    assert fx.position_count() == POSITIONS - 1


def test_a_position_only_fees_push_over(snap: DevChain, gmx: tuple[GmxFixture, GmxSeedResult]) -> None:
    fx, _ = gmx
    chain = snap
    m = fx.markets["ETH/USD"]
    # let a position sit just above the liquidation threshold (validation then uses the same factor)
    fx.set_uint(min_collateral_factor_key(m.market_token), m.spec.min_collateral_factor_for_liquidation)
    account = seeded_address(SEED, -4)
    size = 200_000 * FLOAT_PRECISION
    fx.do(fx.increase_tx(account, m, "USDC", True, 20_000 * 10**6, size, fx.market_prices(m)))
    key = position_key(account, m.market_token, fx.tokens["USDC"].address, True)
    prices = fx.market_prices(m)
    remaining, threshold = remaining_collateral_stored(fx, key, prices, chain.block_number())
    usdc_min = prices[2][0]
    excess = (remaining - threshold - 40 * FLOAT_PRECISION) // usdc_min  # leave $40 above the threshold
    fx.do(fx.decrease_tx(account, m, "USDC", True, excess, 0, prices))
    assert not fx.is_liquidatable(key, prices)[0]
    assert not fx.can_liquidate(key, prices)[0]
    chain.increase_time(3 * 24 * 3600)
    chain.mine()
    block = chain.block_number()
    # the stored state has not moved: the Reader view still says no, and agrees with the rule on stored fees
    liq, _, (rem_view, _, _) = fx.is_liquidatable(key, prices, block)
    assert not liq and rem_view == remaining_collateral_stored(fx, key, prices, block)[0]
    # with pending fees (getPositionInfo) the rule says yes, and so does the liquidation call
    info = fx.position_info(key, prices, block)
    pending_remaining = info[1][1][2] * usdc_min + info[4] - info[2][15] * usdc_min
    assert pending_remaining < threshold
    ok, _ = fx.can_liquidate(key, prices, block)
    assert ok
