"""Refresh cost at 1k and 10k (optionally 100k) positions: RPC requests and wall time per refresh, exact verdicts/s,
snapshot rows/s and peak memory, against the naive per-account bot measured in the same run.

    .venv/bin/python bench/refresh.py [--sizes 1000,10000] [--change-share 0.01] [--postgres URL] [--seed 0]

Protocol: Aave V3 (the skeleton protocol), the repository's fixture market on a local anvil (started and stopped
here). The book grows on one anvil: N seeded users (``indexer.devnet.bench_seed``: ``seed_accounts``'s varied
positions, 30 % of the borrowers within 1-7 % of their limit, sent in bulk), and LINK's price drops 12 % so that
some positions are liquidatable; then each size is measured at its block. Seeding time is printed apart and is not in any measurement. Rows, per size:

(a)  naive: one ``eth_call getUserAccountData(user)`` per account, sequential (+ ``eth_blockNumber``): the common
     bot design. The baseline of every ratio.
(b1) full read, sequential: ``load_market`` + ``positions`` of every account through Multicall3 aggregate3 (the default
     1000 calls per eth_call), one HTTP request at a time, one eth_call per request (``max_in_flight=1, calls_per_request=1``).
(b2) full read, concurrent + batched: the chain config's defaults (4 HTTP requests in flight, 10 eth_calls per
     JSON-RPC batch).
(c)  warm refresh (``WarmBook.refresh``, config defaults as b2) of the block after one in which a share of the
     accounts (``--change-share``, 1 %) borrowed, repaid or supplied, and WETH's price moved -3 %. Its positions
     are compared with a full read at the same block (every field and the raw state): "same" = identical.
(v)  exact verdicts over the book's states (``adapter.verdicts``, the fast kernel; best of 5), and
(p)  the full Position path over the same states (``adapter.positions_from_states``).
(s)  snapshot write (``indexer.store.db.write_snapshot``) of (b)'s positions into a fresh SQLite file and a scratch
     PostgreSQL database (created and dropped; skipped with the reason if no server answers).

Ratios: (a)'s JSON-RPC calls / the row's, and (a)'s wall time / the row's (same N). Peak memory: this process's
``ru_maxrss`` and anvil's ``VmHWM`` after each size (one process for every size, so they are peaks so far). The
target lines (>= 100x fewer calls, warm requests equal at every size, >= 200k verdicts/s, >= 50k rows/s) are
information: timings never fail the bench; it exits 1 if the warm refresh's positions or the fast verdicts differ
from the full read's, 2 on bad arguments.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import resource
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import create_engine, text  # noqa: E402

from indexer.chain.abi import load_abi  # noqa: E402
from indexer.chain.block import block_ref  # noqa: E402
from indexer.chain.multicall import Multicaller  # noqa: E402
from indexer.chain.rpc import RpcClient  # noqa: E402
from indexer.config import AaveV3Config  # noqa: E402
from indexer.constants import DEFAULT_MULTICALL_BATCH_SIZE, UINT256_MAX, WAD  # noqa: E402
from indexer.devnet.aave_market import AaveFixture, deploy_aave_market  # noqa: E402
from indexer.devnet.anvil import Anvil  # noqa: E402
from indexer.devnet.bench_seed import send_user_txs, seed_accounts_bulk  # noqa: E402
from indexer.devnet.chain import DevChain, Tx  # noqa: E402
from indexer.devnet.seed import provide_liquidity, seeded_address  # noqa: E402
from indexer.domain import AccountKey, BlockRef, Position, Snapshot  # noqa: E402
from indexer.protocols.registry import make_adapter  # noqa: E402
from indexer.store import db  # noqa: E402
from indexer.warm.book import WarmBook, WarmOptions  # noqa: E402

CHAIN_ID = 31337
DEFAULT_SIZES = "1000,10000"
POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
# The chain config's defaults for concurrent reads (ChainConfig.rpc_max_in_flight, rpc_batch_calls).
IN_FLIGHT, CALLS_PER_REQUEST = 4, 10
PRICE_MOVE = 97  # WETH to 97 % of its price in the changed block
PRE_MOVE = ("LINK", 88)  # after seeding each size, LINK to 88 % of its price: the book holds liquidatable positions
VERDICT_REPEATS = 5
# Targets of the issue, at 10k positions.
TARGET_FEWER_CALLS, TARGET_VERDICTS, TARGET_ROWS = 100, 200_000, 50_000
TARGET_SIZE = 10_000


def fail(message: str) -> None:
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(2)


@dataclass
class Row:
    """One line of the table."""

    n: int  # accounts in the book
    name: str  # what was measured
    wall: float | None  # seconds for the whole book (one refresh, one pass, one write)
    calls: int | None = None  # JSON-RPC calls (None: not an RPC row, or the client cannot count them)
    http: int | None = None  # HTTP requests
    same: str = "-"  # verdicts equal to the full read's
    note: str = ""
    rpc: bool = True  # an RPC row (requests and ratios apply)
    items: int | None = None  # what "per s" counts when not the accounts (rows written)


@dataclass
class Run:
    """Everything measured, for the table, the target lines and the JSON line."""

    rows: list[Row] = field(default_factory=list)
    seeding: dict[int, float] = field(default_factory=dict)  # size -> seconds
    failed: list[str] = field(default_factory=list)  # verdict differences (exit 1)
    memory: dict[int, tuple[int, int | None]] = field(default_factory=dict)  # n -> (bench KiB, anvil KiB)
    change_share: float = 0.01  # share of the accounts changed before the warm refresh
    verdict_seconds: dict[int, float] = field(default_factory=dict)  # n -> WarmRefresh.verdict_seconds


# --- RPC clients and counters ----------------------------------------------------------------------------------
def measured(rpc: RpcClient, fn: Callable[[], Any]) -> tuple[Any, float, int, int]:
    """fn's result, wall seconds, JSON-RPC calls and HTTP requests it made through ``rpc``."""
    c0, h0 = rpc.call_count, rpc.request_count
    t0 = time.perf_counter()
    out = fn()
    wall = time.perf_counter() - t0
    return out, wall, rpc.call_count - c0, rpc.request_count - h0


def multicaller(rpc: RpcClient, in_flight: int, per_request: int) -> Multicaller:
    """A Multicaller with the chain config's default aggregate3 size and these concurrency settings."""
    return Multicaller(rpc, batch_size=DEFAULT_MULTICALL_BATCH_SIZE, max_in_flight=in_flight, calls_per_request=per_request)


def default_multicaller(rpc: RpcClient) -> Multicaller:
    """The chain config's defaults (b2): ``rpc_max_in_flight`` requests in flight, ``rpc_batch_calls`` per request."""
    return multicaller(rpc, IN_FLIGHT, CALLS_PER_REQUEST)


# --- the chain -------------------------------------------------------------------------------------------------
def change_txs(fx: AaveFixture, positions: list[Position], share: float, rng: random.Random) -> tuple[list[Tx], set[str]]:
    """Transactions by ``share`` of the accounts (a repay, a borrow within the limit, or a supply each) and a WETH
    price move last; and the accounts they change."""
    count = max(1, round(len(positions) * share))
    picked = rng.sample(sorted(positions, key=lambda p: p.account), min(count, len(positions)))
    txs: list[Tx] = []
    for p in picked:
        debts = [leg for leg in p.legs if leg.side == "debt" and leg.amount > 0]
        colls = [leg for leg in p.legs if leg.side == "collateral" and leg.amount > 0]
        available = int(p.details.get("available_borrows_base", "0"))
        roll = rng.random()
        if debts and roll < 0.4:
            leg = rng.choice(debts)
            token = fx.assets[leg.symbol].token
            txs += [
                Tx(p.account, token, "TestERC20", "mint", (p.account, leg.amount), f"mint {leg.symbol}"),
                Tx(p.account, token, "TestERC20", "approve", (fx.pool, UINT256_MAX), f"approve {leg.symbol}"),
                Tx(p.account, fx.pool, "Pool", "repay", (token, leg.amount // 3 + 1, 2, p.account), f"repay {leg.symbol}"),
            ]
            continue
        if debts and roll < 0.7 and available > 0:
            leg = rng.choice(debts)
            spec = fx.assets[leg.symbol].spec
            amount = available * 3 // 10 * 10**spec.decimals // fx.price(leg.symbol)  # 30 % of what it may borrow
            if amount > 0:
                txs.append(fx.borrow_tx(p.account, leg.symbol, amount))
                continue
        sym = rng.choice(colls).symbol if colls else "USDC"
        spec = fx.assets[sym].spec
        usd = max(p.collateral_usd // 20, 100 * WAD)  # 5 % more collateral (at least $100)
        txs += fx.supply_txs(p.account, sym, usd * 10**8 // WAD * 10**spec.decimals // fx.price(sym))
    weth = fx.assets["WETH"]
    txs.append(Tx(fx.chain.deployer, weth.feed, "MockAggregatorV3", "updateAnswer", (fx.price("WETH") * PRICE_MOVE // 100,), "price WETH"))
    return txs, {p.account for p in picked}


def anvil_peak_kib(node: Anvil) -> int | None:
    """Anvil's peak resident memory (VmHWM, KiB) from /proc; None where there is no /proc."""
    proc = getattr(node, "_proc", None)  # the Popen of the node (Anvil keeps it private)
    try:
        for line in Path(f"/proc/{proc.pid}/status").read_text().splitlines():  # type: ignore[union-attr]
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except (OSError, AttributeError, ValueError):
        return None
    return None


# --- the measurements of one size ------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class FullRead:
    """One full read of the book (b)."""

    positions: list[Position]  # every position at the block
    market: Any  # the adapter's market snapshot (after ``positions``)
    adapter: Any  # the adapter that read it
    wall: float  # seconds
    calls: int  # JSON-RPC calls
    http: int  # HTTP requests
    refusal: str  # a note if the node refused a JSON-RPC batch on the way


def naive(url: str, pool: str, keys: list[AccountKey], block: BlockRef) -> tuple[Row, dict[str, bool]]:
    """(a): what a simple bot does: the head, then getUserAccountData of each account, one request each."""
    rpc = RpcClient(url)
    fn = load_abi("AaveV3Pool").fn("getUserAccountData")

    def read() -> dict[str, bool]:
        rpc.block_number()
        return {k.account: int(fn.decode(rpc.call(pool, fn.encode(k.account), block.number))[5]) < WAD for k in keys}

    verdicts, wall, calls, http = measured(rpc, read)
    return Row(len(keys), "(a) naive: getUserAccountData per account", wall, calls, http, note="health factor < 1 only"), verdicts


def refused(rpc: RpcClient) -> str:
    """A note when the node refused a JSON-RPC batch and the client went one by one (``RpcClient.batch_supported``)."""
    return "; the node refused a JSON-RPC batch: one call per HTTP request after" if rpc.batch_supported is False else ""


def full_read(url: str, proto: AaveV3Config, keys: list[AccountKey], block: BlockRef, make: Callable[[RpcClient], Multicaller]) -> FullRead:
    """(b): pin + ``load_market`` + ``positions`` of every account, as ``indexer run`` reads them, through a fresh
    client and the Multicaller ``make`` gives."""
    rpc = RpcClient(url)
    multicall = make(rpc)
    adapter = make_adapter(proto, rpc, multicall)

    def read() -> tuple[list[Position], Any]:
        multicall.pin(block)
        market = adapter.load_market(block)
        return adapter.positions(market, keys, block), market

    (positions, market), wall, calls, http = measured(rpc, read)
    return FullRead(positions, market, adapter, wall, calls, http, refused(rpc))


def differing(got: list[Position] | tuple[Position, ...], want: list[Position]) -> int:
    """How many positions differ (any field, the raw state, or present in one only)."""
    g = {p.account: p for p in got}
    w = {p.account: p for p in want}
    return sum(1 for a in set(g) | set(w) if a not in g or a not in w or g[a] != w[a] or g[a].state != w[a].state)


def measure_reads(run: Run, url: str, proto: AaveV3Config, keys: list[AccountKey], block: BlockRef, pool: str) -> FullRead:
    """Rows (a), (b1), (b2) at ``block``; (b1)'s read (the reference for the rest)."""
    n = len(keys)
    row_a, naive_verdicts = naive(url, pool, keys, block)
    run.rows.append(row_a)
    ref = full_read(url, proto, keys, block, lambda rpc: multicaller(rpc, 1, 1))
    liquidatable = {p.account for p in ref.positions if p.liquidatable}
    hf_only = sum(1 for a, v in naive_verdicts.items() if (a in liquidatable) != v)
    row_a.same = "yes" if not hf_only else f"{hf_only} differ"
    note = f"{len(ref.positions):,} positions, {len(liquidatable):,} liquidatable"
    run.rows.append(Row(n, "(b1) full read: aggregate3, sequential", ref.wall, ref.calls, ref.http, "-", note=note + ref.refusal))
    name = f"(b2) full read: aggregate3, {IN_FLIGHT} in flight x {CALLS_PER_REQUEST}/batch"
    b2 = full_read(url, proto, keys, block, default_multicaller)
    diff = differing(b2.positions, ref.positions)
    if diff:
        run.failed.append(f"{n}: {name} differs from (b1) in {diff} positions")
    run.rows.append(Row(n, name, b2.wall, b2.calls, b2.http, "yes" if not diff else f"NO ({diff})", note=note + b2.refusal))
    return ref


def measure_warm(run: Run, url: str, chain_rpc: RpcClient, fx: AaveFixture, proto: AaveV3Config, keys: list[AccountKey], block: BlockRef, ref: FullRead, seed: int) -> tuple[WarmBook, BlockRef]:
    """Row (c): a book started at ``block``; a block in which ``run.change_share`` of the accounts change and WETH's
    price moves; the refresh to it, checked against a full read there. The book and the block it is at."""
    n = len(keys)
    rpc = RpcClient(url)
    book = WarmBook(make_adapter(proto, rpc, default_multicaller(rpc)), WarmOptions(sample_size=16, seed=seed))
    book.start(block, set(keys))
    txs, changed = change_txs(fx, ref.positions, run.change_share, random.Random(seed + n))
    send_user_txs(fx.chain, txs)
    block1 = block_ref(chain_rpc, "latest", CHAIN_ID)
    warm, wall, calls, http = measured(rpc, lambda: book.refresh(block1))
    full1 = full_read(url, proto, keys, block1, default_multicaller).positions
    diff = differing(warm.positions, full1)
    if diff:
        run.failed.append(f"{n}: the warm refresh differs from a full read at block {block1.number} in {diff} positions")
    if {k.account for k in warm.liquidatable} != {p.account for p in full1 if p.liquidatable}:
        run.failed.append(f"{n}: WarmRefresh.liquidatable differs from the full read's verdicts")
        diff += 1
    touched = {k.account for k in warm.touched}
    note = f"changed {len(changed):,} ({len(changed & touched):,} seen), {len(warm.touched):,} touched + {len(warm.sampled)} sampled"
    note += f" + {warm.hot} hot"
    note += f"; {sum(p.liquidatable for p in full1):,} liquidatable"
    if warm.full_read:
        note += f"; FELL BACK to a full read ({warm.full_read})"
    row = Row(n, f"(c) warm refresh, {run.change_share:.0%} changed + price move", wall, calls, http, "yes" if not diff else f"NO ({diff})", note=note + refused(rpc))
    run.rows.append(row)
    run.verdict_seconds[n] = warm.verdict_seconds
    return book, block1


def measure_cpu(run: Run, book: WarmBook, block: BlockRef) -> None:
    """Rows (v) and (p): the book's states at ``block`` through the fast verdicts and through the Position path."""
    n, adapter = len(book.known), book.adapter
    market = book.load(block)
    t0 = time.perf_counter()
    positions = adapter.positions_from_states(market, book.known, book.states, block)  # type: ignore[attr-defined]
    t_pos = time.perf_counter() - t0
    want = {AccountKey(p.account): p.liquidatable for p in positions}
    name = "(v) exact verdicts (adapter.verdicts)"
    times, got = [], {}
    for _ in range(VERDICT_REPEATS):
        t0 = time.perf_counter()
        got = adapter.verdicts(market, book.states)  # type: ignore[attr-defined]
        times.append(time.perf_counter() - t0)
    bad = sum(1 for k, v in want.items() if got.get(k) != v) + len(set(got) - set(want))
    if bad:
        run.failed.append(f"{n}: adapter.verdicts differs from positions_from_states in {bad} accounts")
    in_refresh = run.verdict_seconds[n]
    note = f"best of {VERDICT_REPEATS}; first call {len(want) / times[0]:,.0f}/s; in the refresh {in_refresh * 1000:.1f} ms"
    run.rows.append(Row(n, name, min(times), same="yes" if not bad else f"NO ({bad})", note=note, rpc=False, items=len(want)))
    run.rows.append(Row(n, "(p) Position path (positions_from_states)", t_pos, note=f"{len(positions):,} positions", rpc=False, items=len(positions)))


def write_seconds(url: str, snap: Snapshot) -> float:
    """Seconds to store ``snap`` into the database at ``url``."""
    engine = db.make_engine(url)
    try:
        t0 = time.perf_counter()
        db.write_snapshot(engine, snap)
        return time.perf_counter() - t0
    finally:
        engine.dispose()


def measure_store(run: Run, ref: FullRead, block: BlockRef, n: int, pg_url: str | None, pg_reason: str) -> None:
    """Rows (s): (b1)'s snapshot written into a fresh SQLite file and into the scratch PostgreSQL database."""
    rows = len(ref.positions)
    snap = Snapshot(
        chain="bench", protocol=f"aave-bench-{n}", kind="aave_v3", block=block, positions=tuple(ref.positions),
        prices=tuple(ref.adapter.prices(ref.market)), market_state=ref.adapter.market_state(ref.market), new_accounts=(),
        checkpoint_block=block.number, accounts_read=n, rpc_requests=ref.http, duration_seconds=ref.wall,
    )  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        t = write_seconds(f"sqlite:///{tmp}/bench.db", snap)
    run.rows.append(Row(n, "(s) snapshot write, SQLite", t, note=f"{rows:,} position rows", rpc=False, items=rows))
    if pg_url is None:
        run.rows.append(Row(n, "(s) snapshot write, PostgreSQL", None, note=f"skipped: {pg_reason}", rpc=False))
    else:
        t = write_seconds(pg_url, snap)
        run.rows.append(Row(n, "(s) snapshot write, PostgreSQL", t, note=f"{rows:,} position rows", rpc=False, items=rows))


def measure_size(run: Run, node: Anvil, fx: AaveFixture, proto: AaveV3Config, keys: list[AccountKey], seed: int, pg_url: str | None, pg_reason: str) -> None:
    """Every row of one book size, then the peak memory so far."""
    chain_rpc = RpcClient(node.url, timeout=600)
    block = block_ref(chain_rpc, "latest", CHAIN_ID)
    ref = measure_reads(run, node.url, proto, keys, block, fx.pool)
    book, block1 = measure_warm(run, node.url, chain_rpc, fx, proto, keys, block, ref, seed)
    measure_cpu(run, book, block1)
    measure_store(run, ref, block, len(keys), pg_url, pg_reason)
    run.memory[len(keys)] = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, anvil_peak_kib(node))


# --- output ----------------------------------------------------------------------------------------------------
def fmt_int(v: int | None) -> str:
    return "n/a" if v is None else f"{v:,}"


def ratio(base: float | None, v: float | None) -> str:
    if base is None or v is None or v <= 0:
        return "-"
    r = base / v
    return f"{r:,.0f}x" if r >= 10 else f"{r:.1f}x"


def mib(kib: int | None) -> str:
    return "n/a" if kib is None else f"{kib / 1024:,.0f} MiB"


def print_table(run: Run) -> None:
    head = f"{'N':>7}  {'row':<52}{'calls':>8}{'HTTP':>8}{'wall s':>9}{'per s':>12}{'calls vs a':>12}{'time vs a':>11}  {'same':<6} note"
    print(head)
    print("-" * len(head))
    base: dict[int, Row] = {r.n: r for r in run.rows if r.name.startswith("(a)")}
    last = None
    for r in run.rows:
        if last is not None and r.n != last:
            print()
        last = r.n
        a = base.get(r.n)
        calls = fmt_int(r.calls) if r.rpc else "-"
        http = fmt_int(r.http) if r.rpc else "-"
        wall = "n/a" if r.wall is None else f"{r.wall:.3f}"
        per = "n/a" if r.wall is None or r.wall <= 0 else f"{(r.items or r.n) / r.wall:,.0f}"
        rc = ratio(a.calls if a else None, r.calls) if r.rpc else "-"
        print(f"{r.n:>7,}  {r.name:<52}{calls:>8}{http:>8}{wall:>9}{per:>12}{rc:>12}{ratio(a.wall if a else None, r.wall):>11}  {r.same:<6} {r.note}")
    for n, (mine, anvil) in run.memory.items():
        print(f"{n:>7,}  {'peak memory (so far, one process)':<52}  bench {mib(mine)}, anvil {mib(anvil)}")


def target_lines(run: Run) -> list[str]:
    sizes = sorted({r.n for r in run.rows})
    if not sizes:
        return []
    at = min(sizes, key=lambda n: abs(n - TARGET_SIZE))
    rows = {r.name.split(")")[0] + ")": r for r in run.rows if r.n == at}
    out = []

    def line(ok: bool | None, text_: str) -> None:
        out.append(f"{'n/a ' if ok is None else 'PASS' if ok else 'MISS'}  {text_}")

    a, b = rows.get("(a)"), rows.get("(b2)") if rows.get("(b2)") and rows["(b2)"].wall is not None else rows.get("(b1)")
    if a and b and a.http and b.http:
        name = b.name.split(")")[0] + ")"
        line(a.http / b.http >= TARGET_FEWER_CALLS, f"full read {name} at N={at:,}: {a.http / b.http:,.0f}x fewer HTTP requests than naive ({b.http:,} vs {a.http:,}) (target >= {TARGET_FEWER_CALLS}x)")
        if a.calls and b.calls:
            line(a.calls / b.calls >= TARGET_FEWER_CALLS, f"full read {name} at N={at:,}: {a.calls / b.calls:,.0f}x fewer JSON-RPC calls than naive ({b.calls:,} vs {a.calls:,}) (target >= {TARGET_FEWER_CALLS}x)")
    warm = [(r.n, r.calls, r.http) for r in run.rows if r.name.startswith("(c)")]
    if len(warm) > 1:
        detail = ", ".join(f"N={n:,}: {h}" for n, _, h in warm)
        line(len({h for _, _, h in warm}) == 1, f"warm refresh HTTP requests independent of N ({detail})")
        detail = ", ".join(f"N={n:,}: {fmt_int(c)}" for n, c, _ in warm)
        out.append(f"info  warm refresh JSON-RPC calls: {detail} (the {run.change_share:.0%} changed accounts are read, so calls grow with N; tests/test_warm_refresh.py shows equal calls for an equal number touched)")
    else:
        line(None, "warm refresh requests independent of N: needs two sizes")
    v = rows.get("(v)")
    if v is not None and v.wall:
        line(at / v.wall >= TARGET_VERDICTS, f"exact verdicts at N={at:,}: {at / v.wall:,.0f}/s (target >= {TARGET_VERDICTS:,}/s)")
    else:
        line(None, "exact verdicts/s: not measured at this size")
    for r in run.rows:
        if r.n == at and r.name.startswith("(s)"):
            backend = r.name.split(", ")[-1]
            if r.wall:
                per_s = (r.items or r.n) / r.wall
                line(per_s >= TARGET_ROWS, f"snapshot rows on {backend}: {per_s:,.0f}/s (target >= {TARGET_ROWS:,}/s)")
            else:
                line(None, f"snapshot rows on {backend}: {r.note}")
    if at != TARGET_SIZE:
        out.append(f"(targets are for N={TARGET_SIZE:,}; checked at the nearest size measured, {at:,})")
    return out


def machine() -> str:
    cpu = "?"
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{os.cpu_count()} cores, {cpu}, Python {platform.python_version()}"


# --- main ------------------------------------------------------------------------------------------------------
def parse_sizes(text_: str) -> list[int]:
    try:
        sizes = [int(s.replace("_", "")) for s in text_.split(",") if s.strip()]
    except ValueError:
        fail(f"--sizes {text_!r}: comma-separated whole numbers expected, e.g. 1000,10000")
    if not sizes or any(s < 10 for s in sizes) or sizes != sorted(set(sizes)):
        fail(f"--sizes {text_!r}: increasing sizes of at least 10 expected, e.g. 1000,10000,100000")
    return sizes


def scratch_postgres(url: str) -> tuple[str | None, str, Callable[[], None]]:
    """(URL of a fresh scratch database or None, why not, how to drop it)."""
    name = f"idx_bench_{uuid.uuid4().hex[:8]}"
    try:
        admin = create_engine(url, isolation_level="AUTOCOMMIT")
        with admin.connect() as c:
            c.execute(text(f"CREATE DATABASE {name}"))
    except Exception as exc:  # noqa: BLE001
        return None, f"{type(exc).__name__}: {str(exc).splitlines()[0][:120]}", lambda: None

    def drop() -> None:
        with admin.connect() as c:
            c.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        admin.dispose()

    return url.rsplit("/", 1)[0] + "/" + name, "", drop


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default=DEFAULT_SIZES, help="seeded users per size, increasing (default 1000,10000; add 100000 for the optional size)")
    ap.add_argument("--change-share", type=float, default=0.01, help="share of the accounts changed before the warm refresh (default 0.01)")
    ap.add_argument("--postgres", default=POSTGRES, help="PostgreSQL server URL (a scratch database is created and dropped)")
    ap.add_argument("--seed", type=int, default=0, help="random seed of the positions and the changes")
    args = ap.parse_args()
    sizes = parse_sizes(args.sizes)
    if not 0 < args.change_share <= 0.5:
        fail(f"--change-share {args.change_share}: a share in (0, 0.5] expected")
    started = time.perf_counter()
    run = Run(change_share=args.change_share)
    pg_url, pg_reason, pg_drop = scratch_postgres(args.postgres)
    try:
        with Anvil() as node:
            chain = DevChain(RpcClient(node.url, timeout=600))  # seeding and changes only: never measured
            fx = deploy_aave_market(chain)
            provider = seeded_address(args.seed, -1)
            provide_liquidity(fx, provider)
            proto = AaveV3Config(name="aave-bench", kind="aave_v3", chain="bench", pool_addresses_provider=fx.provider, start_block=0)
            rng = random.Random(args.seed)
            accounts: set[str] = {provider}
            done = 0
            for size in sizes:
                t0 = time.perf_counter()
                seeded, txs = seed_accounts_bulk(fx, size - done, rng, first_index=done, seed=args.seed)
                run.seeding[size] = time.perf_counter() - t0
                accounts |= set(seeded.accounts)
                done = size
                fx.set_price(PRE_MOVE[0], fx.price(PRE_MOVE[0]) * PRE_MOVE[1] // 100)  # some positions cross the threshold
                print(f"seeded {size:,} users ({len(accounts):,} accounts in the book, {txs:,} transactions) in {run.seeding[size]:.1f}s", flush=True)
                t0 = time.perf_counter()
                measure_size(run, node, fx, proto, sorted(AccountKey(a) for a in accounts), args.seed, pg_url, pg_reason)
                print(f"measured {len(accounts):,} accounts in {time.perf_counter() - t0:.1f}s", flush=True)
    finally:
        pg_drop()
    print(f"\nrefresh cost, Aave V3 (the skeleton protocol): fixture market on a local anvil; {machine()}")
    print("calls = JSON-RPC calls (what providers meter), HTTP = HTTP requests; per s = accounts (verdicts, rows) per second;")
    print("ratios = (a)'s calls / the row's and (a)'s wall time / the row's; same = the verdicts equal a full read's at the block\n")
    print_table(run)
    print()
    for line in target_lines(run):
        print(line)
    seeding = ", ".join(f"{s:,}: {t:.1f}s" for s, t in run.seeding.items())
    print(f"\nseeding (not measured): {seeding}; whole bench {time.perf_counter() - started:.0f}s")
    print(json.dumps({
        "rows": [{"n": r.n, "row": r.name, "calls": r.calls, "http": r.http, "wall_s": None if r.wall is None else round(r.wall, 6), "same": r.same} for r in run.rows],
        "seeding_s": {str(k): round(v, 1) for k, v in run.seeding.items()},
        "peak_kib": {str(n): {"bench": m, "anvil": a} for n, (m, a) in run.memory.items()},
    }))  # fmt: skip
    if run.failed:
        for f in run.failed:
            print(f"VERDICTS DIFFER: {f}", file=sys.stderr)
        raise SystemExit(1)


if __name__ == "__main__":
    main()
