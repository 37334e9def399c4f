"""The Synthetix PerpsV2 adapter agrees with the market's own views at the same block.

Verdict = ``canLiquidate``, NLV = ``remainingMargin`` to the unit, for every seeded position, before and
after funding accrues; funding alone must push some over; the reported liquidation price flips the verdict
one wei either side.
"""

from __future__ import annotations

from dataclasses import replace

from indexer.chain.multicall import Multicaller
from indexer.pipeline import run_snapshot
from indexer.protocols.registry import make_adapter
from indexer.protocols.synthetix_perps_v2 import SynthetixPerpsV2Adapter
from indexer.risk.synthetix_perps import PerpsPosition, exact_liquidation_price
from tests.conftest import Perps, perps_settings

DAY = 86_400


def _mismatches(perps: Perps, positions: list, block: int) -> list[str]:  # type: ignore[type-arg]
    fx, out = perps.fixture, []
    for p in positions:
        market = next(k for k, m in fx.markets.items() if m.address == p.market)
        can = fx.can_liquidate(p.account, market, block)
        margin, _ = fx.remaining_margin(p.account, market, block)
        if can != p.liquidatable or margin != p.nlv_usd:
            out.append(f"{p.account} {market}: canLiquidate {can} vs {p.liquidatable}, remainingMargin {margin} vs {p.nlv_usd}")
    return out


def test_verdict_and_nlv_equal_the_market_before_and_after_funding(perps: Perps, anvil, rpc, engine, db_url, clean_chain) -> None:  # type: ignore[no-untyped-def]
    settings, proto = perps_settings(anvil, perps.fixture, db_url)
    first = run_snapshot(settings, proto, engine, rpc=rpc).snapshot
    assert len(first.positions) >= 200
    assert {leg.side for p in first.positions for leg in p.legs} >= {"long", "short"}
    assert first.rpc_requests <= 12, "a handful of batched requests, not one per position"
    assert not _mismatches(perps, list(first.positions), first.block.number)
    # Funding accrues with no transaction and no price change.
    clean_chain.increase_time(2 * DAY)
    clean_chain.mine()
    later = run_snapshot(settings, proto, engine, rpc=rpc).snapshot
    assert not _mismatches(perps, list(later.positions), later.block.number)
    before = {p.key: p for p in first.positions}
    funding_only = [p for p in later.positions if p.liquidatable and not before[p.key].liquidatable]
    assert funding_only, "funding alone must push some positions over"
    assert any(int(p.details["accrued_funding"]) > 0 for p in later.positions)
    assert any(int(p.details["accrued_funding"]) < 0 for p in later.positions)


def test_liquidation_price_flips_the_verdict_one_wei_either_side(perps: Perps, anvil, rpc, engine, db_url, clean_chain) -> None:  # type: ignore[no-untyped-def]
    fx, chain = perps.fixture, clean_chain
    settings, proto = perps_settings(anvil, fx, db_url)
    base = run_snapshot(settings, proto, engine, rpc=rpc).snapshot
    adapter = make_adapter(proto, rpc, Multicaller(rpc))
    assert isinstance(adapter, SynthetixPerpsV2Adapter)
    chosen = []
    for side in ("long", "short"):
        for market in fx.markets.values():
            chosen += [p for p in base.positions if p.market == market.address and not p.liquidatable and p.legs[-1].side == side][:1]
    assert len(chosen) == 2 * len(fx.markets)
    at = base.block.timestamp + 50
    state = adapter.load_market(base.block)
    for pos in chosen:
        market_key = next(k for k, m in fx.markets.items() if m.address == pos.market)
        m = replace(state.markets[pos.market], block_timestamp=at)
        raw = fx.position(pos.account, market_key, base.block.number)
        entry = int(fx.call(market_key, "fundingSequence", raw.last_funding_index, block=base.block.number)[0])
        p = PerpsPosition(pos.account, raw.id, raw.last_funding_index, raw.margin, raw.last_price, raw.size, entry)
        threshold = exact_liquidation_price(m, p)
        assert threshold is not None
        away = 1 if raw.size > 0 else -1  # one wei towards safety
        for price, expected in ((threshold, True), (threshold + away, False)):
            undo = chain.snapshot()
            chain.set_next_timestamp(at)
            fx.set_price(market_key, price)
            block = chain.block_number()
            snap = run_snapshot(settings, proto, engine, rpc=rpc).snapshot
            assert snap.block.timestamp == at
            got = next(q for q in snap.positions if q.key == pos.key)
            can = fx.can_liquidate(pos.account, market_key, block)
            assert (got.liquidatable, can) == (expected, expected), f"{market_key} {pos.account} at {price}: indexer {got.liquidatable}, canLiquidate {can}"
            assert got.details["liquidation_price"] == str(threshold) if expected else True
            flag_ok, _ = fx.try_tx(fx.flag_tx(perps.keeper, market_key, pos.account), block)
            assert flag_ok == expected, "flagPosition succeeds exactly when the indexer says liquidatable"
            chain.revert(undo)
