"""Snapshot write throughput (rows/s) on SQLite and PostgreSQL: the bulk path against row-by-row ORM.

    .venv/bin/python bench/store_write.py [--positions 100000] [--postgres postgresql+psycopg://postgres@127.0.0.1:5432/postgres]

Each backend writes the same synthetic snapshot twice into a fresh database: once with ``write_snapshot``
(one transaction: a binary COPY on PostgreSQL, rows streamed as they are encoded; one driver executemany of
row tuples on SQLite) and once with the baseline, the ORM ``session.add_all`` of one object per row
(``db._position_row``) that the store used before. The synthetic positions are small (one leg, one detail, no
state); ``bench/refresh.py`` measures real Aave positions. The table gives rows/s and the
ratio bulk / baseline measured in the same run. PostgreSQL is skipped (with the reason) if it does not answer.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import uuid
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlmodel import Session

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from indexer.domain import BlockRef, Position, PositionLeg, Snapshot  # noqa: E402
from indexer.store import db  # noqa: E402
from indexer.store.models import PositionSnapshot, SnapshotRun  # noqa: E402


def synthetic(n: int, block: int) -> Snapshot:
    ref = BlockRef(1, block, "0x" + uuid.uuid4().hex * 2, 1_700_000_000)
    legs = (PositionLeg("0x" + "11" * 20, "WETH", "collateral", 10**18, 18, 3000 * 10**18, 8250),)
    positions = tuple(
        Position(
            protocol="bench",
            kind="aave_v3",
            account=f"0x{i:040x}",
            block=ref,
            collateral_usd=3000 * 10**18 + i,
            debt_usd=2000 * 10**18,
            nlv_usd=1000 * 10**18 - i,
            health_factor=10**18 + i if i % 10 else 2**256 - 1,
            liquidatable=False,
            liquidation_threshold_bps=8250,
            price_drop_to_liquidation=0.2,
            legs=legs,
            details={"revision": "9"},
        )
        for i in range(n)
    )
    return Snapshot("bench", "bench", "aave_v3", ref, positions, (), (), block, n, 0, 0.0)


def baseline_write(engine, snap: Snapshot) -> None:  # type: ignore[no-untyped-def]
    """The previous store path: one ORM object per position row, one transaction."""
    with Session(engine) as session:
        run = SnapshotRun(chain="bench", chain_id=1, protocol="bench-orm", kind="aave_v3", block_number=snap.block.number,
                          block_hash=snap.block.hash, block_timestamp=snap.block.timestamp)  # fmt: skip
        session.add(run)
        session.flush()
        session.add_all(PositionSnapshot(**db._position_row(run.id, p)) for p in snap.positions)
        session.commit()


def measure(url: str, n: int) -> tuple[float, float]:
    engine = db.make_engine(url)
    snap = synthetic(n, 1)
    t0 = time.perf_counter()
    baseline_write(engine, snap)
    t_base = time.perf_counter() - t0
    snap2 = synthetic(n, 2)
    t0 = time.perf_counter()
    db.write_snapshot(engine, snap2)
    t_bulk = time.perf_counter() - t0
    engine.dispose()
    return n / t_base, n / t_bulk


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--positions", type=int, default=100_000)
    ap.add_argument("--postgres", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        rows.append(("sqlite", *measure(f"sqlite:///{tmp}/bench.db", args.positions)))
    name = f"idx_bench_{uuid.uuid4().hex[:8]}"
    try:
        admin = create_engine(args.postgres, isolation_level="AUTOCOMMIT")
        with admin.connect() as c:
            c.execute(text(f"CREATE DATABASE {name}"))
    except Exception as exc:  # noqa: BLE001
        print(f"postgresql skipped: {type(exc).__name__}: {str(exc).splitlines()[0]}")
    else:
        try:
            url = args.postgres.rsplit("/", 1)[0] + "/" + name
            rows.append(("postgresql", *measure(url, args.positions)))
        finally:
            with admin.connect() as c:
                c.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
    print(f"\nsnapshot write, {args.positions:,} positions in one transaction")
    print(f"{'backend':<12}{'baseline ORM rows/s':>22}{'bulk rows/s':>16}{'ratio':>9}")
    for backend, base, bulk in rows:
        print(f"{backend:<12}{base:>22,.0f}{bulk:>16,.0f}{bulk / base:>8.1f}x")
    print(json.dumps({b: {"baseline_rows_per_s": round(x), "bulk_rows_per_s": round(y)} for b, x, y in rows}))


if __name__ == "__main__":
    main()
