"""The Morpho Blue fixture behaves like Morpho Blue v1: ids, storage layout, interest, share rounding,
health check and liquidation, each checked against integers recomputed here from the library formulas."""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import pytest
from eth_abi import decode
from eth_utils import keccak, to_checksum_address

from indexer.chain.abi import load_abi
from indexer.constants import WAD
from indexer.devnet.chain import DevChain, Tx
from indexer.devnet.morpho_market import (
    DeployedMorphoMarket,
    MorphoFixture,
    MorphoMarketSpec,
    MorphoSeedResult,
    accrue_interest,
    add_market,
    deploy_morpho,
    is_healthy,
    max_borrow,
    seed_morpho_positions,
)
from indexer.devnet.seed import seeded_address
from indexer.risk.morpho import (
    liquidation_incentive_factor,
    mul_div_down,
    mul_div_up,
    to_assets_down,
    to_assets_up,
    to_shares_down,
    to_shares_up,
    w_div_up,
    w_mul_down,
)

SEED = 4242
POSITIONS = 40
MORPHO_ABI = load_abi("MorphoBlue")
MAX = 2**256 - 1


@dataclass
class Deployed:
    fx: MorphoFixture
    seeded: MorphoSeedResult
    liquidator: str

    @property
    def chain(self) -> DevChain:
        return self.fx.chain


@pytest.fixture(scope="module")
def morpho(devchain: DevChain) -> Deployed:
    fx = deploy_morpho(devchain)
    seeded = seed_morpho_positions(fx, POSITIONS, random.Random(SEED), SEED)
    liquidator = seeded_address(SEED, 10**9)
    fx.fund_liquidator(liquidator)
    return Deployed(fx, seeded, liquidator)


@pytest.fixture()
def clean(devchain: DevChain, morpho: Deployed) -> Iterator[Deployed]:
    snap = devchain.snapshot()
    yield morpho
    devchain.revert(snap)


# --- helpers ---------------------------------------------------------------------------------------
def receipt_block(receipt: dict[str, Any]) -> int:
    return int(str(receipt["blockNumber"]), 16)


def event_values(receipt: dict[str, Any], name: str) -> tuple[list[str], tuple[Any, ...]]:
    """(topics, decoded data) of the single ``name`` log of a receipt, decoded with abis/MorphoBlue.json."""
    ev = MORPHO_ABI.event(name)
    logs = [lg for lg in receipt["logs"] if lg["topics"][0] == ev.topic0]  # type: ignore[index, union-attr]
    assert len(logs) == 1, f"{len(logs)} {name} logs"
    data = bytes.fromhex(logs[0]["data"][2:])
    return list(logs[0]["topics"]), tuple(decode([t for _, t in ev.data], data))


def topic_address(topic: str) -> str:
    return to_checksum_address("0x" + topic[-40:])


def new_borrower(fx: MorphoFixture, m: DeployedMorphoMarket, tag: int, usage: Fraction, whole_collateral: int = 10) -> str:
    """A fresh account with ``whole_collateral`` collateral tokens borrowing ``usage`` of its max borrow (after
    a test lender adds liquidity)."""
    chain = fx.chain
    user, lender = seeded_address(SEED + 1, tag), seeded_address(SEED + 2, tag)
    chain.fund([user, lender])
    collateral = whole_collateral * 10 ** fx.decimals(m.spec.collateral_symbol)
    limit = max_borrow(collateral, fx.price(m), m.spec.lltv)
    fx.do(fx.supply_txs(lender, m, 2 * limit + 10**6))
    fx.do(fx.supply_collateral_txs(user, m, collateral))
    fx.do(fx.borrow_tx(user, m, assets=int(limit * usage)))
    return user


# --- identity and storage ----------------------------------------------------------------------------
def test_market_id_is_keccak_of_the_abi_encoded_params(morpho: Deployed) -> None:
    fx, chain = morpho.fx, morpho.chain
    create = MORPHO_ABI.event("CreateMarket")
    logs = chain.rpc.get_logs([fx.morpho], [create.topic0], 0, chain.block_number())
    created = {bytes.fromhex(lg["topics"][1][2:]): lg for lg in logs}
    assert len(fx.markets) == 5 and set(created) == {m.id for m in fx.markets.values()}
    for m in fx.markets.values():
        p = m.params
        encoded = b"".join(bytes.fromhex(a[2:]).rjust(32, b"\0") for a in (p.loan_token, p.collateral_token, p.oracle, p.irm))
        encoded += p.lltv.to_bytes(32, "big")
        assert len(encoded) == 160
        assert m.id == keccak(encoded)
        on_chain = chain.call("Morpho", fx.morpho, "idToMarketParams", m.id)
        assert (*(to_checksum_address(a) for a in on_chain[:4]), on_chain[4]) == p.as_tuple()
        (logged,) = decode(["(address,address,address,address,uint256)"], bytes.fromhex(created[m.id]["data"][2:]))
        assert (*(to_checksum_address(a) for a in logged[:4]), logged[4]) == p.as_tuple()
        assert chain.call("Morpho", fx.morpho, "isLltvEnabled", p.lltv) == (True,)
        assert chain.call("Morpho", fx.morpho, "isIrmEnabled", p.irm) == (True,)
    # Governance-style LLTVs, and 6-, 8- and 18-decimal tokens on both sides.
    assert sorted(m.spec.lltv for m in fx.markets.values()) == [625 * 10**15, 77 * 10**16, 86 * 10**16, 915 * 10**15, 945 * 10**15]
    assert {fx.decimals(m.spec.loan_symbol) for m in fx.markets.values()} == {6, 18}
    assert {fx.decimals(m.spec.collateral_symbol) for m in fx.markets.values()} == {8, 18}


def test_storage_layout_matches_morpho_storage_lib(morpho: Deployed) -> None:
    """extSloads reads the slots MorphoStorageLib computes: owner 0, feeRecipient 1, position 2, market 3."""
    fx, chain = morpho.fx, morpho.chain
    market_id, user = next(p for p in morpho.seeded.positions if p[1] in morpho.seeded.borrowers)
    m = fx.get_market(market_id)
    market_slot = int.from_bytes(keccak(market_id + (3).to_bytes(32, "big")), "big")
    position_slot = int.from_bytes(keccak(bytes.fromhex(user[2:]).rjust(32, b"\0") + keccak(market_id + (2).to_bytes(32, "big"))), "big")
    slots = [0, 1, market_slot, market_slot + 1, market_slot + 2, position_slot, position_slot + 1]
    (words,) = chain.call("Morpho", fx.morpho, "extSloads", [s.to_bytes(32, "big") for s in slots])
    w = [int.from_bytes(x, "big") for x in words]
    low, high = (lambda v: v & (2**128 - 1)), (lambda v: v >> 128)
    st, pos = fx.market_state(m), fx.position(m, user)
    assert to_checksum_address(w[0].to_bytes(20, "big")) == fx.owner
    assert to_checksum_address(w[1].to_bytes(20, "big")) == fx.fee_recipient
    assert (low(w[2]), high(w[2]), low(w[3]), high(w[3]), low(w[4]), high(w[4])) == st.as_tuple()
    assert (w[5], low(w[6]), high(w[6])) == (pos.supply_shares, pos.borrow_shares, pos.collateral)


# --- interest --------------------------------------------------------------------------------------
def test_accrue_interest_adds_exactly_the_taylor_interest(clean: Deployed) -> None:
    fx, chain = clean.fx, clean.chain
    for m in fx.markets.values():
        before = chain.block_number()
        st = fx.market_state(m, before)
        fee_shares_before = fx.position(m, fx.fee_recipient, before).supply_shares
        rate = fx.borrow_rate_view(m, st, before)
        utilization = st.total_borrow_assets * WAD // st.total_supply_assets
        assert rate == m.spec.base_rate + m.spec.slope * utilization // WAD  # the linear IRM
        assert 60 * 10**16 <= utilization <= 90 * 10**16 + 10**15  # seeded utilization (+ accrual since)
        chain.increase_time(3 * 86400 + 17)
        receipt = fx.do(fx.accrue_interest_tx(m))[0]
        n = receipt_block(receipt)
        elapsed = chain.block_timestamp(n) - st.last_update
        # MathLib.wTaylorCompounded and wMulDown, written out.
        first = rate * elapsed
        second = first * first // (2 * WAD)
        third = second * first // (3 * WAD)
        interest = st.total_borrow_assets * (first + second + third) // WAD
        fee_amount = interest * st.fee // WAD
        fee_shares = 0 if st.fee == 0 else fee_amount * (st.total_supply_shares + 10**6) // (st.total_supply_assets + interest - fee_amount + 1)
        after = fx.market_state(m, n)
        assert after.total_borrow_assets == st.total_borrow_assets + interest
        assert after.total_supply_assets == st.total_supply_assets + interest
        assert after.total_supply_shares == st.total_supply_shares + fee_shares
        assert after.total_borrow_shares == st.total_borrow_shares
        assert after.last_update == chain.block_timestamp(n)
        assert fx.position(m, fx.fee_recipient, n).supply_shares == fee_shares_before + fee_shares
        assert (st.fee != 0) == (fee_shares > 0)
        topics, values = event_values(receipt, "AccrueInterest")
        assert bytes.fromhex(topics[1][2:]) == m.id
        assert values == (rate, interest, fee_shares)
        assert interest * 1000 > st.total_borrow_assets, "three days should move debt by more than 0.1 %"
        assert accrue_interest(st, rate, chain.block_timestamp(n)).state == after


# --- shares <-> assets ------------------------------------------------------------------------------
def test_share_conversions_round_as_shares_math_lib(clean: Deployed) -> None:
    """Each entry point converts with the library's rounding: debt rounds up, what users receive rounds down."""
    fx, chain = clean.fx, clean.chain
    m = fx.markets["WETH/USDC-91.5"]  # fee market: totals are far from a round share price
    user = new_borrower(fx, m, 1, Fraction(1, 2))
    lender = seeded_address(SEED + 2, 1)
    usdc = fx.tokens["USDC"]
    fx.do([Tx(user, usdc, "TestERC20", "mint", (user, 10**15)), Tx(user, usdc, "TestERC20", "approve", (fx.morpho, MAX))])
    chain.increase_time(86400)
    n = receipt_block(fx.do(fx.accrue_interest_tx(m))[0])  # interest accrued in block n: eth_calls at n accrue nothing
    st = fx.market_state(m, n)
    assert st.last_update == chain.block_timestamp(n)
    ba, bs, sa, ss = st.total_borrow_assets, st.total_borrow_shares, st.total_supply_assets, st.total_supply_shares
    p = m.params.as_tuple()
    pos = fx.position(m, user, n)

    def call(fn: str, *args: Any, sender: str = user) -> tuple[int, int]:
        a, s = chain.call("Morpho", fx.morpho, fn, p, *args, sender=sender, block=n)
        return int(a), int(s)

    differs = 0
    for amount in (1, 3, 999_999, 10**9 + 7, 123_456_789):
        shares = amount * 10**6 + 12_345
        assert call("borrow", amount, 0, user, user) == (amount, to_shares_up(amount, ba, bs))
        assert call("borrow", 0, shares, user, user) == (to_assets_down(shares, ba, bs), shares)
        assert call("repay", amount, 0, user, b"") == (amount, to_shares_down(amount, ba, bs))
        assert call("repay", 0, shares, user, b"") == (to_assets_up(shares, ba, bs), shares)
        assert call("supply", amount, 0, user, b"") == (amount, to_shares_down(amount, sa, ss))
        assert call("supply", 0, shares, user, b"") == (to_assets_up(shares, sa, ss), shares)
        assert call("withdraw", amount, 0, lender, lender, sender=lender) == (amount, to_shares_up(amount, sa, ss))
        assert call("withdraw", 0, shares, lender, lender, sender=lender) == (to_assets_down(shares, sa, ss), shares)
        differs += to_assets_up(shares, ba, bs) != to_assets_down(shares, ba, bs)
        differs += to_shares_up(amount, sa, ss) != to_shares_down(amount, sa, ss)
    assert differs >= 8, "the amounts should exercise both rounding directions"
    # Repaying all shares costs toAssetsUp(borrowShares): the position's debt as _isHealthy counts it.
    assert call("repay", 0, pos.borrow_shares, user, b"") == (to_assets_up(pos.borrow_shares, ba, bs), pos.borrow_shares)


def test_borrow_health_check_uses_assets_rounded_up(clean: Deployed) -> None:
    """At the borrow limit, the fixture and the integer formula agree share by share."""
    fx, chain = clean.fx, clean.chain
    m = fx.markets["WBTC/USDC-86"]
    user = new_borrower(fx, m, 2, Fraction(1, 3), whole_collateral=2)
    chain.increase_time(3600)
    n = receipt_block(fx.do(fx.accrue_interest_tx(m))[0])
    st, pos, price = fx.market_state(m, n), fx.position(m, user, n), fx.price(m, n)
    limit = max_borrow(pos.collateral, price, m.spec.lltv)

    def healthy_after(extra: int) -> bool:
        assets = to_assets_down(extra, st.total_borrow_assets, st.total_borrow_shares)
        ba, bs = st.total_borrow_assets + assets, st.total_borrow_shares + extra
        return to_assets_up(pos.borrow_shares + extra, ba, bs) <= limit and ba <= st.total_supply_assets

    lo, hi = 0, 10**30
    while lo < hi:  # largest number of extra shares that keeps the position healthy
        mid = (lo + hi + 1) // 2
        lo, hi = (mid, hi) if healthy_after(mid) else (lo, mid - 1)
    for extra in (lo - 1, lo, lo + 1, lo + 2):
        ok, reason = chain.try_call("Morpho", fx.morpho, "borrow", m.params.as_tuple(), 0, extra, user, user, sender=user, block=n)
        assert ok == healthy_after(extra), f"{extra} extra shares: fixture {ok} ({reason})"
        if not ok:
            assert "insufficient collateral" in reason
    assert healthy_after(lo) and not healthy_after(lo + 1)


# --- liquidation -----------------------------------------------------------------------------------
def _min_healthy_price(collateral: int, borrowed: int, lltv: int) -> int:
    """Smallest oracle price with collateral.mulDivDown(price, 1e36).wMulDown(lltv) >= borrowed."""
    lo, hi = 0, 10**60
    while lo < hi:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if max_borrow(collateral, mid, lltv) >= borrowed else (mid + 1, hi)
    return lo


def test_liquidate_reverts_on_healthy_and_succeeds_on_unhealthy_at_the_price_boundary(clean: Deployed) -> None:
    """``liquidate`` accrues interest first; at each timestamp the boundary price of the accrued debt decides."""
    fx, chain = clean.fx, clean.chain
    for label in ("WBTC/USDC-86", "wstETH/WETH-94.5"):
        m = fx.markets[label]
        market_id, user = next(p for p in clean.seeded.positions if p[0] == m.id and fx.position(m, p[1]).borrow_shares > 0)
        n = chain.block_number()
        st, pos = fx.market_state(m, n), fx.position(m, user, n)
        ok, reason = fx.can_liquidate(clean.liquidator, m, user, n)
        assert not ok and "position is healthy" in reason
        rate = fx.borrow_rate_view(m, st, n)
        ts = chain.block_timestamp(n)
        for step, liquidatable in ((600, True), (601, False), (602, True)):
            accrued = accrue_interest(st, rate, ts + step).state
            borrowed = to_assets_up(pos.borrow_shares, accrued.total_borrow_assets, accrued.total_borrow_shares)
            boundary = _min_healthy_price(pos.collateral, borrowed, m.spec.lltv)
            price = boundary - 1 if liquidatable else boundary
            chain.set_next_timestamp(ts + step)
            fx.set_price(m, price)  # mines the block at ts + step; the market itself is untouched
            b = chain.block_number()
            assert chain.block_timestamp(b) == ts + step and fx.market_state(m, b) == st
            assert is_healthy(pos, accrued, price, m.spec.lltv) is not liquidatable
            ok, reason = fx.can_liquidate(clean.liquidator, m, user, b)
            assert ok is liquidatable, f"{label} +{step}s at price {price}: {reason}"
            if not ok:
                assert "position is healthy" in reason


def test_interest_alone_makes_a_position_liquidatable(clean: Deployed) -> None:
    """Healthy on the stored totals, unhealthy once interest is accrued: liquidate (which accrues) goes through."""
    fx, chain = clean.fx, clean.chain
    m = fx.markets["WETH/USDC-91.5"]
    user = new_borrower(fx, m, 3, Fraction(998, 1000))
    n = chain.block_number()
    st, pos, price = fx.market_state(m, n), fx.position(m, user, n), fx.price(m, n)
    rate = fx.borrow_rate_view(m, st, n)
    lltv = m.spec.lltv
    assert is_healthy(pos, st, price, lltv)
    lo, hi = 1, 10**9  # smallest elapsed time after which the accrued debt exceeds the max borrow
    while lo < hi:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if not is_healthy(pos, accrue_interest(st, rate, st.last_update + mid).state, price, lltv) else (mid + 1, hi)
    assert st.last_update + lo - 1 > chain.block_timestamp(n), "the position must still be healthy now"
    assert lo < 7 * 86400, "0.2 % below the LLTV should be crossed within days"
    for elapsed, liquidatable in ((lo - 1, False), (lo, True)):
        chain.set_next_timestamp(st.last_update + elapsed)
        chain.mine()
        b = chain.block_number()
        assert fx.market_state(m, b) == st and is_healthy(pos, st, price, lltv), "stored totals say healthy"
        ok, reason = fx.can_liquidate(clean.liquidator, m, user, b)
        assert ok is liquidatable, f"elapsed {elapsed}: {reason}"


def test_liquidation_incentive_factor_and_liquidation_amounts(clean: Deployed) -> None:
    chain = clean.chain
    # A copy of the fixture: the extra market must not outlive this test's chain snapshot.
    fx = dataclasses.replace(clean.fx, markets=dict(clean.fx.markets), irms=dict(clean.fx.irms))
    capped = add_market(fx, MorphoMarketSpec("USDC", "WBTC", 385 * 10**15, "60000"))
    # The formula, independently: min(1.15, 1 / (1 - 0.3 * (1 - lltv))) with both divisions floored.
    for lltv in (385 * 10**15, 625 * 10**15, 77 * 10**16, 86 * 10**16, 915 * 10**15, 945 * 10**15, 965 * 10**15):
        expected = min(115 * 10**16, WAD * WAD // (WAD - 3 * 10**17 * (WAD - lltv) // WAD))
        assert liquidation_incentive_factor(lltv) == expected
        exact = 1 / (1 - Fraction(3, 10) * (1 - Fraction(lltv, WAD)))
        assert abs(Fraction(expected, WAD) - min(Fraction(115, 100), exact)) < Fraction(1, 10**17)
    assert liquidation_incentive_factor(86 * 10**16) == 1_043_841_336_116_910_229
    assert liquidation_incentive_factor(385 * 10**15) == 115 * 10**16  # capped

    for k, m in enumerate([capped, fx.markets["WBTC/USDC-86"], fx.markets["wstETH/WETH-94.5"], fx.markets["WBTC/WETH-62.5"]]):
        user = new_borrower(fx, m, 10 + k, Fraction(9, 10))
        crash = fx.price(m) * 8 // 10
        oracle_tx = Tx(fx.owner, m.params.oracle, "MorphoOracleMock", "setPrice", (crash,))
        chain.send_many([oracle_tx, fx.accrue_interest_tx(m)])  # same block: eth_calls at n accrue nothing more
        n = chain.block_number()
        st, pos = fx.market_state(m, n), fx.position(m, user, n)
        assert st.last_update == chain.block_timestamp(n) and not is_healthy(pos, st, crash, m.spec.lltv)
        lif = liquidation_incentive_factor(m.spec.lltv)
        ba, bs = st.total_borrow_assets, st.total_borrow_shares
        p = m.params.as_tuple()
        # Repaying shares seizes toAssetsDown(shares).wMulDown(LIF).mulDivDown(1e36, price).
        shares = pos.borrow_shares // 3
        seized, repaid = chain.call("Morpho", fx.morpho, "liquidate", p, user, 0, shares, b"", sender=clean.liquidator, block=n)
        assert seized == mul_div_down(w_mul_down(to_assets_down(shares, ba, bs), lif), 10**36, crash)
        assert repaid == to_assets_up(shares, ba, bs)
        # Seizing collateral repays toSharesUp(seized.mulDivUp(price, 1e36).wDivUp(LIF)) shares, paid toAssetsUp.
        want = pos.collateral // 10
        seized, repaid = chain.call("Morpho", fx.morpho, "liquidate", p, user, want, 0, b"", sender=clean.liquidator, block=n)
        repaid_shares = to_shares_up(w_div_up(mul_div_up(want, crash, 10**36), lif), ba, bs)
        assert (seized, repaid) == (want, to_assets_up(repaid_shares, ba, bs))


def test_liquidation_realizes_bad_debt(clean: Deployed) -> None:
    fx, chain = clean.fx, clean.chain
    m = fx.markets["WBTC/USDC-86"]
    user = new_borrower(fx, m, 20, Fraction(8, 10))
    crash = fx.price(m) // 10
    chain.send_many([Tx(fx.owner, m.params.oracle, "MorphoOracleMock", "setPrice", (crash,)), fx.accrue_interest_tx(m)])
    n = chain.block_number()
    st, pos = fx.market_state(m, n), fx.position(m, user, n)
    rate = fx.borrow_rate_view(m, st, n)
    receipt = fx.do(fx.liquidate_tx(clean.liquidator, m, user, seized_assets=pos.collateral))[0]
    b = receipt_block(receipt)
    acc = accrue_interest(st, rate, chain.block_timestamp(b)).state
    lif = liquidation_incentive_factor(m.spec.lltv)
    repaid_shares = to_shares_up(w_div_up(mul_div_up(pos.collateral, crash, 10**36), lif), acc.total_borrow_assets, acc.total_borrow_shares)
    repaid = to_assets_up(repaid_shares, acc.total_borrow_assets, acc.total_borrow_shares)
    ba, bs = max(0, acc.total_borrow_assets - repaid), acc.total_borrow_shares - repaid_shares
    bad_shares = pos.borrow_shares - repaid_shares
    bad_assets = min(ba, to_assets_up(bad_shares, ba, bs))
    assert bad_shares > 0 and bad_assets > 0
    after = fx.market_state(m, b)
    assert after.total_borrow_assets == ba - bad_assets
    assert after.total_borrow_shares == bs - bad_shares
    assert after.total_supply_assets == acc.total_supply_assets - bad_assets  # lenders absorb the loss
    assert fx.position(m, user, b) == type(pos)(0, 0, 0)
    topics, values = event_values(receipt, "Liquidate")
    assert bytes.fromhex(topics[1][2:]) == m.id
    assert (topic_address(topics[2]), topic_address(topics[3])) == (clean.liquidator, user)
    assert values == (repaid, repaid_shares, pos.collateral, bad_assets, bad_shares)
    assert fx.token_balance(m.spec.collateral_symbol, clean.liquidator, b) == pos.collateral


# --- seeding ---------------------------------------------------------------------------------------
def test_seeded_positions_are_healthy_varied_and_close_to_the_lltv(morpho: Deployed) -> None:
    fx, chain, seeded = morpho.fx, morpho.chain, morpho.seeded
    n = chain.block_number()
    ts = chain.block_timestamp(n)
    assert len(seeded.positions) == POSITIONS and len(set(seeded.positions)) == POSITIONS
    per_account: dict[str, int] = {}
    for _, account in seeded.positions:
        per_account[account] = per_account.get(account, 0) + 1
    assert max(per_account.values()) == 2 and len(per_account) < POSITIONS
    assert len({mid for mid, _ in seeded.positions}) >= 4
    assert seeded.near_threshold and set(seeded.near_threshold) <= set(seeded.positions)
    states = {m.id: fx.market_state(m, n) for m in fx.markets.values()}
    rates = {m.id: fx.borrow_rate_view(m, states[m.id], n) for m in fx.markets.values()}
    for m in fx.markets.values():
        assert Fraction(6, 10) <= states[m.id].utilization <= Fraction(901, 1000), m.label
    borrowers = set()
    for mid, account in seeded.positions:
        m = fx.get_market(mid)
        pos, price = fx.position(m, account, n), fx.price(m, n)
        assert pos.collateral > 0
        assert is_healthy(pos, accrue_interest(states[mid], rates[mid], ts).state, price, m.spec.lltv)
        if pos.borrow_shares:
            borrowers.add(account)
            debt = to_assets_up(pos.borrow_shares, states[mid].total_borrow_assets, states[mid].total_borrow_shares)
            usage = Fraction(debt, max_borrow(pos.collateral, price, m.spec.lltv))
            assert Fraction(19, 100) < usage <= Fraction(9991, 10000)
            if (mid, account) in seeded.near_threshold:
                assert usage >= Fraction(99, 100)
                later = accrue_interest(states[mid], rates[mid], ts + 30 * 86400).state
                assert not is_healthy(pos, later, price, m.spec.lltv), "a month of interest alone crosses the LLTV"
    assert borrowers == set(seeded.borrowers)
    for mid, account in seeded.positions[:5]:
        ok, reason = fx.can_liquidate(morpho.liquidator, mid, account, n)
        assert not ok and "position is healthy" in reason
