"""The Compound V3 adapter agrees with the Comet contract at the same block.

Two verdicts per account: what the ``isLiquidatable`` view says (stored borrow index) and whether
``absorb`` would succeed (it accrues first). After time passes without a transaction they differ, and
the adapter must report both exactly.
"""

from __future__ import annotations

from indexer.pipeline import run_snapshot
from tests.conftest import Comet, comet_settings

DAY = 86_400


def _check_block(comet: Comet, positions: list, block: int) -> list[str]:  # type: ignore[type-arg]
    fx, problems = comet.fixture, []
    for p in positions:
        view = fx.is_liquidatable(p.account, block)
        if (p.details["view_is_liquidatable"] == "true") != view:
            problems.append(f"{p.account}: view {view}, indexer {p.details['view_is_liquidatable']}")
        if p.details["base_balance"].startswith("-"):
            ok, reason = fx.can_absorb(comet.absorber, [p.account], block)
            if ok != p.liquidatable:
                problems.append(f"{p.account}: absorb {ok} ({reason}), indexer {p.liquidatable}")
            debt = next(leg for leg in p.legs if leg.side == "debt")
            if debt.amount != fx.borrow_balance(p.account, block):
                problems.append(f"{p.account}: debt {debt.amount}, borrowBalanceOf {fx.borrow_balance(p.account, block)}")
        elif p.liquidatable:
            problems.append(f"{p.account}: no debt but liquidatable")
    return problems


def test_both_verdicts_equal_the_contract_for_every_account_before_and_after_accrual(comet: Comet, anvil, rpc, engine, db_url, clean_chain) -> None:  # type: ignore[no-untyped-def]
    fx = comet.fixture
    settings, proto = comet_settings(anvil, fx, db_url)
    fx.set_price("WETH", fx.price("WETH") * 97 // 100)  # a small drop: some near-limit accounts cross
    first = run_snapshot(settings, proto, engine, rpc=rpc)
    positions = list(first.snapshot.positions)
    assert len(positions) >= 200
    assert first.snapshot.rpc_requests <= 15, "a handful of batched requests, not one per account"
    assert not _check_block(comet, positions, first.snapshot.block.number)
    before = {p.account: p for p in positions}
    # Time passes without any transaction: the stored index stays, absorb would accrue.
    clean_chain.increase_time(45 * DAY)
    clean_chain.mine()
    later = run_snapshot(settings, proto, engine, rpc=rpc)
    positions = list(later.snapshot.positions)
    assert not _check_block(comet, positions, later.snapshot.block.number)
    interest_only = [p for p in positions if p.liquidatable and p.details["view_is_liquidatable"] == "false"]
    assert interest_only, "accounts that only accrued interest pushed over must show absorbable while the view says no"
    assert any(not before[p.account].liquidatable for p in interest_only), "some crossed during the 45 days"
    assert any(p.liquidatable and p.details["view_is_liquidatable"] == "true" for p in positions)
    assert any(not p.liquidatable and p.details["base_balance"].startswith("-") for p in positions)
    # Lenders are positions too, with their accrued supply and no risk.
    lender = next(p for p in positions if p.legs and p.legs[-1].side == "supply")
    assert lender.legs[-1].amount == fx.balance(lender.account, later.snapshot.block.number)
    assert lender.health_factor == 2**256 - 1 and lender.nlv_usd > 0


def test_absorb_paused_means_not_absorbable(comet: Comet, anvil, rpc, engine, db_url, clean_chain) -> None:  # type: ignore[no-untyped-def]
    fx = comet.fixture
    settings, proto = comet_settings(anvil, fx, db_url)
    fx.set_price("WETH", fx.price("WETH") // 2)
    fx.do(fx.pause_tx(absorb=True))
    snap = run_snapshot(settings, proto, engine, rpc=rpc).snapshot
    under = [p for p in snap.positions if p.details["verdict"] == "absorb paused"]
    assert under and not any(p.liquidatable for p in snap.positions)
    ok, reason = fx.can_absorb(comet.absorber, [under[0].account], snap.block.number)
    assert not ok and "Paused" in reason


def test_liquidation_price_is_one_unit_from_absorbable(comet: Comet, anvil, rpc, engine, db_url, clean_chain) -> None:  # type: ignore[no-untyped-def]
    fx, chain = comet.fixture, clean_chain
    settings, proto = comet_settings(anvil, fx, db_url)
    base = run_snapshot(settings, proto, engine, rpc=rpc).snapshot
    # A healthy borrower holding WETH only; its WETH liquidation price at the snapshot's block.
    pos = next(
        p
        for p in base.positions
        if not p.liquidatable and p.details["base_balance"].startswith("-") and [leg.symbol for leg in p.legs if leg.side == "collateral"] == ["WETH"]
    )
    # Pin the next blocks' timestamp to the snapshot's, so that no interest accrues between them.
    at = base.block.timestamp + 1
    undo = chain.snapshot()
    chain.set_next_timestamp(at)
    fx.set_price("WETH", fx.price("WETH", base.block.number))  # same price, a new block at ``at``
    probe = run_snapshot(settings, proto, engine, rpc=rpc).snapshot
    threshold = int(next(p for p in probe.positions if p.account == pos.account).details["liquidation_price_usd_1e8.WETH"])
    chain.revert(undo)
    for price, expected in ((threshold, True), (threshold + 1, False)):
        undo = chain.snapshot()
        chain.set_next_timestamp(at)
        fx.set_price("WETH", price)
        block = chain.block_number()
        got = next(p for p in run_snapshot(settings, proto, engine, rpc=rpc).snapshot.positions if p.account == pos.account)
        ok, reason = fx.can_absorb(comet.absorber, [pos.account], block)
        assert (got.liquidatable, ok) == (expected, expected), f"WETH at {price}: indexer {got.liquidatable}, absorb {ok} ({reason})"
        chain.revert(undo)
