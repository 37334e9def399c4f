"""Retention (``indexer db prune``) on SQLite and PostgreSQL: recent runs all kept, older ones thinned to one
per bucket per protocol, and no account ever loses its latest stored position."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, func
from sqlmodel import Session, select

from indexer.domain import BlockRef, Position, PositionLeg, Snapshot
from indexer.errors import StoreError
from indexer.store.db import account_positions, make_engine, write_snapshot
from indexer.store.models import PositionSnapshot, SnapshotRun
from indexer.store.retention import prune
from tests.conftest import FreshDatabase, indexer

HOUR = 3600
NOW = 1_800_000_000  # "now" for the prune, unix seconds
WAD = 10**18


@pytest.fixture()
def store(any_db: FreshDatabase) -> Iterator[tuple[Engine, str]]:
    """A store on a fresh database of each backend (conftest.fresh_database)."""
    engine = make_engine(any_db.url)
    yield engine, any_db.url
    engine.dispose()


def _snap(protocol: str, number: int, ts: int, accounts: list[str]) -> Snapshot:
    ref = BlockRef(1, number, f"0x{number:064x}", ts)
    leg = (PositionLeg("0x" + "11" * 20, "WETH", "collateral", 10**18, 18, 3000 * WAD, 8000),)
    positions = tuple(
        Position(protocol, "aave_v3", a, ref, 3000 * WAD, 1000 * WAD, 2000 * WAD, 2 * WAD, False, 8000, 0.5, leg) for a in accounts
    )
    return Snapshot("ethereum", protocol, "aave_v3", ref, positions, (), (), number, len(accounts), 1, 0.1)


def _seed(engine: Engine) -> dict[str, list[int]]:
    """Two protocols, a run every 10 minutes for the last 3 days; one account appears in one old run only."""
    numbers: dict[str, list[int]] = {"a": [], "b": []}
    n = 0
    for k in range(3 * 24 * 6):
        ts = NOW - 3 * 86_400 + k * 600
        for proto in ("a", "b"):
            n += 1
            accounts = ["0x" + "aa" * 20, "0x" + "bb" * 20]
            if proto == "a" and k == 100:  # not an hour's newest run, long before the cutoff
                accounts.append("0x" + "cc" * 20)
            write_snapshot(engine, _snap(proto, n, ts, accounts))
            numbers[proto].append(n)
    return numbers


def _runs(engine: Engine) -> list[tuple[int, str, int]]:
    with Session(engine) as s:
        return list(s.exec(select(SnapshotRun.id, SnapshotRun.protocol, SnapshotRun.block_timestamp)).all())


def test_prune_keeps_recent_runs_thins_older_ones_and_every_accounts_latest_row(store: tuple[Engine, str]) -> None:
    engine, _ = store
    _seed(engine)
    before = _runs(engine)
    cutoff = NOW - 86_400
    recent_before = [r for r in before if r[2] >= cutoff]
    dry = prune(engine, keep_days=1, thin_seconds=HOUR, now=NOW, dry_run=True)
    assert dry.runs_deleted > 0 and _runs(engine) == before, "a dry run deletes nothing"

    result = prune(engine, keep_days=1, thin_seconds=HOUR, now=NOW)
    after = _runs(engine)
    assert result.runs_deleted == dry.runs_deleted == len(before) - len(after)
    assert sorted(r for r in after if r[2] >= cutoff) == sorted(recent_before), "the last day is untouched"
    old = [r for r in after if r[2] < cutoff]
    buckets: dict[tuple[str, int], int] = {}
    for _, proto, ts in old:
        buckets[(proto, ts // HOUR)] = buckets.get((proto, ts // HOUR), 0) + 1
    # one run per hour per protocol, plus the run that holds the third account's only (latest) position
    assert sum(buckets.values()) == len(buckets) + 1
    assert result.protected == 1
    _, history = account_positions(engine, "0x" + "cc" * 20)
    assert len(history) == 1, "an account seen only in an old run keeps that (its latest) position"
    with Session(engine) as s:
        orphans = s.exec(select(func.count()).where(~PositionSnapshot.run_id.in_(select(SnapshotRun.id)))).one()  # type: ignore[union-attr]
    assert orphans == 0, "positions of deleted runs are deleted with them"
    # idempotent: a second prune at the same time finds nothing more
    assert prune(engine, keep_days=1, thin_seconds=HOUR, now=NOW).runs_deleted == 0


@pytest.mark.parametrize(("keep_days", "thin_seconds"), [(-1, HOUR), (1, 0)])
def test_prune_refuses_nonsense_settings(store: tuple[Engine, str], keep_days: float, thin_seconds: int) -> None:
    engine, _ = store
    with pytest.raises(StoreError, match="retention needs"):
        prune(engine, keep_days=keep_days, thin_seconds=thin_seconds, now=NOW)


def test_db_prune_command_uses_the_config_and_flags(store: tuple[Engine, str], tmp_path: Path) -> None:
    """The CLI: `--dry-run` deletes nothing; without it the runs older than `--keep-days` are thinned."""
    engine, url = store
    # runs around the real clock: a few minutes' worth 3 days ago (thinned) and one now (kept)
    now = int(time.time())
    for k in range(6):
        write_snapshot(engine, _snap("a", k + 1, now - 3 * 86_400 - k * 60, ["0x" + "aa" * 20]))
    write_snapshot(engine, _snap("a", 100, now, ["0x" + "aa" * 20]))
    cfg = tmp_path / "r.toml"
    cfg.write_text(f'database_url = "{url}"\n[retention]\nkeep_days = 1\nthin_seconds = 86400\n')

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return indexer("db", "prune", "--config", str(cfg), *args, cwd=tmp_path)

    dry = cli("--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "would delete" in dry.stdout and len(_runs(engine)) == 7
    done = cli()
    assert done.returncode == 0, done.stderr
    assert len(_runs(engine)) <= 3 and "deleted" in done.stdout  # one or two day-buckets of old runs + the recent one
    assert any(ts >= now for _, _, ts in _runs(engine))
    bad = cli("--keep-days", "-1")
    assert bad.returncode == 2 and "keep-days" in bad.stderr
