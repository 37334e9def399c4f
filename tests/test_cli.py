"""The ``indexer`` command as a user runs it: subprocesses, real files, real anvil."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from sqlmodel import Session, func, select

from indexer.devnet.anvil import free_port
from indexer.store.db import make_engine
from indexer.store.models import SnapshotRun
from tests.conftest import Market, indexer

SECRET = "s3cr3t-api-key"


def write_config(path: Path, rpc_url: str, provider: str, *, extra: str = "", db: str = "sqlite:///indexer.db", proto: str = "", tail: str = "") -> Path:
    """A config of the local chain (``extra``: more chain keys) and its Aave instance (``proto``: more keys), then ``tail``."""
    path.write_text(
        f"""database_url = "{db}"
[chains.local]
rpc_url = "{rpc_url}"
chain_id = 31337
confirmations = 0
{extra}
[[protocols]]
name = "aave-local"
kind = "aave_v3"
chain = "local"
pool_addresses_provider = "{provider}"
interval_seconds = 1
{proto}
{tail}
"""
    )
    return path


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("unknown_key", "unknown key 'chains.local.rpc_ur'"),
        ("bad_address", "protocols.0.pool_addresses_provider: '0x1234' is not a 20-byte"),
        ("unreachable", "chains.local.rpc_url: node at http://127.0.0.1:"),
        ("bad_kind", "unknown protocol kind 'aave_v9'"),
        ("missing_file", "config file"),
    ],
)
def test_bad_config_is_one_line_exit_2_and_writes_nothing(case: str, expected: str, tmp_path: Path) -> None:
    provider = "0x2f39d218133AFaB8F2B819B1066c7E434Ad94E9e"
    url = f"http://127.0.0.1:{free_port()}/v2/{SECRET}"  # nothing listens there
    cfg = write_config(tmp_path / "c.toml", url, provider)
    text = cfg.read_text()
    if case == "unknown_key":
        cfg.write_text(text.replace("rpc_url =", "rpc_ur = 1\nrpc_url ="))
    elif case == "bad_address":
        cfg.write_text(text.replace(provider, "0x1234"))
    elif case == "bad_kind":
        cfg.write_text(text.replace('"aave_v3"', '"aave_v9"'))
    elif case == "missing_file":
        cfg = tmp_path / "nope.toml"
    proc = indexer("snapshot", "--config", str(cfg), cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and expected in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr and SECRET not in proc.stderr + proc.stdout
    assert not (tmp_path / "indexer.db").exists(), "nothing is written"


def test_bad_cli_arguments_exit_2(tmp_path: Path) -> None:
    proc = indexer("account", "0xnot-an-address", cwd=tmp_path)
    assert proc.returncode == 2 and "ADDRESS:" in proc.stderr
    proc = indexer("at-risk", "--below", "abc", cwd=tmp_path)
    assert proc.returncode == 2 and "--below" in proc.stderr
    proc = indexer("at-risk", "--json", cwd=tmp_path)  # no database yet
    assert proc.returncode == 1 and "does not exist" in proc.stderr
    assert not (tmp_path / "indexer.db").exists()


def test_snapshot_then_queries(market_v35: Market, anvil, tmp_path: Path, clean_chain) -> None:  # type: ignore[no-untyped-def]
    cfg = write_config(tmp_path / "c.toml", anvil.url, market_v35.fixture.provider)
    proc = indexer("snapshot", "--config", str(cfg), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "aave-local: block" in proc.stdout and "positions" in proc.stdout
    fx = market_v35.fixture
    fx.set_price("WETH", fx.price("WETH") * 7 // 10)
    fx.set_price("wstETH", fx.price("wstETH") * 7 // 10)
    assert indexer("snapshot", "--config", str(cfg), cwd=tmp_path).returncode == 0

    rows = json.loads(indexer("at-risk", "--json", "--below", "1.05", "--config", str(cfg), cwd=tmp_path).stdout)
    assert rows and any(r["liquidatable"] for r in rows)
    for r in rows:
        assert {"address", "protocol", "health_factor", "health_factor_float", "liquidatable", "collateral_usd", "debt_usd", "nlv_usd", "block_number"} <= set(r)
        assert int(r["health_factor"]) < 105 * 10**16
        assert r["liquidatable"] == (int(r["health_factor"]) < 10**18)
    hfs = [int(r["health_factor"]) for r in rows]
    assert hfs == sorted(hfs)

    address = rows[0]["address"]
    out = json.loads(indexer("account", address.lower(), "--json", "--config", str(cfg), cwd=tmp_path).stdout)
    assert set(out) == {"address", "portfolio", "positions", "history"} and out["address"] == address and out["history"] is None
    latest = out["positions"]
    history = json.loads(indexer("account", address, "--json", "--history", "--config", str(cfg), cwd=tmp_path).stdout)["history"]
    assert len(latest) == 1 and latest[0]["health_factor"] == rows[0]["health_factor"]
    assert len(history) == 2 and history[-1] == latest[0] and int(history[0]["health_factor"]) > int(history[1]["health_factor"])
    # the portfolio of a one-position address is that position
    portfolio = out["portfolio"]
    assert portfolio["lowest_health_factor"] == latest[0]["health_factor"] and portfolio["market_nlv_usd"] == latest[0]["nlv_usd"]
    assert portfolio["tier"] == ("liquidation" if latest[0]["liquidatable"] else "critical")
    first = portfolio["levels"]["first_liquidation"]
    assert first == 0.0 if latest[0]["liquidatable"] else (first is None or first > 0)
    tables = indexer("account", address, "--history", "--config", str(cfg), cwd=tmp_path)
    assert tables.returncode == 0 and "liquidation NLV $" in tables.stdout and "history" in tables.stdout, tables.stderr
    table = indexer("at-risk", "--config", str(cfg), cwd=tmp_path)
    assert table.returncode == 0 and "health factor" in table.stdout
    # A protocol name with no stored snapshot (a typo) is an error naming the stored ones, not an empty list.
    typo = indexer("at-risk", "--protocol", "aave-locl", "--config", str(cfg), cwd=tmp_path)
    assert typo.returncode == 2 and "aave-locl" in typo.stderr and "aave-local" in typo.stderr


def test_run_schedules_snapshots_until_stopped(market_v35: Market, anvil, tmp_path: Path, clean_chain) -> None:  # type: ignore[no-untyped-def]
    db = tmp_path / "run.db"
    cfg = write_config(tmp_path / "c.toml", anvil.url, market_v35.fixture.provider, db=f"sqlite:///{db}")
    env = {k: v for k, v in os.environ.items() if not k.startswith("INDEXER_")}
    proc = subprocess.Popen([sys.executable, "-m", "indexer.cli", "run", "--config", str(cfg)], cwd=tmp_path, env=env, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        runs = 0
        while time.monotonic() < deadline and runs < 2:
            time.sleep(0.5)
            if db.exists():
                with Session(make_engine(f"sqlite:///{db}")) as s:
                    runs = int(s.exec(select(func.count()).select_from(SnapshotRun)).one())
            if runs < 2:
                clean_chain.mine()  # a new block, so the next run stores a new snapshot
        assert runs >= 2, "the scheduler ran the job repeatedly"
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "snapshot protocol=aave-local" in err and "block=" in err and "rpc_requests=" in err


def test_demo_leaves_a_database_at_risk_reads(tmp_path: Path) -> None:
    proc = indexer("demo", "--accounts", "120", "--rounds", "4", "--seed", "7", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "round 4/4" in proc.stdout and "riskiest accounts" in proc.stdout
    assert (tmp_path / "indexer.db").exists()
    out = indexer("at-risk", "--json", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    rows = json.loads(out.stdout)
    assert any(r["liquidatable"] for r in rows), "the falling market liquidates some demo accounts"
    # The three lending and two perps protocols run in the demo and are reported under their names and kinds.
    assert {(r["protocol"], r["kind"]) for r in rows} == {
        ("aave-v3-demo", "aave_v3"),
        ("compound-v3-demo", "compound_v3"),
        ("morpho-blue-demo", "morpho_blue"),
        ("synthetix-perps-demo", "synthetix_perps_v2"),
        ("gmx-v2-demo", "gmx_v2"),
    }
    assert all(r["market"].startswith("0x") == (r["kind"] in ("morpho_blue", "synthetix_perps_v2", "gmx_v2")) for r in rows)
    gmx = next(r for r in rows if r["kind"] == "gmx_v2")
    assert {"position_key", "remaining_collateral_usd_1e30", "liquidation_index_price"} <= set(gmx["details"])
    # One address's positions in every protocol, side by side.
    everyone = json.loads(indexer("at-risk", "--json", "--below", "1000000", cwd=tmp_path).stdout)
    kinds: dict[str, set[str]] = {}
    for r in everyone:
        kinds.setdefault(r["address"], set()).add(r["kind"])
    address = next(a for a, k in kinds.items() if len(k) == 5)
    mine = json.loads(indexer("account", address, "--json", cwd=tmp_path).stdout)
    assert {r["kind"] for r in mine["positions"]} == {"aave_v3", "compound_v3", "morpho_blue", "synthetix_perps_v2", "gmx_v2"}
    assert {p["kind"] for p in mine["portfolio"]["positions"]} == {r["kind"] for r in mine["positions"]}


def test_rpc_secret_never_reaches_logs_or_the_database(market_v35: Market, anvil, tmp_path: Path, clean_chain) -> None:  # type: ignore[no-untyped-def]
    """An API key in the URL (query and user info) is redacted in every log line and never stored."""
    url = anvil.url.replace("http://", f"http://user:{SECRET}@") + f"/?apikey={SECRET}"
    db = tmp_path / "secret.db"
    cfg = write_config(tmp_path / "c.toml", url, market_v35.fixture.provider, db=f"sqlite:///{db}")
    proc = indexer("snapshot", "--config", str(cfg), cwd=tmp_path, env={"INDEXER_LOG_LEVEL": "DEBUG"})
    assert proc.returncode == 0, proc.stderr
    assert "snapshot protocol=aave-local" in proc.stderr
    assert SECRET not in proc.stdout + proc.stderr
    for path in tmp_path.glob("secret.db*"):
        assert SECRET.encode() not in path.read_bytes()


def test_redact_url_keeps_only_scheme_host_port() -> None:
    from indexer.chain.rpc import redact_url

    assert redact_url("https://eth-mainnet.example/v2/KEY") == "https://eth-mainnet.example/***"
    assert redact_url("https://u:KEY@host.example:8443/?apikey=KEY") == "https://host.example:8443/***"
    assert redact_url("http://127.0.0.1:8545") == "http://127.0.0.1:8545"
    assert "KEY" not in redact_url("wss://host/KEY#frag")


def test_scheduler_jobs_never_overlap_and_coalesce(tmp_path: Path) -> None:
    from indexer.chain.rpc import RpcClient
    from indexer.config import load_settings
    from indexer.scheduler import build_scheduler
    from indexer.store.db import make_engine

    cfg = write_config(tmp_path / "c.toml", "http://127.0.0.1:1", "0x2f39d218133AFaB8F2B819B1066c7E434Ad94E9e")
    settings = load_settings(cfg)
    clients = {"local": RpcClient(settings.chains["local"].rpc_url)}
    scheduler = build_scheduler(settings, make_engine(f"sqlite:///{tmp_path / 's.db'}"), clients)
    jobs = scheduler.get_jobs()
    assert [j.id for j in jobs] == ["snapshot:aave-local"]
    assert jobs[0].max_instances == 1 and jobs[0].coalesce is True
    assert jobs[0].args[3] is clients["local"], "jobs reuse the client connected at start"
    # The job's period is the protocol's configured interval_seconds (configuration, not a timing).
    assert jobs[0].trigger.interval == timedelta(seconds=settings.protocols[0].interval_seconds)


def test_demo_stopped_by_sigterm_stops_its_anvil(tmp_path: Path) -> None:
    import re

    from indexer.chain.rpc import RpcClient
    from indexer.errors import RpcUnreachable

    env = {k: v for k, v in os.environ.items() if not k.startswith("INDEXER_")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "indexer.cli", "demo", "--accounts", "3000", "--rounds", "20"],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    line = proc.stdout.readline()
    port = re.search(r"anvil on 127\.0\.0\.1:(\d+)", line)
    assert port, line
    node = RpcClient(f"http://127.0.0.1:{port.group(1)}", max_attempts=1, timeout=2)
    assert node.chain_id() == 31337
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=30)
    assert proc.returncode != 0
    with pytest.raises(RpcUnreachable):
        node.chain_id()


def test_snapshot_of_a_sharded_instance_reads_every_account_once_at_one_block(market_v35: Market, anvil, tmp_path: Path, clean_chain) -> None:  # type: ignore[no-untyped-def]
    """`indexer snapshot` runs every shard of a sharded instance at shard 0's block; together the shards
    read exactly the accounts the unsharded instance reads."""
    import sqlite3  # noqa: PLC0415

    provider = market_v35.fixture.provider
    db = tmp_path / "shards.db"
    cfg = write_config(tmp_path / "c.toml", anvil.url, provider, db=f"sqlite:///{db}")
    cfg.write_text(
        cfg.read_text()
        + f"""
[[protocols]]
name = "aave-sharded"
kind = "aave_v3"
chain = "local"
pool_addresses_provider = "{provider}"
shards = 3
"""
    )
    proc = indexer("snapshot", "--config", str(cfg), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "aave-sharded shard 2/3" in proc.stdout
    con = sqlite3.connect(db)
    runs = con.execute("SELECT protocol, shard, shards, block_number FROM snapshot_runs ORDER BY protocol, shard").fetchall()
    assert [(p, s, n) for p, s, n, _ in runs] == [("aave-local", 0, 1), ("aave-sharded", 0, 3), ("aave-sharded", 1, 3), ("aave-sharded", 2, 3)]
    assert len({b for _, _, _, b in runs}) == 1, "every shard at the same block"

    def accounts(protocol: str) -> list[str]:
        return sorted(r[0] for r in con.execute("SELECT account FROM position_snapshots WHERE protocol = ?", (protocol,)))

    assert len(accounts("aave-local")) >= 100
    assert accounts("aave-sharded") == accounts("aave-local"), "the shards read each account exactly once"
    per_shard = con.execute(
        "SELECT r.shard, count(*) FROM position_snapshots p JOIN snapshot_runs r ON p.run_id = r.id WHERE r.protocol = 'aave-sharded' GROUP BY r.shard"
    ).fetchall()
    assert len(per_shard) == 3 and all(n > 0 for _, n in per_shard)
