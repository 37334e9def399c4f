"""Reorgs: reads pinned by block hash, orphaned snapshots marked and recomputed, only canonical data served,
discovery checkpoints rewound to the newest stored block still on the chain.

The chain tests reorganise their chain, so they run on an anvil of their own (one per module, one small seeded
Aave market), each test from the same state (evm_snapshot / evm_revert). The store tests need no chain: the
canonical hashes come from a dict.
"""

from __future__ import annotations

import logging
import random
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, func, select

from indexer.chain.block import block_id
from indexer.chain.multicall import Multicaller
from indexer.chain.rpc import RpcClient
from indexer.constants import UINT256_MAX, WAD
from indexer.devnet.aave_market import AaveFixture, deploy_aave_market
from indexer.devnet.anvil import Anvil
from indexer.devnet.chain import DevChain, Tx
from indexer.devnet.seed import SeedResult, provide_liquidity, seed_accounts, seeded_address
from indexer.errors import BlockNotCanonical, RpcResponseError
from indexer.pipeline import run_snapshot
from indexer.protocols.registry import make_adapter
from indexer.store.db import account_positions, at_risk, get_checkpoint, known_accounts, latest_run_ids, make_engine, write_snapshot
from indexer.store.models import PositionSnapshot, SnapshotRun
from indexer.store.reorg import ORPHANED, recheck_runs
from indexer.store.retention import prune
from indexer.store.risk_state import latest_positions
from tests.conftest import FreshDatabase, settings_for
from tests.test_store import block, position, snapshot

ACCOUNTS = 16  # seeded accounts of the module's market: enough for every path, cheap to read
EVERYTHING = UINT256_MAX + 1  # an at-risk bound every position is below (no debt included)


# --- the store alone: which run is current, and the re-check's decisions -----------------------------------
def _write(engine: Engine, number: int, accounts: dict[str, int], *, block_hash: str | None = None) -> int:
    """Store a run at block ``number`` (hash ``block_hash``, else the builders' hash) with these accounts' HFs."""
    blk = block(number)
    if block_hash is not None:
        blk = type(blk)(chain_id=blk.chain_id, number=number, hash=block_hash, timestamp=blk.timestamp)
    run_id, created = write_snapshot(engine, snapshot(blk, tuple(position(a, hf, blk) for a, hf in accounts.items())))
    assert created
    return run_id


@pytest.fixture()
def store(any_db: FreshDatabase) -> Iterator[Engine]:
    eng = make_engine(any_db.url)
    yield eng
    eng.dispose()


def test_latest_run_is_the_highest_canonical_block_not_the_highest_id(store: Engine, any_db: FreshDatabase) -> None:
    """A block snapshotted again after a reorg gets a larger run id than later blocks; it is not current."""
    old = _write(store, 10, {"0xA": WAD // 2, "0xB": 2 * WAD})
    new = _write(store, 20, {"0xA": WAD // 3})
    recomputed = _write(store, 15, {"0xA": WAD // 4, "0xB": 3 * WAD}, block_hash="0x" + "15" * 32)
    orphan = _write(store, 20, {"0xA": WAD // 5, "0xC": WAD // 6}, block_hash="0x" + "20" * 32)
    assert old < new < recomputed < orphan
    any_db.execute(f"UPDATE snapshot_runs SET status = 'orphaned' WHERE id = {orphan}")

    with Session(store) as s:
        assert latest_run_ids(s) == [new]
        assert latest_run_ids(s, "aave-main") == [new]
    assert {(r.run_id, r.address) for r in at_risk(store, EVERYTHING)} == {(new, "0xA")}
    current, history = account_positions(store, "0xA")
    assert [r.run_id for r in current] == [new]
    assert [r.block_number for r in history] == [10, 15, 20], "history: canonical runs by block, no orphan"
    assert {s.row.run_id for s in latest_positions(store)} == {new}
    assert account_positions(store, "0xC") == ([], []), "an account seen only in an orphaned run has no data"

    # Retention keeps the run of each account's latest canonical position (0xB: block 15, the recomputed run),
    # and nothing protects an orphaned run.
    result = prune(store, keep_days=0, thin_seconds=10**9, now=2_000_000_000)
    assert (result.runs_deleted, result.protected) == (2, 1)
    with Session(store) as s:
        assert sorted(s.exec(select(SnapshotRun.id)).all()) == [new, recomputed]


def test_recheck_marks_orphans_names_blocks_to_recompute_and_reinstates(store: Engine, any_db: FreshDatabase) -> None:
    runs = {n: _write(store, n, {"0xA": WAD}) for n in (90, 100, 101, 102)}
    chain: dict[int, str | None] = {n: block(n).hash for n in runs}
    asked: list[list[int]] = []

    def canonical(numbers: Any) -> dict[int, str | None]:
        asked.append(list(numbers))
        return {n: chain.get(n) for n in numbers}

    chain[101], chain[102] = "0x" + "ab" * 32, None  # 101 replaced, 102 gone (the chain is shorter now)
    at = datetime(2030, 1, 2, tzinfo=UTC)
    found = recheck_runs(store, chain_id=1, protocol="aave-main", shard=0, above_block=95, canonical=canonical, now=at)
    assert asked == [[100, 101, 102]], "one read of the window's blocks; block 90 is final"
    assert set(found.orphaned) == {runs[101], runs[102]} and found.reinstated == ()
    assert found.recompute == (101,), "102 has no block to snapshot yet"
    rows = dict(any_db.rows("SELECT id, status FROM snapshot_runs"))
    assert rows == {runs[90]: "canonical", runs[100]: "canonical", runs[101]: ORPHANED, runs[102]: ORPHANED}
    assert any_db.scalar(f"SELECT orphaned_at FROM snapshot_runs WHERE id = {runs[101]}") is not None

    again = recheck_runs(store, chain_id=1, protocol="aave-main", shard=0, above_block=95, canonical=canonical)
    assert again.orphaned == () and again.recompute == (101,), "a block not yet recomputed is named again"
    _write(store, 101, {"0xA": WAD}, block_hash=chain[101])
    assert recheck_runs(store, chain_id=1, protocol="aave-main", shard=0, above_block=95, canonical=canonical).recompute == ()

    chain[102] = block(102).hash  # a reorg back to the first branch
    back = recheck_runs(store, chain_id=1, protocol="aave-main", shard=0, above_block=95, canonical=canonical)
    assert back.reinstated == (runs[102],)
    assert any_db.rows(f"SELECT status, orphaned_at FROM snapshot_runs WHERE id = {runs[102]}") == [("canonical", None)]
    with Session(store) as s:
        assert latest_run_ids(s) == [runs[102]]


# --- the chain: a module's own anvil ---------------------------------------------------------------------
@dataclass
class ReorgChain:
    """The module's anvil, its seeded market and a funded account for each fork's new positions."""

    anvil: Anvil
    rpc: RpcClient
    chain: DevChain
    fixture: AaveFixture
    seeded: SeedResult
    newcomers: tuple[str, ...]  # funded, no position yet


@pytest.fixture(scope="module")
def reorg_chain() -> Iterator[ReorgChain]:
    with Anvil() as node:
        rpc = RpcClient(node.url)
        chain = DevChain(rpc)
        fixture = deploy_aave_market(chain, revision=9)
        provide_liquidity(fixture, seeded_address(71, -1))
        seeded = seed_accounts(fixture, ACCOUNTS, random.Random(71), seed=71)
        newcomers = tuple(seeded_address(72, i) for i in range(3))
        chain.fund(list(newcomers))  # before every fork point: a reorg's new blocks start from this state
        chain.mine(2)
        yield ReorgChain(node, rpc, chain, fixture, seeded, newcomers)


@pytest.fixture()
def chain(reorg_chain: ReorgChain) -> Iterator[ReorgChain]:
    """The module's chain, restored after the test (a test's reorgs must stay above the head it starts at)."""
    snap = reorg_chain.chain.snapshot()
    yield reorg_chain
    reorg_chain.chain.revert(snap)


def _tx_request(tx: Tx) -> dict[str, Any]:
    return {"from": tx.sender, "to": tx.to, "data": "0x" + tx.data().hex(), "gas": hex(3_000_000)}


def _price_tx(chain: ReorgChain, price: int) -> Tx:
    feed = chain.fixture.asset("WETH").feed
    return Tx(chain.chain.deployer, feed, "MockAggregatorV3", "updateAnswer", (price,), "price WETH")


def _open_position_txs(fx: AaveFixture, user: str) -> list[Tx]:
    """A new account supplies 10 WETH and borrows 15,000 DAI (HF about 1.6 at 3,000 USD per WETH)."""
    return [*fx.supply_txs(user, "WETH", 10 * 10**18), fx.borrow_tx(user, "DAI", 15_000 * 10**18)]


def _runs(engine: Engine) -> dict[int, SnapshotRun]:
    with Session(engine) as s:
        return {r.id: r for r in s.exec(select(SnapshotRun)).all()}  # type: ignore[misc]


def _assert_only_canonical_served(engine: Engine, current: int, orphaned: set[int]) -> None:
    """Every query of current data reads run ``current``; none returns a row of the ``orphaned`` runs."""
    with Session(engine) as s:
        assert latest_run_ids(s) == [current]
    rows = at_risk(engine, EVERYTHING)
    assert rows and {r.run_id for r in rows} == {current}
    assert {s.row.run_id for s in latest_positions(engine)} == {current}
    for row in rows[:5]:
        now, history = account_positions(engine, row.address)
        assert [r.run_id for r in now] == [current]
        assert not {r.run_id for r in history} & orphaned


@pytest.mark.parametrize("depth", range(1, 11))
def test_anvil_reorg_orphans_the_snapshot_and_stores_the_canonical_one(chain: ReorgChain, tmp_path: Path, depth: int) -> None:
    """anvil_reorg(depth) after a snapshot, with a price move and a new account on the new branch."""
    fx, rpc = chain.fixture, chain.rpc
    engine = make_engine(f"sqlite:///{tmp_path / 'reorg.db'}")
    settings, proto = settings_for(chain.anvil, fx, str(engine.url))
    first = run_snapshot(settings, proto, engine, rpc=rpc)
    chain.chain.mine(depth + 2)  # the first run's block stays below the fork point
    second = run_snapshot(settings, proto, engine, rpc=rpc)
    old = second.snapshot.block
    newcomer = chain.newcomers[0]
    weth = fx.price("WETH")
    new_branch = [_price_tx(chain, weth * 8 // 10), *_open_position_txs(fx, newcomer)]
    rpc.request("anvil_reorg", [depth, [[_tx_request(t), 0] for t in new_branch]])  # all in the first new block
    assert rpc.get_block(old.number)["hash"] != old.hash
    chain.chain.mine()  # the next run pins a later block: the orphaned one is recomputed at its own number

    third = run_snapshot(settings, proto, engine, rpc=rpc)
    runs = _runs(engine)
    assert runs[second.run_id].status == ORPHANED and runs[second.run_id].orphaned_at is not None
    assert runs[first.run_id].status == "canonical", "below the fork point"
    (recomputed,) = third.recomputed
    assert (runs[recomputed].block_number, runs[recomputed].block_hash) == (old.number, rpc.get_block(old.number)["hash"])
    assert recomputed > third.run_id, "recomputed after the run that found the reorg"
    _assert_only_canonical_served(engine, third.run_id, {second.run_id})

    # The new branch's numbers: the price move and the new account.
    assert {k.account for k in third.snapshot.new_accounts} == {newcomer}, "discovery rescanned the replaced blocks only"
    cp = get_checkpoint(engine, "local", proto.name)
    assert cp is not None and (cp.block_number, cp.block_hash) == (third.snapshot.block.number, third.snapshot.block.hash)
    mine = next(r for r in at_risk(engine, EVERYTHING) if r.address == newcomer)
    assert mine.debt_usd > 0 and mine.health_factor == fx.account_data(newcomer)[5]
    with Session(engine) as s:
        recomputed_hf = dict(s.exec(select(PositionSnapshot.account, PositionSnapshot.health_factor).where(PositionSnapshot.run_id == recomputed)).all())
        orphaned_hf = dict(s.exec(select(PositionSnapshot.account, PositionSnapshot.health_factor).where(PositionSnapshot.run_id == second.run_id)).all())
    for account in chain.seeded.borrowers:
        assert recomputed_hf[account] == fx.account_data(account, old.number)[5], "the recomputed run reads the canonical block"
    assert any(recomputed_hf[a] != orphaned_hf[a] for a in chain.seeded.borrowers), "WETH moved on the new branch only"


def test_fork_with_other_user_actions(chain: ReorgChain, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """evm_snapshot / evm_revert: branch A has one new account and a bigger supply of a seeded one; branch B, which
    wins, has another new account. Only branch B's data is served; discovery finds its account."""
    fx, rpc, dev = chain.fixture, chain.rpc, chain.chain
    engine = make_engine(f"sqlite:///{tmp_path / 'fork.db'}")
    settings, proto = settings_for(chain.anvil, fx, str(engine.url))
    first = run_snapshot(settings, proto, engine, rpc=rpc)
    fork = dev.snapshot()

    on_a, on_b = chain.newcomers[1], chain.newcomers[2]
    seeded = chain.seeded.borrowers[0]
    fx.do(_open_position_txs(fx, on_a))
    fx.do(fx.supply_txs(seeded, "WETH", 50 * 10**18))
    branch_a = run_snapshot(settings, proto, engine, rpc=rpc)
    assert on_a in {k.account for k in branch_a.snapshot.new_accounts}

    dev.revert(fork)
    fx.do(_open_position_txs(fx, on_b))
    dev.mine(8)  # branch B is longer: branch A's block number is recomputed on it
    with caplog.at_level(logging.WARNING):
        branch_b = run_snapshot(settings, proto, engine, rpc=rpc)
    assert f"rescanning from {first.snapshot.block.number + 1}" in caplog.text, "the checkpoint rewound to the first run"
    assert {k.account for k in branch_b.snapshot.new_accounts} == {on_b}
    assert {on_a, on_b} <= {k.account for k in known_accounts(engine, proto.name)}

    runs = _runs(engine)
    assert runs[branch_a.run_id].status == ORPHANED
    (recomputed,) = branch_b.recomputed
    assert runs[recomputed].block_number == branch_a.snapshot.block.number and runs[recomputed].status == "canonical"
    _assert_only_canonical_served(engine, branch_b.run_id, {branch_a.run_id})
    assert not [r for r in account_positions(engine, on_a)[0] if r.debt_usd or r.collateral_usd], "branch A's account holds nothing on B"
    (now,) = account_positions(engine, seeded)[0]
    on_branch_a = next(p for p in branch_a.snapshot.positions if p.account == seeded)
    assert now.collateral_usd < on_branch_a.collateral_usd - 100_000 * 10**18, "branch A's bigger supply (50 WETH) is not served"
    (b_pos,) = account_positions(engine, on_b)[0]
    assert b_pos.debt_usd > 0

    # The HTTP API serves the same: its /at-risk lists branch B's run only.
    warnings.filterwarnings("ignore", message=".*httpx.*")
    from fastapi.testclient import TestClient

    from indexer.api import create_app

    with TestClient(create_app(settings, engine)) as client:
        body = client.get("/at-risk", params={"below": "1000000"}).json()
    assert body["items"] and {item["run_id"] for item in body["items"]} == {branch_b.run_id}
    assert on_a not in {item["address"] for item in body["items"]}


# --- reads pinned by hash ----------------------------------------------------------------------------------
class RecordingRpc(RpcClient):
    """Records every request; ``before_call`` runs before each eth_call (a hook to reorg the chain mid-run)."""

    def __init__(self, url: str, *, refuse_block_hash: bool = False) -> None:
        super().__init__(url)
        self.sent: list[tuple[str, list[Any]]] = []
        self.refuse_block_hash = refuse_block_hash
        self.before_call: Any = None

    def request(self, method: str, params: list[Any]) -> Any:
        self.sent.append((method, params))
        if method == "eth_call":
            if self.before_call is not None:
                self.before_call(params)
            if self.refuse_block_hash and isinstance(params[1], dict):
                raise RpcResponseError("eth_call: invalid argument 1: hex string without 0x prefix", code=-32602, method=method, endpoint=self.endpoint)
        return super().request(method, params)

    def eth_calls(self) -> list[Any]:
        return [params[1] for method, params in self.sent if method == "eth_call"]


def test_reads_at_the_pinned_block_go_by_its_hash(chain: ReorgChain, tmp_path: Path) -> None:
    rpc = RecordingRpc(chain.anvil.url)
    engine = make_engine(f"sqlite:///{tmp_path / 'pin.db'}")
    settings, proto = settings_for(chain.anvil, chain.fixture, str(engine.url))
    result = run_snapshot(settings, proto, engine, rpc=rpc)
    pinned = result.snapshot.block
    blocks = rpc.eth_calls()
    assert len(blocks) >= 3 and all(b == block_id(pinned) for b in blocks), blocks
    assert block_id(pinned) == {"blockHash": pinned.hash, "requireCanonical": True}


def test_a_reorg_while_a_run_reads_stops_it_without_mixing_blocks(chain: ReorgChain, tmp_path: Path) -> None:
    rpc = RecordingRpc(chain.anvil.url)
    control = RpcClient(chain.anvil.url)
    fx = chain.fixture

    def reorg_after_the_market(params: list[Any]) -> None:
        if len(rpc.eth_calls()) == 4:  # the probe and the market's reads are done; the positions come next
            control.request("anvil_reorg", [1, [[_tx_request(_price_tx(chain, 1)), 0]]])

    rpc.before_call = reorg_after_the_market
    chain.chain.mine(2)  # every reorg here stays above the block the test's chain snapshot restores
    engine = make_engine(f"sqlite:///{tmp_path / 'mid.db'}")
    settings, proto = settings_for(chain.anvil, fx, str(engine.url))
    with pytest.raises(BlockNotCanonical) as info:
        run_snapshot(settings, proto, engine, rpc=rpc)
    assert info.value.canonical_hash == rpc.get_block(info.value.number)["hash"] != info.value.pinned_hash
    with Session(engine) as s:
        assert s.exec(select(func.count()).select_from(SnapshotRun)).one() == 0, "nothing stored"
    assert get_checkpoint(engine, "local", proto.name) is None

    # A Multicaller pinned to a block that left the chain fails too, rather than read the new block.
    multicall = Multicaller(RpcClient(chain.anvil.url))
    stale = run_snapshot(settings, proto, engine, rpc=RpcClient(chain.anvil.url)).snapshot.block
    multicall.pin(stale)
    control.request("anvil_reorg", [1, []])
    adapter = make_adapter(proto, multicall.rpc, multicall)
    with pytest.raises(BlockNotCanonical):
        adapter.load_market(stale)


def test_a_node_refusing_block_hashes_is_read_by_number(chain: ReorgChain, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    rpc = RecordingRpc(chain.anvil.url, refuse_block_hash=True)
    engine = make_engine(f"sqlite:///{tmp_path / 'numbers.db'}")
    settings, proto = settings_for(chain.anvil, chain.fixture, str(engine.url))
    with caplog.at_level(logging.WARNING, logger="indexer.chain.block"):
        first = run_snapshot(settings, proto, engine, rpc=rpc)
        chain.chain.mine()
        second = run_snapshot(settings, proto, engine, rpc=rpc)
    assert len([r for r in caplog.records if "EIP-1898" in r.getMessage()]) == 1, "probed and logged once per client"
    by_hash = [b for b in rpc.eth_calls() if isinstance(b, dict)]
    assert len(by_hash) == 1, "only the probe asked by hash"
    assert hex(first.snapshot.block.number) in rpc.eth_calls() and hex(second.snapshot.block.number) in rpc.eth_calls()
    assert len(second.snapshot.positions) >= ACCOUNTS
