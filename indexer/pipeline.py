"""One snapshot of one protocol instance: pin -> discover -> read -> price -> compute -> store."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from eth_utils import keccak
from sqlalchemy import Engine

from indexer.chain.block import pin_block_and_head
from indexer.chain.logs import scan_logs
from indexer.chain.multicall import Multicaller
from indexer.chain.reorg import canonical_hashes, newest_on_chain
from indexer.chain.rpc import RpcClient, open_client
from indexer.config import ChainConfig, ProtocolConfig, Settings
from indexer.domain import AccountKey, BlockRef, Snapshot
from indexer.errors import ChainMismatch, ConfigError, IndexerError, RpcResponseError, RpcUnreachable
from indexer.pricing.chainlink import read_sequencer
from indexer.pricing.quality import label_snapshot
from indexer.protocols.registry import make_adapter
from indexer.store.db import get_checkpoint, known_accounts, write_snapshot
from indexer.store.reorg import canonical_blocks, recheck_runs

log = logging.getLogger(__name__)

# Seconds the start-up check waits for a node before calling its URL wrong.
STARTUP_PROBE_TIMEOUT_SECONDS = 10.0


class ShardWaiting(IndexerError):
    """An account shard other than 0 has nothing to read yet: shard 0 has not discovered any account."""


def account_shard(account: str, shards: int) -> int:
    """The account shard (``0 .. shards-1``) an address belongs to, the same in every process and release.

    keccak256 of the address as lower-case ``0x``-hex ASCII text, read as a big-endian integer, modulo
    ``shards``. Only the address counts (not the market), so all of an address's positions in an instance
    are read by one shard.

    >>> account_shard("0x000000000000000000000000000000000000dEaD", 1)
    0
    >>> account_shard("0x000000000000000000000000000000000000dEaD", 3) == account_shard("0x000000000000000000000000000000000000dead", 3)
    True
    """
    if shards <= 1:
        return 0
    return int.from_bytes(keccak(text=account.lower()), "big") % shards


@dataclass(frozen=True, slots=True)
class RunResult:
    """What one snapshot run did."""

    run_id: int  # stored run id (the existing one when the block was already stored)
    created: bool  # False when the block had been stored before (nothing written)
    snapshot: Snapshot  # what was read and computed
    recomputed: tuple[int, ...] = ()  # runs stored for canonical blocks whose earlier runs this run found orphaned


def connect(chain_name: str, chain: ChainConfig) -> tuple[RpcClient, int]:
    """An RPC client over the chain's ``rpc_url`` and ``fallback_rpc_urls``, each checked to serve the chain id.

    One quick probe per URL at start (``chain.rpc.open_client``): no URL answering is a configuration error,
    reported at once; endpoints of another chain are left out, and all of them being so is ``ChainMismatch``.
    The client returned keeps its retries and fail-over for the faults of a long run."""
    urls = [chain.rpc_url, *chain.fallback_rpc_urls]
    probe_timeout = min(STARTUP_PROBE_TIMEOUT_SECONDS, chain.rpc_timeout_seconds)
    try:
        rpc, chain_id, _ = open_client(
            urls, expected_chain_id=chain.chain_id, timeout=chain.rpc_timeout_seconds, probe_timeout=probe_timeout,
            batch_calls=1 if chain.rpc_batch_calls == 1 else None,  # 1: no JSON-RPC batches at all (a provider refusing them)
        )  # fmt: skip
    except RpcUnreachable as exc:
        raise ConfigError(f"chains.{chain_name}.rpc_url: {exc}; check the URL and that the node runs", key=f"chains.{chain_name}.rpc_url") from None
    except ChainMismatch as exc:
        raise ChainMismatch(f"chains.{chain_name}: {exc}") from None
    return rpc, chain_id


def _discovery_start(engine: Engine, rpc: RpcClient, chain: str, proto: ProtocolConfig, block: BlockRef) -> tuple[int, bool]:
    """(first block to scan, whether this is a rescan that supersedes the stored checkpoint).

    After the checkpoint, unless the checkpoint's block is gone or has another hash (a reorg, or a
    different chain behind the same name, as when a dev chain restarts): then after the newest stored
    canonical run whose block is still on the chain (the blocks a reorg replaced are scanned again, not the
    history), else from ``start_block``.
    """
    cp = get_checkpoint(engine, chain, proto.name)
    if cp is None:
        return proto.start_block, False
    if cp.block_hash:
        try:
            on_chain: str | None = rpc.get_block(cp.block_number)["hash"]
        except RpcResponseError:
            on_chain = None  # the node has no such block
        if on_chain != cp.block_hash:
            stored = canonical_blocks(engine, chain_id=block.chain_id, protocol=proto.name, at_most=min(cp.block_number, block.number))
            resume = newest_on_chain(rpc, stored)
            start = proto.start_block if resume is None else max(proto.start_block, resume + 1)
            log.warning(
                "checkpoint block %d of %s is not on this chain any more (reorg or another chain); rescanning from %d",
                cp.block_number,
                proto.name,
                start,
            )
            return start, True
    if cp.block_number >= block.number:
        return block.number + 1, False  # already scanned past the pinned block
    return cp.block_number + 1, False


def run_snapshot(
    settings: Settings,
    proto: ProtocolConfig,
    engine: Engine,
    *,
    rpc: RpcClient | None = None,
    at_block: int | None = None,
    on_progress: Callable[[int, int], None] | None = None,
    shard: int = 0,
    recheck: bool = True,
) -> RunResult:
    """Take and store one snapshot of ``proto``; ``at_block`` pins an exact block instead of head - confirmations.

    With ``proto.shards > 1`` the run reads only the known accounts of account shard ``shard`` (see
    ``account_shard``). Shard 0 also discovers new accounts and moves the checkpoint; the other shards read
    the accounts already stored and leave the checkpoint alone (``ShardWaiting`` until shard 0 has run once).

    With ``recheck`` (and ``reorg_depth`` > 0) the run also re-checks the stored runs of its shard within the
    chain's ``reorg_depth`` of the head: those whose block left the chain are marked orphaned, and once this run
    is stored the canonical blocks at their numbers below its own are snapshotted again (without a re-check of
    their own; at its own number this run is the canonical snapshot, and numbers above it wait for a later run
    that pins past them).
    """
    shards = proto.shards
    if not 0 <= shard < shards:
        raise ConfigError(f"protocols.{proto.name}: shard {shard} out of range for shards = {shards}", key="shards")
    notify_watchlist(engine, settings, None)  # catches up the alerts of a run whose process died after its commit
    started = time.monotonic()
    chain_cfg = settings.chains[proto.chain]
    shard_checkpoint = None
    if shard > 0:
        # Discovery is shard 0's: the other shards read what it stored and hand its checkpoint through.
        shard_checkpoint = get_checkpoint(engine, proto.chain, proto.name)
        if shard_checkpoint is None:
            raise ShardWaiting(f"{proto.name} shard {shard}/{shards}: waiting for shard 0 to discover the accounts")
    if rpc is None:
        rpc, chain_id = connect(proto.chain, chain_cfg)
        requests_before, errors_before = rpc.request_count, dict(rpc.error_counts)
    else:
        requests_before, errors_before = rpc.request_count, dict(rpc.error_counts)
        chain_id = rpc.chain_id()
    block, head = pin_block_and_head(rpc, chain_id, chain_cfg.confirmations, at=at_block)
    multicall = Multicaller(
        rpc, address=chain_cfg.multicall_address, batch_size=chain_cfg.multicall_batch_size,
        max_in_flight=chain_cfg.rpc_max_in_flight, calls_per_request=chain_cfg.rpc_batch_calls,
    )  # fmt: skip
    multicall.pin(block)  # reads at the pinned block go by its hash where the node supports it (EIP-1898)
    adapter = make_adapter(proto, rpc, multicall)
    market = adapter.load_market(block)
    new_accounts: set[AccountKey] = set()
    rescan = False
    if shard_checkpoint is None:
        start, rescan = _discovery_start(engine, rpc, proto.chain, proto, block)
        if start <= block.number:
            filt = adapter.log_filter(market)
            logs = scan_logs(rpc, filt.addresses, filt.topics, start, block.number, chunk=chain_cfg.log_chunk_blocks, max_chunk=chain_cfg.log_chunk_blocks, on_progress=on_progress)
            new_accounts = adapter.accounts_from_logs(logs)
        checkpoint_block = max(block.number, start - 1)
    else:
        checkpoint_block = shard_checkpoint.block_number
    accounts = sorted(k for k in set(known_accounts(engine, proto.name)) | new_accounts if account_shard(k.account, shards) == shard)
    positions = adapter.positions(market, accounts, block)
    prices = adapter.prices(market)  # after positions: adapters that learn their markets from the accounts price them there
    # Oracle quality labels (stale, non-positive, out of bounds, sequencer) on the prices and the positions that used them.
    positions, prices = label_snapshot(positions, prices, chain_cfg, block, read_sequencer(multicall, chain_cfg.sequencer_uptime_feed, block.number), name=proto.name)
    reorg = None  # re-checked before the snapshot is built, so that its requests count in this run
    if recheck and chain_cfg.reorg_depth > 0:
        reference = head if head is not None else block.number
        reorg = recheck_runs(engine, chain_id=chain_id, protocol=proto.name, shard=shard, above_block=reference - chain_cfg.reorg_depth, canonical=partial(canonical_hashes, rpc))
    snapshot = Snapshot(
        chain=proto.chain,
        protocol=proto.name,
        kind=adapter.kind,
        block=block,
        positions=tuple(positions),
        prices=tuple(prices),
        market_state=adapter.market_state(market),
        new_accounts=tuple(sorted(new_accounts)),
        checkpoint_block=checkpoint_block,
        checkpoint_reset=rescan,
        shard=shard,
        shards=shards,
        advances_checkpoint=shard == 0,
        accounts_read=len(accounts),
        rpc_requests=rpc.request_count - requests_before,
        duration_seconds=time.monotonic() - started,
        head_block=head,
        rpc_errors=rpc.errors_since(errors_before),
    )
    run_id, created = write_snapshot(engine, snapshot)
    log.info(
        "snapshot protocol=%s shard=%d/%d chain=%s block=%d hash=%s accounts=%d new_accounts=%d positions=%d liquidatable=%d rpc_requests=%d seconds=%.2f stored=%s",
        proto.name,
        shard,
        shards,
        proto.chain,
        block.number,
        block.hash[:10],
        len(accounts),
        len(new_accounts),
        len(positions),
        sum(1 for p in positions if p.liquidatable),
        snapshot.rpc_requests,
        snapshot.duration_seconds,
        "new" if created else "already",
    )
    if created:
        notify_watchlist(engine, settings, run_id)
    recomputed = _recompute(settings, proto, engine, rpc, shard, [n for n in reorg.recompute if n < block.number]) if reorg else ()
    return RunResult(run_id, created, snapshot, recomputed)


def _recompute(settings: Settings, proto: ProtocolConfig, engine: Engine, rpc: RpcClient, shard: int, numbers: list[int]) -> tuple[int, ...]:
    """Snapshot the canonical blocks at ``numbers`` (their stored runs were orphaned), without re-checks of their
    own; a failure is logged and named again by the next re-check."""
    out = []
    for number in numbers:
        try:
            out.append(run_snapshot(settings, proto, engine, rpc=rpc, at_block=number, shard=shard, recheck=False).run_id)
        except IndexerError as exc:
            log.error("reorg: recomputing block %d of %s shard %d failed: %s", number, proto.name, shard, exc)
    return tuple(out)


def notify_watchlist(engine: Engine, settings: Settings, run_id: int | None) -> None:
    """Watchlist alerts over the latest stored runs (``indexer.alerts``): after a stored run (``run_id``), and
    before each run (None), which catches up the alerts of a run whose process was killed between its commit
    and its alerts. Evaluating the same runs twice alerts nothing twice (the alert states hold what was alerted).
    A failure here is logged and never fails the snapshot; delivery is bounded by the webhook's attempts and timeout."""
    from indexer.alerts import evaluate_alerts

    try:
        evaluate_alerts(engine, settings, [] if run_id is None else [run_id])
    except Exception:  # noqa: BLE001  (any fault of the alerts must leave the snapshot job running)
        log.exception("watchlist alerts failed %s", "before the run" if run_id is None else f"after run {run_id}")
