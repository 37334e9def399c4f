"""Crash safety: ``indexer run`` SIGKILLed at random moments of its runs, restarted each time, ends with the store
an uninterrupted run makes.

The scenario (SQLite with 20 kills; PostgreSQL with 5 when a server answers), on the session's anvil with its
Aave V3 and Compound V3 fixtures and a watched address:

1. One uninterrupted cycle of ``indexer run`` on a scratch database is measured from the markers that
   ``tests/crashpoints.py`` writes (start-up, discovery, reads, the write transaction, the alerts after it).
2. A seeded RNG (seed printed; ``CRASH_SEED=<n>`` replays it) draws the kill moments from that cycle, spread
   over its phases: a time after start-up, or a time after discovery / reads / the commit begins, or a point
   inside the snapshot's transaction (after its position rows, after its price rows, just before COMMIT).
3. Each moment: the chain moves (a block; sometimes users supply and borrow, or an oracle moves), an
   ``indexer run`` starts on the killed store and gets SIGKILL at that moment.
4. A last process finishes a run at the final block and is stopped with SIGTERM; an uninterrupted
   ``indexer run`` on a separate database (same config) runs at the same block.
5. The latest snapshot of each protocol (every position, price and run column except ids, timings and request
   counts), the checkpoints, the known accounts and the watched address's alerts are equal; the killed store
   holds no run with missing or extra rows, no run twice, passes ``PRAGMA integrity_check`` and is at head.

The processes are forked by ``tests/crashpoints.py``'s fork server, so a restart does not spend seconds on
Python imports. Each one is still a new process. Start-up moments are SIGKILLed by the test; the other moments
are SIGKILLed by the process itself at its kill point.

Chain changes happen inside ``clean_chain`` (reverted afterwards).

Two deterministic tests cover the windows that the scenario found or that random moments rarely hit:

- a one-shot ``indexer snapshot`` killed between its commit and its alerts: the next start raises the alert,
  once;
- two alert evaluations at the same moment: a crossing alerts once.
"""

from __future__ import annotations

import json
import os
import random
import re
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from indexer.constants import WAD
from indexer.devnet.anvil import Anvil
from indexer.devnet.chain import DevChain
from indexer.devnet.seed import seeded_address
from indexer.store import schema
from tests.conftest import Comet, FreshDatabase, Market, fresh_database

REPO = Path(__file__).resolve().parents[1]
PROTOCOLS = ("aave-crash", "comet-crash")
INTERVAL_SECONDS = 1
# One process at a time: a killed one's leases must expire before its successor runs the jobs.
HEARTBEAT_SECONDS = 0.5
LEASE_SECONDS = 1
WATCH_BELOW = "1.3"  # the watched account starts near HF 1.45 and crosses below this once
PHASES = ("startup", "discovery", "reads", "write", "alerts")
MARKER = re.compile(r"^crashpoint (\w+|kill [\w:]+) t=([\d.]+) protocol=(\S+)(.*)$")
# Generous bounds for waits on 2 slow cores; no test asserts a duration.
WAIT_SECONDS = 90


# --- processes -------------------------------------------------------------------------------------------
class ForkServer:
    """``tests/crashpoints.py``'s fork server: ``indexer`` processes without seconds of imports each."""

    def __init__(self, tmp_path: Path) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("INDEXER_") and k != "CRASHPOINT"}
        env["PYTHONPATH"] = os.pathsep.join([str(REPO), *filter(None, [env.get("PYTHONPATH")])])
        self.tmp_path = tmp_path
        self.popen = subprocess.Popen(
            [sys.executable, "-c", "import tests.crashpoints as c; c.serve()"],
            cwd=tmp_path, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1,
        )  # fmt: skip
        self.procs: list[Proc] = []

    def ask(self, request: dict[str, Any]) -> str:
        assert self.popen.stdin is not None and self.popen.stdout is not None
        self.popen.stdin.write(json.dumps(request) + "\n")
        answer = self.popen.stdout.readline().strip()
        assert answer, f"the fork server ended (exit code {self.popen.poll()})"
        return answer

    def start(self, name: str, cfg: Path, db_url: str, *, crashpoint: str | None = None, command: str = "run") -> Proc:
        """``indexer <command> --config cfg --database-url db_url``, killing itself at ``crashpoint`` (None: never)."""
        log = self.tmp_path / f"{name}.log"
        pid = int(self.ask({"argv": [command, "--config", str(cfg), "--database-url", db_url], "log": str(log), "crashpoint": crashpoint}))
        proc = Proc(self, pid, log)
        self.procs.append(proc)
        poll(lambda: any(ph == "start" for ph, _, _, _ in proc.markers()), f"{name} to start", [proc])
        proc.started = next(t for ph, t, _, _ in proc.markers() if ph == "start")
        return proc

    def close(self) -> None:
        for proc in self.procs:
            if proc.exit_code() is None:
                proc.stop(signal.SIGKILL)
        assert self.popen.stdin is not None
        self.popen.stdin.close()
        self.popen.wait(timeout=30)


@dataclass
class Proc:
    """A forked ``indexer`` process with the kill points installed; its stderr in a file."""

    server: ForkServer
    pid: int
    log: Path
    started: float = 0.0  # time.time() of its "start" marker

    def text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def markers(self) -> list[tuple[str, float, str, dict[str, str]]]:
        """(phase, time, protocol, fields) of every complete marker line."""
        out = []
        for line in self.text().split("\n")[:-1]:
            if m := MARKER.match(line):
                fields = dict(kv.split("=", 1) for kv in m.group(4).split())
                out.append((m.group(1), float(m.group(2)), m.group(3), fields))
        return out

    def done_at(self, block: int) -> set[str]:
        """Protocols whose run at ``block`` returned in this process."""
        return {p for phase, _, p, f in self.markers() if phase == "done" and int(f["block"]) == block}

    def exit_code(self) -> int | None:
        """None while it runs; else its exit code (negative: the signal that ended it)."""
        answer = self.server.ask({"status": self.pid})
        return None if answer == "running" else int(answer)

    def wait(self, timeout: float) -> int | None:
        deadline = time.monotonic() + timeout
        while (code := self.exit_code()) is None and time.monotonic() < deadline:
            time.sleep(0.02)
        return code

    def stop(self, sig: int = signal.SIGKILL) -> int:
        """Send ``sig`` and wait for the end; its exit code."""
        if self.exit_code() is None:
            os.kill(self.pid, sig)
        code = self.wait(60)
        assert code is not None, f"{self.log.name} did not end after signal {sig}"
        return code


def poll(condition: Callable[[], bool], what: str, procs: list[Proc], timeout: float = WAIT_SECONDS) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        for p in procs:
            code = p.exit_code()
            assert code is None, f"{p.log.name} exited with {code} while waiting for {what}:\n{p.text()[-4000:]}"
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}:\n" + "\n".join(p.text()[-3000:] for p in procs))
        time.sleep(0.05)


# --- the market and the chain's changes ------------------------------------------------------------------
@dataclass
class Scene:
    """The fixtures the processes index, and the users the test adds."""

    chain: DevChain
    aave: Market
    comet: Comet
    watched: str  # an Aave account near HF 1.45, watched below WATCH_BELOW
    weth_price: int  # its collateral's price at the start, USD x 1e8
    added: int = 0  # users added so far

    def add_users(self) -> None:
        """A new Aave user and a new Comet user supply collateral and borrow (several blocks)."""
        fx, cx = self.aave.fixture, self.comet.fixture
        i = self.added = self.added + 1
        user, cuser = seeded_address(7001, i), seeded_address(7002, i)
        self.chain.fund([user, cuser])
        fx.do([*fx.supply_txs(user, "WETH", 2 * 10**18), fx.borrow_tx(user, "USDC", (1000 + 97 * i) * 10**6)])
        cx.do([*cx.supply_collateral_txs(cuser, "WETH", 2 * 10**18), cx.borrow_tx(cuser, (1500 + 89 * i) * 10**6)])

    def nudge_prices(self, rng: random.Random) -> None:
        """Oracle answers move a little (every position's value with them); the watched account stays above its bound."""
        self.aave.fixture.set_price("LINK", int(15 * 10**8 * rng.uniform(0.97, 1.03)))
        self.comet.fixture.set_price("WBTC", int(60000 * 10**8 * rng.uniform(0.97, 1.03)))

    def cross(self) -> None:
        """The watched account's collateral falls 12 %: its HF crosses below WATCH_BELOW (a "warning" alert)."""
        self.aave.fixture.set_price("WETH", self.weth_price * 88 // 100)


def _scene(chain: DevChain, aave: Market, comet: Comet) -> Scene:
    """A new Aave account supplies 10 WETH and borrows USDC to HF 1.45: the account the test watches."""
    fx = aave.fixture
    watched = seeded_address(7000, 0)
    weth = fx.price("WETH")
    chain.fund([watched])
    supply = 10 * 10**18
    # HF = collateral x LT / debt = 1.45 at the current WETH price.
    debt_usd = supply * weth // 10**8 * fx.asset("WETH").spec.liquidation_threshold // 10_000 * 100 // 145 // 10**18
    fx.do([*fx.supply_txs(watched, "WETH", supply), fx.borrow_tx(watched, "USDC", debt_usd * 10**6)])
    hf = fx.account_data(watched)[5]
    assert 1.40 < hf / WAD < 1.50, hf
    return Scene(chain, aave, comet, watched, weth)


def write_config(path: Path, anvil: Anvil, scene: Scene, protocols: tuple[str, ...] = PROTOCOLS) -> Path:
    """Both fixtures (or those of ``protocols``), the watched account, short intervals and leases."""
    aave = f"""
[[protocols]]
name = "{PROTOCOLS[0]}"
kind = "aave_v3"
chain = "local"
pool_addresses_provider = "{scene.aave.fixture.provider}"
start_block = 0
interval_seconds = {INTERVAL_SECONDS}
"""
    comet = f"""
[[protocols]]
name = "{PROTOCOLS[1]}"
kind = "compound_v3"
chain = "local"
comet = "{scene.comet.fixture.comet}"
start_block = 0
interval_seconds = {INTERVAL_SECONDS}
"""
    path.write_text(
        f"""log_level = "INFO"
[chains.local]
rpc_url = "{anvil.url}"
chain_id = 31337
confirmations = 0
[scale_out]
heartbeat_seconds = {HEARTBEAT_SECONDS}
lease_seconds = {LEASE_SECONDS}
[alerts]
cooldown_seconds = 0
watch = [{{ address = "{scene.watched}", below = "{WATCH_BELOW}", label = "crash-test" }}]
{aave if PROTOCOLS[0] in protocols else ""}{comet if PROTOCOLS[1] in protocols else ""}"""
    )
    return path


# --- the cycle and the moments ---------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Cycle:
    """Durations (seconds) of the phases of one uninterrupted cycle, both jobs together."""

    startup: float  # process start -> the first job starts
    discovery: float  # first discovery begins -> first reads begin
    reads: float  # first reads begin -> first write begins
    alerts: float  # first commit returned -> last run returned

    def describe(self) -> str:
        return f"startup {self.startup:.2f}s, discovery {self.discovery:.2f}s, reads {self.reads:.2f}s, after commit {self.alerts:.3f}s"


def measure_cycle(proc: Proc) -> Cycle:
    """The phases of ``proc``'s first cycle, from its markers (the first of each phase, whichever job wrote it)."""
    first: dict[str, float] = {}
    last_done = 0.0
    for phase, t, _, _ in proc.markers():
        first.setdefault(phase, t)
        if phase == "done":
            last_done = max(last_done, t)
    return Cycle(
        startup=first["run"] - proc.started,
        discovery=first["reads"] - first["discovery"],
        reads=first["write"] - first["reads"],
        alerts=max(last_done - first["committed"], 0.001),
    )


@dataclass(frozen=True, slots=True)
class Moment:
    """When a process is killed: ``delay`` seconds after its start (start-up), or at its kill point."""

    phase: str  # one of PHASES
    crashpoint: str | None  # CRASHPOINT for the process (None: the test kills it after ``delay``)
    delay: float  # seconds after the process started (start-up moments only)
    change: str  # what the chain does before this process starts: "block", "users" or "prices"

    def describe(self) -> str:
        when = f"{self.delay:.2f}s after start" if self.crashpoint is None else self.crashpoint
        return f"{self.phase:9} {when:26} (chain before it: {self.change})"


def draw_moments(rng: random.Random, cycle: Cycle, kills: int) -> list[Moment]:
    """``kills`` moments, the phases in equal shares (shuffled), each drawn within its measured phase."""
    phases = [PHASES[i % len(PHASES)] for i in range(kills)]
    rng.shuffle(phases)
    out = []
    for phase in phases:
        change = rng.choice(("block", "block", "users", "prices"))
        if phase == "startup":
            out.append(Moment(phase, None, rng.uniform(0.05, cycle.startup), change))
        elif phase == "write":
            out.append(Moment(phase, rng.choice(("tx:positions", "tx:prices", "tx:commit")), 0.0, change))
        else:
            span = {"discovery": cycle.discovery, "reads": cycle.reads, "alerts": cycle.alerts}[phase]
            point = {"discovery": "discovery", "reads": "reads", "alerts": "committed"}[phase]
            out.append(Moment(phase, f"{point}+{rng.uniform(0, span):.4f}", 0.0, change))
    return out


# --- the stores ------------------------------------------------------------------------------------------
RUN_IGNORED = {"id", "created_at", "duration_seconds", "rpc_requests", "rpc_errors"}
ROW_IGNORED = {"id", "run_id"}


def _select(db: FreshDatabase, table: str, ignored: set[str], where: str) -> list[tuple[Any, ...]]:
    cols = [c for c in db.columns(table) if c not in ignored]
    return sorted((tuple(str(v) for v in r) for r in db.rows(f"SELECT {', '.join(cols)} FROM {table} WHERE {where}")), key=str)


def latest_snapshot(db: FreshDatabase, protocol: str) -> dict[str, Any]:
    """The protocol's latest canonical run and its rows, without ids, timings and request counts."""
    run_id = db.scalar(f"SELECT max(id) FROM snapshot_runs WHERE protocol = '{protocol}' AND status = 'canonical'")
    assert run_id is not None, f"no run of {protocol}"
    return {
        "run": _select(db, "snapshot_runs", RUN_IGNORED, f"id = {run_id}"),
        "positions": _select(db, "position_snapshots", ROW_IGNORED, f"run_id = {run_id}"),
        "prices": _select(db, "price_snapshots", ROW_IGNORED, f"run_id = {run_id}"),
    }


def store_summary(db: FreshDatabase) -> dict[str, Any]:
    """What both stores must agree on."""
    return {
        "latest": {p: latest_snapshot(db, p) for p in PROTOCOLS},
        "checkpoints": db.rows("SELECT chain, protocol, block_number, block_hash FROM checkpoints ORDER BY protocol"),
        "known_accounts": db.rows("SELECT protocol, account, market FROM known_accounts ORDER BY protocol, account, market"),
        "alerts": db.rows("SELECT address, protocol, market, from_tier, to_tier FROM alerts ORDER BY id"),
        "alert_states": db.rows("SELECT address, tier FROM alert_states ORDER BY address"),
    }


def check_invariants(db: FreshDatabase, prices_per_run: dict[str, int]) -> None:
    """Nothing half-written and nothing twice in the killed store; the file is sound and at the schema's head."""
    short = db.rows(
        "SELECT r.id, r.protocol, r.positions, count(p.id) FROM snapshot_runs r LEFT JOIN position_snapshots p ON p.run_id = r.id "
        "GROUP BY r.id, r.protocol, r.positions HAVING r.positions <> count(p.id)"
    )
    assert not short, f"runs whose stored positions differ from their own count: {short}"
    for run_id, protocol, n in db.rows(
        "SELECT r.id, r.protocol, count(p.id) FROM snapshot_runs r LEFT JOIN price_snapshots p ON p.run_id = r.id GROUP BY r.id, r.protocol"
    ):
        assert n == prices_per_run[protocol], f"run {run_id} of {protocol} has {n} prices, every run of it has {prices_per_run[protocol]}"
    assert not db.rows(
        "SELECT protocol, shard, block_hash, count(*) FROM snapshot_runs GROUP BY protocol, shard, block_hash HAVING count(*) > 1"
    ), "a block stored twice"
    # Accounts are committed with the run that discovered them: each one's first_seen_block is a stored run's block.
    orphans = db.rows(
        "SELECT k.protocol, k.account, k.first_seen_block FROM known_accounts k WHERE NOT EXISTS "
        "(SELECT 1 FROM snapshot_runs r WHERE r.protocol = k.protocol AND r.shard = 0 AND r.block_number = k.first_seen_block)"
    )
    assert not orphans, f"known accounts without the run that discovered them: {orphans[:5]}"
    # The checkpoint is the newest run's block, with its hash.
    for protocol, number, block_hash in db.rows("SELECT protocol, block_number, block_hash FROM checkpoints"):
        newest = db.rows(f"SELECT block_number, block_hash FROM snapshot_runs WHERE protocol = '{protocol}' ORDER BY block_number DESC LIMIT 1")
        assert newest == [(number, block_hash)], (protocol, number, newest)
    if db.backend == "sqlite":
        assert db.rows("PRAGMA integrity_check") == [("ok",)]
        assert db.rows("PRAGMA foreign_key_check") == []
    state = schema.current_state(db.url)
    assert state.versioned and state.revision == schema.head_revision(), state


# --- the scenario ----------------------------------------------------------------------------------------
def crash_scenario(tmp_path: Path, anvil: Anvil, scene: Scene, backend: str, kills: int) -> None:
    seed = int(os.environ.get("CRASH_SEED") or secrets.randbelow(2**32))
    rng = random.Random(seed)
    cfg = write_config(tmp_path / "indexer.toml", anvil, scene)
    server = ForkServer(tmp_path)
    with fresh_database(backend, tmp_path) as scratch, fresh_database(backend, tmp_path) as store, fresh_database(backend, tmp_path) as reference:
        try:
            # 1. One uninterrupted cycle on a scratch database: the phases the kill moments are drawn from.
            probe = server.start("measure", cfg, scratch.url)
            poll(lambda: len({p for ph, _, p, _ in probe.markers() if ph == "done"}) == len(PROTOCOLS), "one measured cycle", [probe])
            probe.stop(signal.SIGTERM)
            cycle = measure_cycle(probe)
            moments = draw_moments(rng, cycle, kills)
            print(f"\ncrash test on {backend}: CRASH_SEED={seed}; measured cycle: {cycle.describe()}")
            for i, m in enumerate(moments, 1):
                print(f"  kill {i:2}: {m.describe()}")

            # 2. Change the chain, start, kill; again.
            killed: list[list[str]] = []
            cross_at = kills - max(1, kills // 4)  # the watched account crosses its bound before one of the last kills
            for i, moment in enumerate(moments):
                scene.chain.mine()
                if moment.change == "users":
                    scene.add_users()
                elif moment.change == "prices":
                    scene.nudge_prices(rng)
                if i == cross_at:
                    scene.cross()
                proc = server.start(f"kill-{i + 1:02}", cfg, store.url, crashpoint=moment.crashpoint)
                if moment.crashpoint is None:
                    time.sleep(max(0.0, proc.started + moment.delay - time.time()))
                    os.kill(proc.pid, signal.SIGKILL)
                code = proc.wait(WAIT_SECONDS)
                if code is None:
                    proc.stop(signal.SIGKILL)
                    raise AssertionError(f"kill {i + 1} ({moment.describe()}) never came:\n{proc.text()[-4000:]}")
                assert code == -signal.SIGKILL, f"kill {i + 1}: the process exited with {code} before its moment:\n{proc.text()[-4000:]}"
                killed.append(list(dict.fromkeys(ph for ph, _, _, _ in proc.markers())))
            for i, phases in enumerate(killed, 1):
                print(f"  kill {i:2} died after: {' > '.join(phases)}")

            # 3. The last process runs at the final block; an uninterrupted one does the same on a separate database.
            final_block = scene.chain.block_number()
            last = server.start("last", cfg, store.url)
            ref = server.start("reference", cfg, reference.url)
            poll(lambda: last.done_at(final_block) == ref.done_at(final_block) == set(PROTOCOLS), f"runs at the final block {final_block}", [last, ref])
            codes = (last.stop(signal.SIGTERM), ref.stop(signal.SIGTERM))
            assert codes == (0, 0), f"SIGTERM exit codes {codes}:\n{last.text()[-3000:]}\n{ref.text()[-3000:]}"
        finally:
            server.close()

        # 4. The same store as the uninterrupted run's; the killed store's invariants.
        got, want = store_summary(store), store_summary(reference)
        for protocol in PROTOCOLS:
            assert got["latest"][protocol] == want["latest"][protocol], f"{protocol}: the latest snapshot differs (CRASH_SEED={seed})"
        assert got == want, f"the stores differ (CRASH_SEED={seed})"
        assert want["alerts"] == [(scene.watched, PROTOCOLS[0], "", "healthy", "warning")], want["alerts"]
        check_invariants(store, {p: len(want["latest"][p]["prices"]) for p in PROTOCOLS})
        runs = store.scalar("SELECT count(*) FROM snapshot_runs")
        print(f"  final block {final_block}: the stores are equal; the killed one holds {runs} runs (CRASH_SEED={seed})")


@pytest.fixture()
def scene(clean_chain: DevChain, market_v35: Market, comet: Comet) -> Iterator[Scene]:
    """The watched account on the v3.5 Aave fixture, and the Comet fixture; every change reverted afterwards."""
    yield _scene(clean_chain, market_v35, comet)


def test_sigkill_at_random_moments_then_restart_stores_what_an_uninterrupted_run_stores(anvil: Anvil, scene: Scene, tmp_path: Path) -> None:
    crash_scenario(tmp_path, anvil, scene, "sqlite", kills=20)


def test_sigkill_on_postgresql(anvil: Anvil, scene: Scene, tmp_path: Path) -> None:
    crash_scenario(tmp_path, anvil, scene, "postgresql", kills=5)


def test_a_run_killed_between_its_commit_and_its_alerts_alerts_when_the_block_is_found_stored(anvil: Anvil, scene: Scene, tmp_path: Path) -> None:
    """``indexer snapshot`` dies right after the commit of a run in which the watched account crossed its bound;
    the next one finds the block stored (nothing new to write) and still raises the alert, once."""
    cfg = write_config(tmp_path / "aave.toml", anvil, scene, protocols=PROTOCOLS[:1])
    scene.cross()
    server = ForkServer(tmp_path)
    with fresh_database("sqlite", tmp_path) as db:
        try:
            first = server.start("snapshot-killed", cfg, db.url, command="snapshot", crashpoint="at:committed")
            assert first.wait(WAIT_SECONDS) == -signal.SIGKILL, first.text()[-3000:]
            assert db.scalar("SELECT count(*) FROM snapshot_runs") == 1 and db.scalar("SELECT count(*) FROM alerts") == 0
            again = server.start("snapshot-again", cfg, db.url, command="snapshot")
            assert again.wait(WAIT_SECONDS) == 0, again.text()[-3000:]
            assert [f["stored"] for ph, _, _, f in again.markers() if ph == "done"] == ["already"]
            assert db.rows("SELECT address, from_tier, to_tier FROM alerts") == [(scene.watched, "healthy", "warning")]
            third = server.start("snapshot-third", cfg, db.url, command="snapshot")
            assert third.wait(WAIT_SECONDS) == 0, third.text()[-3000:]
            assert db.scalar("SELECT count(*) FROM alerts") == 1, "evaluated again, alerted once"
        finally:
            server.close()


@pytest.mark.parametrize("state_before", ["none", "healthy"])
def test_two_evaluations_at_once_alert_a_crossing_once(any_db: FreshDatabase, state_before: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two jobs' threads (or processes) evaluate the same crossing at the same moment, as the scenario above once
    caught: both read the alert states before either writes. The compare-and-set on the states lets one alert; the
    other reads again and finds the crossing alerted already. With no state row yet (both insert one) and with a
    "healthy" one (both update it); on SQLite and PostgreSQL."""
    import indexer.alerts as alerts
    from indexer.store.db import make_engine, write_snapshot
    from indexer.store.watch import alert_states, list_alerts, upsert_watch
    from tests.test_alerts import WATCHED, alert_settings, hf
    from tests.test_store import block, position, snapshot

    engine = make_engine(any_db.url)
    settings = alert_settings(any_db.url, None)
    upsert_watch(engine, WATCHED, hf("1.2"), "")
    if state_before == "healthy":
        blk = block(1000)
        write_snapshot(engine, snapshot(blk, (position(WATCHED, hf("1.5"), blk),)))
        assert alerts.evaluate_alerts(engine, settings) == [] and alert_states(engine)[WATCHED].tier == "healthy"
    blk = block(1001)
    run_id, _ = write_snapshot(engine, snapshot(blk, (position(WATCHED, hf("1.1"), blk),)))
    barrier = threading.Barrier(2, timeout=30)
    read_once = threading.local()
    original = alerts.current_positions

    def in_step(*args: Any) -> Any:
        rows = original(*args)
        if not getattr(read_once, "done", False):  # the first read of each thread: both have read before either writes
            read_once.done = True
            barrier.wait()
        return rows

    monkeypatch.setattr(alerts, "current_positions", in_step)
    raised: list[int] = []
    threads = [threading.Thread(target=lambda: raised.append(len(alerts.evaluate_alerts(engine, settings, [run_id])))) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(raised) == [0, 1]
    assert [(a.from_tier, a.to_tier) for a in list_alerts(engine)] == [("healthy", "warning")]
    engine.dispose()
