"""``WarmIndexer``: a stored snapshot per block, the same as ``indexer run`` stores, and a new start after a reorg.

The session's Comet (cheap to read) on the session's anvil; every chain change inside ``clean_chain``.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session, select

from indexer.chain.rpc import RpcClient
from indexer.devnet.chain import DevChain
from indexer.devnet.seed import seeded_address
from indexer.pipeline import run_snapshot
from indexer.store.db import get_checkpoint, known_accounts
from indexer.store.models import SnapshotRun
from indexer.warm.follow import WarmIndexer
from tests.conftest import Comet, comet_settings


def _runs(engine: Engine) -> list[SnapshotRun]:
    with Session(engine) as session:
        return list(session.exec(select(SnapshotRun).order_by(SnapshotRun.id)).all())  # type: ignore[arg-type]


def test_follow_stores_a_snapshot_per_block_equal_to_indexer_run(clean_chain: DevChain, rpc: RpcClient, anvil: Any, comet: Comet, db_url: str, engine: Engine) -> None:
    settings, proto = comet_settings(anvil, comet.fixture, db_url)
    warm = WarmIndexer(settings, proto, engine, rpc=rpc)
    first = warm.start()
    assert first.created and first.snapshot.accounts_read == len(warm.book.known) > 200
    fx, user = comet.fixture, seeded_address(9801, 1)
    clean_chain.fund([user])
    fx.do(fx.supply_collateral_txs(user, "WETH", 10**18))  # three blocks, one new account
    clean_chain.increase_time(600)
    clean_chain.mine()
    results = []
    stored = warm.follow(max_blocks=4, poll_seconds=0.01, on_run=results.append)  # the four blocks since the start
    assert stored == 4
    runs = _runs(engine)
    assert [r.block_number for r in runs] == list(range(first.snapshot.block.number, first.snapshot.block.number + 5))
    assert all(r.rpc_requests < 20 for r in runs[1:]), [r.rpc_requests for r in runs]
    assert any(k.account == user for k in known_accounts(engine, proto.name))
    checkpoint = get_checkpoint(engine, proto.chain, proto.name)
    assert checkpoint is not None and checkpoint.block_number == runs[-1].block_number
    # `indexer run` at the same block finds it stored already (same block hash), and reads the same positions
    again = run_snapshot(settings, proto, engine, rpc=rpc, at_block=runs[-1].block_number, recheck=False)
    assert not again.created and again.run_id == runs[-1].id
    got = {(p.account, p.market): (p, p.state) for p in results[-1].snapshot.positions}
    assert got == {(p.account, p.market): (p, p.state) for p in again.snapshot.positions}
    assert results[-1].snapshot.prices == again.snapshot.prices and results[-1].snapshot.market_state == again.snapshot.market_state


def test_a_reorg_under_the_book_starts_it_again(clean_chain: DevChain, rpc: RpcClient, anvil: Any, comet: Comet, db_url: str, engine: Engine) -> None:
    settings, proto = comet_settings(anvil, comet.fixture, db_url)
    warm = WarmIndexer(settings, proto, engine, rpc=rpc)
    fork = clean_chain.snapshot()
    clean_chain.mine()
    warm.start()
    orphan = warm.book.block
    clean_chain.revert(fork)  # the block the book is at leaves the chain; another takes its number
    clean_chain.increase_time(5)
    clean_chain.mine(2)
    result = warm.step()
    assert result is not None and warm.book.block is not None and orphan is not None
    assert warm.book.block.number == orphan.number + 1 and warm.book.block.hash != orphan.hash
    assert result.snapshot.accounts_read == len(warm.book.known)  # read in full again
    runs = {(r.block_number, r.block_hash): r for r in _runs(engine)}
    assert runs[(orphan.number, orphan.hash)].orphaned_at is not None  # marked as `indexer run` marks them
    canonical = rpc.get_block(orphan.number)["hash"]
    assert runs[(orphan.number, canonical)].orphaned_at is None  # and the block now there snapshotted again
