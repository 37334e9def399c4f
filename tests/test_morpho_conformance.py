"""The Morpho Blue adapter's verdict equals the outcome of an eth_call of ``liquidate`` at the same block.

``liquidate`` accrues interest before its health check, so positions that only accrued interest made
unhealthy must be caught; positions one oracle-price unit either side of the threshold must agree too.
"""

from __future__ import annotations

from dataclasses import replace

from indexer.chain.multicall import Multicaller
from indexer.pipeline import run_snapshot
from indexer.protocols.morpho_blue import MorphoBlueAdapter
from indexer.protocols.registry import make_adapter
from indexer.risk.morpho import MorphoPosition, accrued, liquidation_price
from tests.conftest import Morpho, morpho_settings

DAY = 86_400


def _mismatches(morpho: Morpho, positions: list, block: int) -> list[str]:  # type: ignore[type-arg]
    out = []
    for p in positions:
        ok, reason = morpho.fixture.can_liquidate(morpho.liquidator, bytes.fromhex(p.market[2:]), p.account, block)
        if ok != p.liquidatable:
            out.append(f"{p.account} in {p.market[:10]}: indexer {p.liquidatable}, liquidate {ok} ({reason})")
    return out


def test_verdict_equals_liquidate_for_every_position_after_interest_accrues(morpho: Morpho, anvil, rpc, engine, db_url, clean_chain) -> None:  # type: ignore[no-untyped-def]
    settings, proto = morpho_settings(anvil, morpho.fixture, db_url)
    first = run_snapshot(settings, proto, engine, rpc=rpc)
    assert len(first.snapshot.positions) >= 200
    assert first.snapshot.rpc_requests <= 12, "a handful of batched requests, not one per position"
    assert {p.market for p in first.snapshot.positions} == {"0x" + m.id.hex() for m in morpho.fixture.markets.values()}
    assert not _mismatches(morpho, list(first.snapshot.positions), first.snapshot.block.number)
    # Days pass without a transaction: stored totals stay, debt grows only through accrual.
    clean_chain.increase_time(6 * DAY)
    clean_chain.mine()
    later = run_snapshot(settings, proto, engine, rpc=rpc)
    positions = list(later.snapshot.positions)
    assert len(positions) >= 200
    assert not _mismatches(morpho, positions, later.snapshot.block.number)
    by_key = {p.key: p for p in first.snapshot.positions}
    interest_only = [p for p in positions if p.liquidatable and p.details["unhealthy_on_stored_totals"] == "false" and not by_key[p.key].liquidatable]
    assert interest_only, "some positions must have become liquidatable through accrued interest alone"
    assert any(not p.liquidatable and p.details["borrowed_assets"] != "0" for p in positions), "healthy borrowers must remain"
    # Several markets of one address are separate positions.
    accounts = [p.account for p in positions]
    assert len(set(accounts)) < len(accounts)


def test_one_price_unit_either_side_of_the_threshold(morpho: Morpho, anvil, rpc, engine, db_url, clean_chain) -> None:  # type: ignore[no-untyped-def]
    fx, chain = morpho.fixture, clean_chain
    settings, proto = morpho_settings(anvil, fx, db_url)
    base = run_snapshot(settings, proto, engine, rpc=rpc).snapshot
    # One borrower per market (loan/collateral decimals 6/8, 6/18, 18/18, 18/8), healthy now.
    chosen = {}
    for p in base.positions:
        if p.details["borrowed_assets"] != "0" and p.collateral_usd >= 0 and not p.liquidatable and p.market not in chosen:
            chosen[p.market] = p
    assert len(chosen) == len(fx.markets)
    adapter = make_adapter(proto, rpc, Multicaller(rpc))
    assert isinstance(adapter, MorphoBlueAdapter)
    for market_id, pos in chosen.items():
        # The threshold price for the next block's timestamp, from the market state at the snapshot block.
        at = base.block.timestamp + 100
        snap = adapter.load_market(base.block)
        adapter.read_markets(snap, [market_id])
        state = snap.markets[market_id].state
        on_chain = fx.position(bytes.fromhex(market_id[2:]), pos.account, base.block.number)
        mp = MorphoPosition(pos.account, on_chain.supply_shares, on_chain.borrow_shares, on_chain.collateral)
        threshold = liquidation_price(accrued(replace(state, block_timestamp=at)), mp)
        assert threshold is not None and threshold > 0
        for price, expected in ((threshold, True), (threshold + 1, False)):
            undo = chain.snapshot()
            chain.set_next_timestamp(at)
            fx.set_price(bytes.fromhex(market_id[2:]), price)
            block = chain.block_number()
            result = run_snapshot(settings, proto, engine, rpc=rpc, at_block=block)
            assert result.snapshot.block.timestamp == at
            got = next(p for p in result.snapshot.positions if p.key == pos.key)
            ok, reason = fx.can_liquidate(morpho.liquidator, bytes.fromhex(market_id[2:]), pos.account, block)
            assert (got.liquidatable, ok) == (expected, expected), f"{market_id[:10]} at price {price}: indexer {got.liquidatable}, liquidate {ok} ({reason})"
            assert got.details["liquidation_oracle_price"] == str(threshold)
            chain.revert(undo)


def test_positions_carry_market_parameters_and_incentive(morpho: Morpho, anvil, rpc, engine, db_url, clean_chain) -> None:  # type: ignore[no-untyped-def]
    settings, proto = morpho_settings(anvil, morpho.fixture, db_url)
    snap = run_snapshot(settings, proto, engine, rpc=rpc).snapshot
    lltvs = {"0x" + m.id.hex(): m.spec.lltv for m in morpho.fixture.markets.values()}
    for p in snap.positions:
        assert int(p.details["lltv"]) == lltvs[p.market]
        assert p.liquidation_threshold_bps == lltvs[p.market] // 10**14
    by_lltv = {int(p.details["lltv"]): int(p.details["liquidation_incentive_factor"]) for p in snap.positions}
    assert by_lltv[86 * 10**16] == 1043841336116910229
    # One oracle price per market is stored with the run, keyed by market.
    assert {pr.market for pr in snap.prices} == set(lltvs)
