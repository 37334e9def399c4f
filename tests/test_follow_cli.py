"""``indexer follow`` as a user runs it: real subprocesses against the session's anvil and Aave market.

A snapshot per block, stored exactly as a full snapshot at the same block stores it; the ``[warm]`` section and
the flags reach the warm book; SIGTERM stops it cleanly; bad input is one line, exit 2, nothing written. The
chain's ``rpc_max_in_flight`` / ``rpc_batch_calls`` reach every Multicaller the indexer builds.
"""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from indexer.chain.rpc import RpcClient
from indexer.config import ChainConfig, WarmConfig, load_settings
from indexer.errors import ConfigError
from indexer.devnet.chain import DevChain
from indexer.devnet.seed import seeded_address
from indexer.pipeline import run_snapshot
from indexer.store.db import make_engine
from indexer.warm.book import WarmOptions
from indexer.warm.follow import warm_options
from tests.conftest import Market, indexer, settings_for
from tests.test_cli import write_config as cli_config

PROVIDER = "0x2f39d218133AFaB8F2B819B1066c7E434Ad94E9e"  # any address: bad input is refused before it is read
LINE = re.compile(
    r"^aave-local: block (\d+), (\d+) positions \((\d+) liquidatable\), (\d+) touched, (\d+) hot, (\d+) sampled, full read (\S+), (\d+) RPC requests, [0-9.]+s$"
)


def write_config(path: Path, rpc_url: str, provider: str, *, db: str, warm: str = "", chain: str = "", proto: str = "") -> Path:
    """``tests.test_cli.write_config`` with a ``[warm]`` section (``warm``: its keys)."""
    return cli_config(path, rpc_url, provider, extra=chain, db=db, proto=proto, tail=f"[warm]\n{warm}")


@pytest.fixture()
def aave_chain(devchain: DevChain, market_v35: Market) -> Iterator[DevChain]:
    """``clean_chain`` for the Aave market alone (the other protocols' markets are not needed here): the chain's
    state is restored after the test; the market is deployed before the snapshot."""
    snap = devchain.snapshot()
    yield devchain
    devchain.revert(snap)


def _rows(db: Path, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    con = sqlite3.connect(db)
    try:
        return sorted(tuple(r) for r in con.execute(sql, args).fetchall())
    finally:
        con.close()


def _stored(db: Path, block: int) -> dict[str, list[tuple[Any, ...]]]:
    """Every stored value of the run at ``block`` but ids, timings and request counts: positions field by field,
    prices, the run's block, market state and counts."""
    positions = _rows(
        db,
        "SELECT p.protocol, p.chain_id, p.account, p.market, p.block_number, p.health_factor, p.health_factor_float, p.liquidatable, "
        "p.collateral_usd, p.debt_usd, p.nlv_usd, p.liquidation_threshold_bps, p.price_drop_to_liquidation, p.legs, p.details, p.state, "
        "p.price_quality FROM position_snapshots p JOIN snapshot_runs r ON p.run_id = r.id WHERE r.block_number = ?",
        block,
    )
    prices = _rows(
        db,
        "SELECT x.asset, x.market, x.symbol, x.price, x.price_decimals, x.source, x.feed_answer, x.feed_updated_at, x.quality "
        "FROM price_snapshots x JOIN snapshot_runs r ON x.run_id = r.id WHERE r.block_number = ?",
        block,
    )
    runs = _rows(
        db,
        "SELECT chain, chain_id, protocol, kind, shard, shards, block_number, block_hash, block_timestamp, status, positions, liquidatable, market_state "
        "FROM snapshot_runs WHERE block_number = ?",
        block,
    )
    return {"positions": positions, "prices": prices, "runs": runs}


def test_follow_stores_a_snapshot_per_block_equal_to_a_full_snapshot(market_v35: Market, anvil: Any, rpc: RpcClient, tmp_path: Path, aave_chain: DevChain) -> None:
    fx, user = market_v35.fixture, seeded_address(9711, 1)
    db = tmp_path / "follow.db"
    # [warm] from the file (no sample, no hot re-reads, the periodic full read far away); --full-every overrides the file.
    cfg = write_config(tmp_path / "c.toml", anvil.url, fx.provider, db=f"sqlite:///{db}", warm="sample_size = 0\nfull_every = 1000\nhot_max = 0")
    aave_chain.fund([user])
    mint, approve, supply = fx.supply_txs(user, "WETH", 10**18)
    fx.do([mint, approve])
    start = aave_chain.block_number()
    aave_chain.increase_time(3600)
    fx.do(supply)  # start + 1: a new account
    fx.do(fx.borrow_tx(user, "USDC", 1500 * 10**6))  # start + 2: its debt
    fx.set_price("WETH", fx.price("WETH") * 7 // 10)  # start + 3: every WETH holder's health factor
    aave_chain.increase_time(86_400)
    aave_chain.mine()  # start + 4: a day of interest
    proc = indexer("follow", "--protocol", "aave-local", "--from-block", str(start), "--max-blocks", "5", "--full-every", "4", "--poll-seconds", "0.05", "--config", str(cfg), cwd=tmp_path, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.splitlines()
    assert len(lines) == 5, proc.stdout
    parsed = [LINE.match(line) for line in lines]
    assert all(parsed), lines
    blocks = [int(m.group(1)) for m in parsed if m]
    assert blocks == list(range(start, start + 5))
    fields = [(m.group(4), m.group(5), m.group(6), m.group(7)) for m in parsed if m]  # touched, hot, sampled, full read
    assert fields[0] == ("0", "0", "0", "start")
    assert fields[1] == ("1", "0", "0", "-") and fields[2] == ("1", "0", "0", "-"), "the supplier, then the borrower; [warm] sample_size = 0, hot_max = 0"
    assert fields[3] == ("0", "0", "0", "-"), "a price move touches no account: every verdict derived"
    assert fields[4][3] == "periodic", "--full-every 4 overrides full_every = 1000"
    assert "warm start protocol=aave-local" in proc.stderr and "warm refresh protocol=aave-local" in proc.stderr
    # A full snapshot of every block (`indexer snapshot --block B`'s run) stores the same positions, prices and market state.
    full_db = tmp_path / "full.db"
    settings = load_settings(cfg, database_url=f"sqlite:///{full_db}")
    full_engine = make_engine(settings.database_url)
    for block in blocks:
        run_snapshot(settings, settings.protocols[0], full_engine, rpc=rpc, at_block=block, recheck=False)
        warm, full = _stored(db, block), _stored(full_db, block)
        assert len(warm["runs"]) == 1 and warm["positions"], block
        for part in ("runs", "prices", "positions"):
            assert warm[part] == full[part], (block, part)
    liquidatable = [int(m.group(3)) for m in parsed if m]
    assert liquidatable[3] > liquidatable[2], "the price move liquidates someone (the comparison covers verdicts that change)"
    assert any(r[2] == user for r in _stored(db, start + 2)["positions"])
    assert _rows(db, "SELECT block_number FROM checkpoints") == [(start + 4,)]


def test_follow_stops_cleanly_on_sigterm(market_v35: Market, anvil: Any, tmp_path: Path, aave_chain: DevChain) -> None:
    db = tmp_path / "live.db"
    cfg = write_config(tmp_path / "c.toml", anvil.url, market_v35.fixture.provider, db=f"sqlite:///{db}", warm="poll_seconds = 0.05")
    env = {k: v for k, v in os.environ.items() if not k.startswith("INDEXER_")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "indexer.cli", "follow", "--protocol", "aave-local", "--config", str(cfg)],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    try:
        first = proc.stdout.readline()  # the start (a full read at the head)
        assert LINE.match(first.strip()), first
        aave_chain.mine()  # the follower polls the head and stores the new block
        second = proc.stdout.readline()
        assert LINE.match(second.strip()), second
    finally:
        proc.send_signal(signal.SIGTERM)
        rest, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err[-3000:]
    assert "Traceback" not in err
    printed = [int(m.group(1)) for line in [first, second, *rest.splitlines()] if (m := LINE.match(line.strip()))]
    assert printed[1] == printed[0] + 1
    stored = [r[0] for r in _rows(db, "SELECT block_number FROM snapshot_runs")]
    assert stored == printed, "every stored snapshot was printed, and only stored ones"


@pytest.mark.parametrize(
    ("args", "config", "expected"),
    [
        (("--protocol", "aave-locl"), {}, "--protocol: no protocol 'aave-locl' in the config (configured: aave-local)"),
        (("--protocol", "aave-local", "--max-blocks", "0"), {}, "--max-blocks: 0 must be >= 1"),
        (("--protocol", "aave-local", "--max-blocks", "-2"), {}, "--max-blocks: -2 must be >= 1"),
        (("--protocol", "aave-local", "--sample", "-1"), {}, "--sample: -1 must be >= 0"),
        (("--protocol", "aave-local", "--gmx-mode", "fast"), {}, "--gmx-mode: 'fast' is not a mode: pass one of auto, derive, reread"),
        (("--protocol", "aave-local", "--from-block", "{above}"), {}, "--from-block: {above} is above the head of chain 'local'"),
        (("--protocol", "aave-local"), {"proto": "shards = 2"}, "protocols.aave-local: the warm follower reads the whole instance; shards = 2"),
        (("--protocol", "aave-local"), {"warm": "sample_size = -1"}, "warm.sample_size must be >= 0"),
        (("--from-block", "3"), {}, "Missing option '--protocol'"),
    ],
    ids=[
        "unknown-protocol", "max-blocks-0", "max-blocks-negative", "negative-sample", "bad-gmx-mode",
        "from-block-above-head", "shards", "warm-negative-sample", "missing-protocol",
    ],
)  # fmt: skip
def test_bad_follow_input_is_one_line_exit_2_and_writes_nothing(args: tuple[str, ...], config: dict[str, str], expected: str, anvil: Any, rpc: RpcClient, tmp_path: Path) -> None:
    cfg = write_config(tmp_path / "c.toml", anvil.url, PROVIDER, db=f"sqlite:///{tmp_path / 'bad.db'}", **config)
    above = str(rpc.block_number() + 1000)
    proc = indexer("follow", *(a.replace("{above}", above) for a in args), "--config", str(cfg), cwd=tmp_path, timeout=60)
    assert proc.returncode == 2, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and expected.replace("{above}", above) in lines[0], proc.stderr
    assert proc.stdout == ""
    assert [p for p in tmp_path.iterdir() if p.name.startswith("bad.db")] == [], "nothing is written"


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ({"warm": 'gmx_mode = "fast"'}, "warm.gmx_mode must be one of 'auto', 'derive' or 'reread'"),
        ({"warm": "hot_band_bps = 10001"}, "warm.hot_band_bps must be <= 10000"),
        ({"warm": "cold_every = 0"}, "warm.cold_every must be >= 1"),
        ({"warm": "poll_seconds = 0"}, "warm.poll_seconds must be > 0"),
        ({"warm": "sampel_size = 3"}, "unknown key 'warm.sampel_size'"),
        ({"chain": "rpc_batch_calls = 0"}, "chains.local.rpc_batch_calls must be >= 1"),
        ({"chain": "rpc_max_in_flight = 65"}, "chains.local.rpc_max_in_flight must be <= 64"),
    ],
)
def test_bad_warm_and_chain_keys_name_the_key(config: dict[str, str], expected: str, tmp_path: Path) -> None:
    """The new keys are checked as every key is (the CLI turns the ConfigError into its one line, exit 2, above)."""
    cfg = write_config(tmp_path / "c.toml", "http://127.0.0.1:1", PROVIDER, db="sqlite:///unused.db", **config)
    with pytest.raises(ConfigError) as err:
        load_settings(cfg)
    assert expected in str(err.value)


def test_warm_section_builds_the_book_options(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every [warm] key that is a WarmOptions field reaches it (file < environment < flags); the defaults agree."""
    chain = ChainConfig(rpc_url="http://127.0.0.1:1", log_chunk_blocks=777)
    assert warm_options(WarmConfig(), chain) == WarmOptions(log_chunk_blocks=777), "WarmConfig's defaults are WarmOptions'"
    values = {"sample_size": 3, "seed": 9, "full_every": 5, "gmx_mode": "reread", "hot_band_bps": 250, "hot_max": 7, "cold_every": 4}
    body = "\n".join(f"{k} = {v!r}".replace("'", '"') for k, v in values.items()) + "\npoll_seconds = 0.5\nmax_lag_blocks = 3"
    cfg = tmp_path / "w.toml"
    cfg.write_text(f'[chains.local]\nrpc_url = "http://127.0.0.1:1"\nlog_chunk_blocks = 777\n[warm]\n{body}\n')
    monkeypatch.setenv("INDEXER_WARM__SEED", "11")
    settings = load_settings(cfg)
    assert (settings.warm.poll_seconds, settings.warm.max_lag_blocks) == (0.5, 3)
    options = warm_options(settings.warm, settings.chains["local"], sample_size=None, full_every=0)
    expected = {**values, "seed": 11, "full_every": 0, "log_chunk_blocks": 777}
    for name in WarmOptions.__dataclass_fields__:
        assert getattr(options, name) == expected[name], name


class _Built(Exception):
    """Raised by the recording Multicaller: what was asked is all the test needs."""


def test_chain_rpc_keys_reach_every_multicaller(anvil: Any, rpc: RpcClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import indexer.pipeline
    import indexer.warm.follow

    seen: list[dict[str, Any]] = []

    def record(_rpc: RpcClient, **kw: Any) -> None:
        seen.append(kw)
        raise _Built

    monkeypatch.setattr(indexer.pipeline, "Multicaller", record)
    monkeypatch.setattr(indexer.warm.follow, "Multicaller", record)
    cfg = write_config(tmp_path / "c.toml", anvil.url, PROVIDER, db=f"sqlite:///{tmp_path / 'm.db'}", chain="rpc_max_in_flight = 3\nrpc_batch_calls = 1")
    settings = load_settings(cfg)
    engine = make_engine(settings.database_url)
    with pytest.raises(_Built):
        run_snapshot(settings, settings.protocols[0], engine, rpc=rpc)
    with pytest.raises(_Built):
        indexer.warm.follow.WarmIndexer(settings, settings.protocols[0], engine, rpc=rpc)
    assert [(kw["max_in_flight"], kw["calls_per_request"]) for kw in seen] == [(3, 1), (3, 1)]
    assert (ChainConfig(rpc_url="http://x").rpc_max_in_flight, ChainConfig(rpc_url="http://x").rpc_batch_calls) == (4, 10)


def test_a_failed_store_starts_the_book_again_and_loses_no_account(
    market_v35: Market, anvil: Any, rpc: RpcClient, tmp_path: Path, aave_chain: DevChain, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A refresh whose snapshot could not be stored (the book moved on, the store did not) must not skip the new
    accounts of its blocks: the follower logs it and starts again with discovery from the stored checkpoint."""
    import indexer.warm.follow as follow_module
    from indexer.errors import StoreError
    from indexer.store.db import known_accounts

    fx, user = market_v35.fixture, seeded_address(9712, 1)
    settings, proto = settings_for(anvil, fx, f"sqlite:///{tmp_path / 'f.db'}")
    engine = make_engine(settings.database_url)
    warm = follow_module.WarmIndexer(settings, proto, engine, rpc=rpc)
    first = warm.start()
    aave_chain.fund([user])
    fx.do(fx.supply_txs(user, "WETH", 10**18))  # three blocks; the supply makes a new account
    real, failed = follow_module.write_snapshot, []

    def fail_once(engine: Any, snapshot: Any) -> Any:
        if snapshot.new_accounts and not failed:  # the supply's block: the refresh that found the account
            failed.append(snapshot.block.number)
            raise StoreError("database is locked")
        return real(engine, snapshot)

    monkeypatch.setattr(follow_module, "write_snapshot", fail_once)
    failed_book, results = warm.book, []
    deadline = time.monotonic() + 60  # a follower that did not start again would wait for a block forever
    assert warm.follow(max_blocks=3, poll_seconds=0.01, on_run=results.append, stop=lambda: time.monotonic() > deadline) == 3
    assert warm.book is not failed_book and "starting again with a full read" in caplog.text
    head = aave_chain.block_number()
    assert failed == [head]
    start = first.snapshot.block.number
    assert [r.snapshot.block.number for r in results] == [start + 1, start + 2, head] and results[-1].snapshot.accounts_read == len(warm.book.known)
    assert [r[0] for r in _rows(tmp_path / "f.db", "SELECT block_number FROM snapshot_runs")] == [start, start + 1, start + 2, head]
    assert any(k.account == user for k in known_accounts(engine, proto.name)), "the account of the unstored refresh is stored"
    assert any(p.account == user for p in results[-1].snapshot.positions)
