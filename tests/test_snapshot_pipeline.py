"""Snapshot runs against anvil: pinned blocks, idempotent re-runs, batched requests, discovery from checkpoints."""

from __future__ import annotations

import random

from sqlmodel import Session, func, select

from indexer.chain.rpc import RpcClient
from indexer.devnet.seed import seed_accounts, seeded_address
from indexer.pipeline import run_snapshot
from indexer.store.db import get_checkpoint, known_accounts
from indexer.store.models import PositionSnapshot, PriceSnapshot, SnapshotRun
from tests.conftest import Market, settings_for


def _count(engine, model) -> int:  # type: ignore[no-untyped-def]
    with Session(engine) as s:
        return int(s.exec(select(func.count()).select_from(model)).one())


def test_snapshot_keeps_block_b_after_prices_change(market_v35: Market, anvil, rpc, engine, db_url, clean_chain) -> None:  # type: ignore[no-untyped-def]
    fx = market_v35.fixture
    settings, proto = settings_for(anvil, fx, db_url)
    first = run_snapshot(settings, proto, engine, rpc=rpc)
    block_b = first.snapshot.block.number
    weth_b = fx.price("WETH", block_b)
    before = {p.account: p for p in first.snapshot.positions}

    fx.set_price("WETH", weth_b // 2)  # block B+1
    assert fx.price("WETH") == weth_b // 2

    # Re-reading block B after the change gives B's prices and verdicts, and stores nothing new.
    again = run_snapshot(settings, proto, engine, rpc=rpc, at_block=block_b)
    assert not again.created and again.run_id == first.run_id
    assert {p.account: p.health_factor for p in again.snapshot.positions} == {a: p.health_factor for a, p in before.items()}
    weth_token = fx.asset("WETH").token
    assert next(p.price for p in again.snapshot.prices if p.asset == weth_token) == weth_b

    later = run_snapshot(settings, proto, engine, rpc=rpc)
    assert later.created and later.snapshot.block.number > block_b
    assert next(p.price for p in later.snapshot.prices if p.asset == weth_token) == weth_b // 2
    changed = [p for p in later.snapshot.positions if p.health_factor != before[p.account].health_factor]
    assert changed, "halving WETH changes some health factors"

    with Session(engine) as s:
        stored_b = {
            row.account: row.health_factor
            for row in s.exec(select(PositionSnapshot).where(PositionSnapshot.run_id == first.run_id)).all()
        }
        stored_price = s.exec(select(PriceSnapshot).where(PriceSnapshot.run_id == first.run_id, PriceSnapshot.asset == weth_token)).one()
    assert stored_b == {a: p.health_factor for a, p in before.items()}
    assert stored_price.price == weth_b


def test_rerunning_a_block_adds_no_rows(market_v35: Market, anvil, rpc, engine, db_url, clean_chain) -> None:  # type: ignore[no-untyped-def]
    settings, proto = settings_for(anvil, market_v35.fixture, db_url)
    first = run_snapshot(settings, proto, engine, rpc=rpc)
    counts = [_count(engine, m) for m in (SnapshotRun, PositionSnapshot, PriceSnapshot)]
    assert counts[1] == len(first.snapshot.positions) > 200
    for _ in range(2):
        again = run_snapshot(settings, proto, engine, rpc=rpc, at_block=first.snapshot.block.number)
        assert not again.created
    assert [_count(engine, m) for m in (SnapshotRun, PositionSnapshot, PriceSnapshot)] == counts


def test_requests_grow_with_accounts_over_batch_size(market_v35: Market, anvil, engine, db_url, tmp_path, clean_chain) -> None:  # type: ignore[no-untyped-def]
    """A snapshot of N accounts costs O(N / batch) requests: counted at the RPC client."""
    from indexer.store.db import make_engine

    batch = 50
    costs = {}
    for n_extra in (0, 300):
        if n_extra:
            seed_accounts(market_v35.fixture, n_extra, random.Random(3), first_index=5000, seed=11)
        eng = make_engine(f"sqlite:///{tmp_path / f'req{n_extra}.db'}")
        settings, proto = settings_for(anvil, market_v35.fixture, str(eng.url), batch_size=batch)
        rpc = RpcClient(anvil.url)
        result = run_snapshot(settings, proto, eng, rpc=rpc)
        costs[n_extra] = (result.snapshot.accounts_read, result.snapshot.rpc_requests, rpc.request_count)
    (n0, r0, c0), (n1, r1, c1) = costs[0], costs[300]
    assert r0 == c0 and r1 == c1, "the run reports every request the client sent"
    assert n1 - n0 >= 300
    # Per account: 2 user calls + ~3 balance calls, batched by 50: ~0.1 request per account.
    assert r1 - r0 <= (n1 - n0) * 6 // batch + 4
    assert r1 < n1 / 4, "far fewer requests than accounts"


def test_discovery_from_checkpoint_finds_new_accounts_and_atoken_receivers(market_v35: Market, anvil, rpc, engine, db_url, clean_chain) -> None:  # type: ignore[no-untyped-def]
    fx = market_v35.fixture
    settings, proto = settings_for(anvil, fx, db_url)
    first = run_snapshot(settings, proto, engine, rpc=rpc)
    cp = get_checkpoint(engine, "local", proto.name)
    assert cp is not None and cp.block_number == first.snapshot.block.number and cp.block_hash == first.snapshot.block.hash

    # A holder that never calls the pool: it only receives aTokens.
    sender, receiver = seeded_address(77, 1), seeded_address(77, 2)
    clean_chain.fund([sender])
    fx.do(fx.supply_txs(sender, "WETH", 5 * 10**18))
    fx.do(fx.transfer_atoken_tx(sender, receiver, "WETH", 2 * 10**18))
    second = run_snapshot(settings, proto, engine, rpc=rpc)
    assert {k.account for k in second.snapshot.new_accounts} == {sender, receiver}, "only the logs after the checkpoint are scanned"
    received = next(p for p in second.snapshot.positions if p.account == receiver)
    assert received.collateral_usd > 0 and received.legs[0].amount >= 2 * 10**18 - 1
    assert {sender, receiver} <= {k.account for k in known_accounts(engine, proto.name)}
    cp2 = get_checkpoint(engine, "local", proto.name)
    assert cp2 is not None and cp2.block_number == second.snapshot.block.number


def test_checkpoint_off_chain_triggers_a_rescan(market_v35: Market, anvil, rpc, engine, db_url, clean_chain) -> None:  # type: ignore[no-untyped-def]
    """A checkpoint whose block changed hash (reorg, or a restarted dev chain) is not trusted."""
    fx = market_v35.fixture
    settings, proto = settings_for(anvil, fx, db_url)
    before_fork = clean_chain.snapshot()
    clean_chain.mine(5)
    first = run_snapshot(settings, proto, engine, rpc=rpc)
    old_cp = get_checkpoint(engine, "local", proto.name)
    assert old_cp is not None and old_cp.block_number == first.snapshot.block.number

    clean_chain.revert(before_fork)  # the other branch: block numbers reused with other hashes
    late = seeded_address(88, 1)
    clean_chain.fund([late])
    fx.do(fx.supply_txs(late, "DAI", 10**21))
    second = run_snapshot(settings, proto, engine, rpc=rpc)
    assert second.snapshot.block.number < old_cp.block_number
    assert late in {k.account for k in second.snapshot.new_accounts}
    assert len(second.snapshot.new_accounts) > 200, "the whole history was rescanned"
    cp = get_checkpoint(engine, "local", proto.name)
    assert cp is not None and cp.block_number == second.snapshot.block.number and cp.block_hash == second.snapshot.block.hash
