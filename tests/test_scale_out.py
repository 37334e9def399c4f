"""Several ``indexer run`` processes on one PostgreSQL: leases split the jobs, a killed process's jobs move.

Unit tests: rendezvous assignment, account shards, and the lease statements on SQLite and PostgreSQL.
Integration: three real ``indexer run`` subprocesses, one database, the session's anvil and Aave fixture.
Waits poll the database and the logs with generous timeouts; no test asserts a duration.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pytest
from eth_utils import keccak
from sqlalchemy import Engine, text

from indexer.config import load_settings
from indexer.devnet.anvil import Anvil
from indexer.devnet.chain import DevChain
from indexer.pipeline import account_shard
from indexer.scheduler import build_scheduler, job_id
from indexer.store.db import make_engine
from indexer.store.leases import JobLeaser, LeaseStore, rendezvous_owner
from tests.conftest import FreshDatabase, Market, fresh_database

JOBS = [f"snapshot:instance-{i}" for i in range(300)] + [f"snapshot:sharded#{k}/8" for k in range(8)]


# --- rendezvous assignment and account shards (pure) ----------------------------------------------------
def test_rendezvous_is_balanced_and_moves_only_the_new_workers_share() -> None:
    workers = ["host-a:11:aa", "host-b:12:bb", "host-c:13:cc"]
    before = {j: rendezvous_owner(j, workers) for j in JOBS}
    load = Counter(before.values())
    assert set(load) == set(workers) and min(load.values()) > len(JOBS) / 3 * 0.7, load
    # The owner does not depend on the order the workers are listed in.
    assert all(rendezvous_owner(j, list(reversed(workers))) == before[j] for j in JOBS)

    after = {j: rendezvous_owner(j, [*workers, "host-d:14:dd"]) for j in JOBS}
    moved = [j for j in JOBS if after[j] != before[j]]
    assert all(after[j] == "host-d:14:dd" for j in moved), "a joining worker only takes jobs; none move between the others"
    assert len(JOBS) / 4 * 0.6 < len(moved) < len(JOBS) / 4 * 1.4, len(moved)

    # A worker leaving hands only its own jobs over.
    gone = {j: rendezvous_owner(j, workers[1:]) for j in JOBS}
    assert all(gone[j] == before[j] for j in JOBS if before[j] != workers[0])
    assert rendezvous_owner("snapshot:x", []) is None


def test_account_shards_are_stable_balanced_and_case_blind() -> None:
    accounts = [f"0x{i:040x}" for i in range(1, 901)]
    shards = Counter(account_shard(a, 3) for a in accounts)
    assert set(shards) == {0, 1, 2} and min(shards.values()) > 240, shards
    assert all(account_shard(a.upper().replace("0X", "0x"), 3) == account_shard(a, 3) for a in accounts[:50])
    assert {account_shard(a, 1) for a in accounts} == {0}
    # The documented definition: keccak256 of the lower-case 0x-hex text, big-endian, modulo the shard count.
    digest = int.from_bytes(keccak(text="0x000000000000000000000000000000000000dead"), "big")
    assert [account_shard("0x000000000000000000000000000000000000dEaD", n) for n in (2, 3, 7)] == [digest % n for n in (2, 3, 7)]


def test_jobs_per_shard_and_scale_out_settings(tmp_path: Path) -> None:
    from indexer.chain.rpc import RpcClient

    cfg = tmp_path / "c.toml"
    cfg.write_text(
        """[chains.local]
rpc_url = "http://127.0.0.1:1"
[scale_out]
heartbeat_seconds = 2
lease_seconds = 9
[[protocols]]
name = "one"
kind = "aave_v3"
chain = "local"
pool_addresses_provider = "0x2f39d218133AFaB8F2B819B1066c7E434Ad94E9e"
[[protocols]]
name = "split"
kind = "aave_v3"
chain = "local"
pool_addresses_provider = "0x2f39d218133AFaB8F2B819B1066c7E434Ad94E9e"
shards = 3
"""
    )
    settings = load_settings(cfg)
    assert (settings.scale_out.heartbeat_seconds, settings.scale_out.lease_seconds) == (2, 9)
    scheduler = build_scheduler(settings, make_engine(f"sqlite:///{tmp_path / 's.db'}"), {"local": RpcClient("http://127.0.0.1:1")})
    assert [j.id for j in scheduler.get_jobs()] == ["snapshot:one", "snapshot:split#0/3", "snapshot:split#1/3", "snapshot:split#2/3"]
    assert [j.args[4] for j in scheduler.get_jobs()] == [0, 0, 1, 2]
    assert job_id("one") == "snapshot:one" and job_id("split", 2, 3) == "snapshot:split#2/3"

    from indexer.errors import ConfigError

    with pytest.raises(ConfigError, match="scale_out: lease_seconds"):
        load_settings(cfg, scale_out={"heartbeat_seconds": 5, "lease_seconds": 6})
    cfg.write_text(cfg.read_text().replace("shards = 3", "shards = 0"))
    with pytest.raises(ConfigError, match="shards"):
        load_settings(cfg)


# --- the lease statements, on both backends ---------------------------------------------------------
@pytest.fixture(params=["sqlite", "postgresql"])
def lease_engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    with fresh_database(request.param, tmp_path) as db:
        engine = make_engine(db.url)
        yield engine
        engine.dispose()


def _poll(condition: Callable[[], bool], timeout: float, what: str, step: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for: {what}")
        time.sleep(step)


def test_lease_cannot_be_taken_while_unexpired_and_can_after(lease_engine: Engine) -> None:
    store = LeaseStore(lease_engine, lease_seconds=60)
    first = store.take("snapshot:x", "worker-a")
    assert first.held and first.previous_owner is None
    denied = store.take("snapshot:x", "worker-b")
    assert not denied.held and denied.previous_owner == "worker-a"
    assert store.holder("snapshot:x") == "worker-a"
    assert store.take("snapshot:x", "worker-a").held, "the holder renews"
    assert not store.release("snapshot:x", "worker-b"), "only the holder releases"

    # worker-a renews for a moment only; once that has passed, worker-b takes the lease over.
    assert LeaseStore(lease_engine, lease_seconds=0.2).take("snapshot:x", "worker-a").held
    _poll(lambda: store.take("snapshot:x", "worker-b").held, 30, "the expired lease to be taken over")
    assert store.holder("snapshot:x") == "worker-b"
    assert not store.take("snapshot:x", "worker-a").held

    # A released lease is free at once.
    assert store.release("snapshot:x", "worker-b") and store.holder("snapshot:x") is None
    _poll(lambda: store.take("snapshot:x", "worker-a").held, 30, "the released lease to be taken")


def test_concurrent_takes_give_the_lease_to_exactly_one(lease_engine: Engine) -> None:
    store = LeaseStore(lease_engine, lease_seconds=60)
    barrier = threading.Barrier(8)
    results: dict[str, bool] = {}

    def contend(worker: str) -> None:
        barrier.wait()
        results[worker] = store.take("snapshot:race", worker).held

    threads = [threading.Thread(target=contend, args=(f"w{i}",)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(results.values()) == 1 and store.holder("snapshot:race") == next(w for w, ok in results.items() if ok)


def test_live_workers_gate_runs_and_a_graceful_stop_hands_jobs_over(lease_engine: Engine) -> None:
    a = JobLeaser(lease_engine, lease_seconds=60, heartbeat_seconds=1, worker_id="worker-a")
    b = JobLeaser(lease_engine, lease_seconds=60, heartbeat_seconds=1, worker_id="worker-b")
    a.store.heartbeat(a.worker_id)
    b.store.heartbeat(b.worker_id)
    assert a.live_workers() == b.live_workers() == {"worker-a", "worker-b"}
    jobs = [f"snapshot:p{i}" for i in range(12)]
    ran: dict[str, list[str]] = defaultdict(list)
    for j in jobs:
        for leaser in (a, b):
            leaser.run(j, lambda leaser=leaser, j=j: ran[j].append(leaser.worker_id))
    assert {j: ran[j] for j in jobs} == {j: [rendezvous_owner(j, ["worker-a", "worker-b"])] for j in jobs}
    assert {len(a.held()), len(b.held())} != {0}, "both workers hold jobs"
    assert a.held() | b.held() == set(jobs) and not a.held() & b.held()

    a.stop()  # graceful: releases its leases, deletes its worker row
    assert b.live_workers() == {"worker-b"}
    for j in jobs:
        assert b.run(j, lambda: None), f"{j} moved to the remaining worker"
    assert b.held() == set(jobs)
    b.stop()
    with lease_engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM workers")).scalar_one() == 0


# --- three processes, one PostgreSQL, one anvil ------------------------------------------------------
INSTANCES = ("lend-a", "lend-b", "lend-c")
SHARDED = "lend-s"
SHARDS = 3
LEASE_SECONDS = 4
EXPECTED_JOBS = {job_id(n) for n in INSTANCES} | {job_id(SHARDED, k, SHARDS) for k in range(SHARDS)}
LOG_LINE = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) \w+ indexer\.store\.leases (.*)$")


@dataclass
class Proc:
    popen: subprocess.Popen[bytes]
    log: Path

    def events(self) -> list[tuple[datetime, str]]:
        out = []
        for line in self.log.read_text(errors="replace").split("\n")[:-1]:  # complete lines only
            if m := LOG_LINE.match(line):
                out.append((datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S,%f"), m.group(2)))
        return out

    def worker(self) -> str | None:
        return next((msg.split("worker=")[1].split()[0] for _, msg in self.events() if msg.startswith("worker started")), None)


def _field(msg: str, key: str) -> str:
    return msg.split(f"{key}=")[1].split()[0]


def _starts(procs: list[Proc]) -> list[tuple[datetime, str, str]]:
    """(time, job, worker) of every run start in the logs."""
    return [(t, _field(m, "job"), _field(m, "worker")) for p in procs for t, m in p.events() if m.startswith("job start")]


@pytest.fixture()
def chain_state(devchain: DevChain, market_v35: Market) -> Iterator[DevChain]:
    """The blocks the test mines are reverted afterwards (the market is deployed before the snapshot)."""
    snap = devchain.snapshot()
    yield devchain
    devchain.revert(snap)


def _config(path: Path, anvil: Anvil, provider: str, db_url: str) -> Path:
    protos = "".join(
        f"""
[[protocols]]
name = "{name}"
kind = "aave_v3"
chain = "local"
pool_addresses_provider = "{provider}"
interval_seconds = 1
shards = {shards}
"""
        for name, shards in [*((n, 1) for n in INSTANCES), (SHARDED, SHARDS)]
    )
    path.write_text(
        f"""database_url = "{db_url}"
[chains.local]
rpc_url = "{anvil.url}"
chain_id = 31337
confirmations = 0
[scale_out]
heartbeat_seconds = 1
lease_seconds = {LEASE_SECONDS}
{protos}"""
    )
    return path


def test_three_processes_split_the_jobs_and_take_over_a_killed_ones(anvil: Anvil, market_v35: Market, chain_state: DevChain, tmp_path: Path) -> None:
    with fresh_database("postgresql", tmp_path) as db:
        make_engine(db.url).dispose()  # the schema, before the processes start
        cfg = _config(tmp_path / "indexer.toml", anvil, market_v35.fixture.provider, db.url)
        env = {k: v for k, v in os.environ.items() if not k.startswith("INDEXER_")}
        procs: list[Proc] = []
        try:
            for i in range(3):
                log = tmp_path / f"run-{i}.log"
                with log.open("wb") as err:
                    popen = subprocess.Popen([sys.executable, "-m", "indexer.cli", "run", "--config", str(cfg)], cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=err)
                procs.append(Proc(popen, log))
            _scenario(procs, chain_state, db)
        finally:
            for p in procs:
                if p.popen.poll() is None:
                    p.popen.kill()
                    p.popen.wait(timeout=30)


def _scenario(procs: list[Proc], chain: DevChain, db: FreshDatabase) -> None:
    last_mine = [0.0]

    def wait(condition: Callable[[], bool], what: str, *, timeout: float = 90, mine: bool = True, step: float = 0.2) -> None:
        def check() -> bool:
            for p in procs:
                assert p.popen.poll() is None or p is victim_box[0], f"indexer run exited: {p.log.read_text()[-3000:]}"
            if mine and time.monotonic() - last_mine[0] > 0.5:
                chain.mine()  # new blocks: new work for every job
                last_mine[0] = time.monotonic()
            return condition()

        _poll(check, timeout, what, step)

    victim_box: list[Proc | None] = [None]

    # 1. Every job runs, each (after all three processes started) in the process rendezvous hashing names.
    wait(lambda: all(p.worker() for p in procs), "three workers started")
    workers = [p.worker() or "" for p in procs]
    owner = {j: rendezvous_owner(j, workers) for j in EXPECTED_JOBS}

    def stored_jobs() -> set[str]:
        rows = db.rows("SELECT DISTINCT protocol, shard, shards FROM snapshot_runs")
        return {job_id(name, shard, shards) for name, shard, shards in rows}

    wait(lambda: stored_jobs() == EXPECTED_JOBS, "a stored run of every (protocol, shard)")
    wait(lambda: {(j, w) for _, j, w in _starts(procs)} >= set(owner.items()), "every job run by its rendezvous owner")

    # 2. SIGKILL a process that owns jobs, right after it logged a run start (mid-run).
    victim = next(p for p in procs if p.worker() in owner.values())
    victim_id = victim.worker()
    victim_jobs = {j for j, w in owner.items() if w == victim_id}

    def victim_mid_run() -> bool:
        open_runs = Counter()
        for _, m in victim.events():
            if m.startswith(("job start", "job end")):
                open_runs[_field(m, "job")] += 1 if m.startswith("job start") else -1
        return any(n > 0 for n in open_runs.values())

    wait(victim_mid_run, "the victim in the middle of a run", step=0.01)
    victim.popen.send_signal(signal.SIGKILL)
    victim.popen.wait(timeout=30)
    killed_at = datetime.now()
    victim_box[0] = victim

    survivors = [p for p in procs if p is not victim]
    new_owner = {j: rendezvous_owner(j, [p.worker() or "" for p in survivors]) for j in EXPECTED_JOBS}
    wait(
        lambda: {j for t, j, w in _starts(survivors) if t > killed_at and j in victim_jobs} == victim_jobs,
        "the killed process's jobs run by the others",
    )
    takeovers = [m for p in survivors for _, m in p.events() if m.startswith("lease taken over")]
    assert {_field(m, "job") for m in takeovers if _field(m, "from") == victim_id} == victim_jobs
    assert all(_field(m, "worker") == new_owner[_field(m, "job")] for m in takeovers if _field(m, "from") == victim_id)

    # 3. Stop mining: every job catches up with the head block, then a graceful stop.
    head = chain.rpc.get_block("latest")["hash"]
    wait(
        lambda: {job_id(n, s, ss) for n, s, ss in db.rows(f"SELECT protocol, shard, shards FROM snapshot_runs WHERE block_hash = '{head}'")} == EXPECTED_JOBS,
        "every job's run at the head block",
        mine=False,
    )
    for p in survivors:
        p.popen.send_signal(signal.SIGTERM)
    for p in survivors:
        assert p.popen.wait(timeout=60) == 0, p.log.read_text()[-3000:]
        assert any(m.startswith("worker stopped") for _, m in p.events())

    _check_logs(procs, victim, killed_at)
    _check_store(db, head, victim_id or "")


def _check_logs(procs: list[Proc], victim: Proc, killed_at: datetime) -> None:
    """No job ever ran in two places at once: per job, the [start, end] intervals of all processes are disjoint."""
    intervals: dict[str, list[tuple[datetime, datetime, str]]] = defaultdict(list)
    for p in procs:
        started: dict[str, datetime] = {}
        for t, m in p.events():
            if m.startswith("job start"):
                started[_field(m, "job")] = t
            elif m.startswith("job end"):
                intervals[_field(m, "job")].append((started.pop(_field(m, "job")), t, p.worker() or ""))
        for job, t in started.items():  # a run cut short by SIGKILL lasted until the kill
            assert p is victim, f"{job} started in {p.worker()} and never ended"
            intervals[job].append((t, killed_at, p.worker() or ""))
    assert set(intervals) == EXPECTED_JOBS
    runners = {w for runs in intervals.values() for _, _, w in runs}
    assert len(runners) >= 2, f"the jobs ran in {len(runners)} process(es)"
    for job, runs in intervals.items():
        runs.sort()
        for (_, end, w1), (start, _, w2) in zip(runs, runs[1:]):
            assert start >= end, f"{job} ran in {w1} until {end} and in {w2} from {start}"


def _check_store(db: FreshDatabase, head: str, victim_id: str) -> None:
    """No duplicate and no missing row, and the shards of one block cover the accounts exactly once."""
    assert not db.rows("SELECT protocol, shard, block_hash FROM snapshot_runs GROUP BY protocol, shard, block_hash HAVING count(*) > 1")
    assert not db.rows("SELECT run_id, account, market FROM position_snapshots GROUP BY run_id, account, market HAVING count(*) > 1")
    mismatched = db.rows(
        "SELECT r.id, r.positions, count(p.id) FROM snapshot_runs r LEFT JOIN position_snapshots p ON p.run_id = r.id "
        "GROUP BY r.id, r.positions HAVING r.positions <> count(p.id)"
    )
    assert not mismatched, f"runs whose stored positions differ from their count: {mismatched}"

    # Every position of a shard run belongs to that shard.
    for shard, account in db.rows(
        f"SELECT r.shard, p.account FROM position_snapshots p JOIN snapshot_runs r ON r.id = p.run_id WHERE r.protocol = '{SHARDED}'"
    ):
        assert account_shard(account, SHARDS) == shard, (account, shard)

    # At the head block the three shards together read every known account once, and their positions are
    # exactly those of an unsharded instance of the same market at the same block.
    known = db.scalar(f"SELECT count(*) FROM known_accounts WHERE protocol = '{SHARDED}'")
    shard_runs = db.rows(f"SELECT shard, accounts_read FROM snapshot_runs WHERE protocol = '{SHARDED}' AND block_hash = '{head}' ORDER BY shard")
    assert [s for s, _ in shard_runs] == list(range(SHARDS)) and sum(n for _, n in shard_runs) == known > 0

    def positions(protocol: str) -> list[tuple[str, str, str]]:
        return sorted(
            (a, m, str(hf))
            for a, m, hf in db.rows(
                "SELECT p.account, p.market, p.health_factor FROM position_snapshots p JOIN snapshot_runs r ON r.id = p.run_id "
                f"WHERE r.protocol = '{protocol}' AND r.block_hash = '{head}'"
            )
        )

    whole = positions(INSTANCES[0])
    assert whole and positions(SHARDED) == whole
    assert db.scalar(f"SELECT block_number FROM checkpoints WHERE protocol = '{SHARDED}'") == db.scalar(
        f"SELECT max(block_number) FROM snapshot_runs WHERE protocol = '{SHARDED}'"
    )

    # The graceful stops released their leases and removed their worker rows; only the killed one is left.
    assert [w for (w,) in db.rows("SELECT worker_id FROM workers")] == [victim_id]
    assert not db.rows("SELECT job_id FROM job_leases WHERE expires_at > now() AND owner <> " + f"'{victim_id}'")
