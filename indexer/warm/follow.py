"""``WarmIndexer``: follow one protocol instance block by block, a warm refresh and a stored snapshot per block.

``indexer follow --protocol NAME`` runs it (``indexer.cli``); the config's ``[warm]`` section (``WarmConfig``)
gives its options (``warm_options``), its polling and its lag limit.

Start: pin the block (head - confirmations), discover accounts since the stored checkpoint as ``indexer run``
does, read every known account (the warm book's full read) and store the snapshot. Then, per new block: pin it,
check that it extends the book's block (its parent hash; otherwise a reorg: start again at the new block),
``WarmBook.refresh`` (market state, the block's events, the accounts they name, a sample), label the prices as
the pipeline does and store the snapshot (``store.db.write_snapshot``, one transaction: positions with their raw
state, the market state, new accounts, the checkpoint at the block), then the watchlist alerts. A refresh or
store that fails (an RPC or database error after the client's retries) is logged and the book starts again,
with a full read, at the next block: no block's new accounts are lost, and a long follower outlives a node's
bad minutes as ``indexer run`` does.

>>> # warm = WarmIndexer(settings, settings.protocols[0], make_engine(settings.database_url))
>>> # warm.start(); warm.follow()   # one stored snapshot per block, until stopped
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from functools import partial
from typing import Any

from sqlalchemy import Engine

from indexer.chain.logs import scan_logs
from indexer.chain.reorg import canonical_hashes
from indexer.chain.multicall import Multicaller
from indexer.chain.rpc import RpcClient
from indexer.config import ChainConfig, ProtocolConfig, Settings, WarmConfig
from indexer.domain import AccountKey, BlockRef, Snapshot
from indexer.errors import ChainMismatch, ConfigError, IndexerError
from indexer.pipeline import RunResult, _discovery_start, connect, notify_watchlist, run_snapshot
from indexer.pricing.chainlink import read_sequencer
from indexer.pricing.quality import label_snapshot
from indexer.protocols.registry import make_adapter
from indexer.store.db import known_accounts, write_snapshot
from indexer.store.reorg import recheck_runs
from indexer.warm.book import WarmBook, WarmOptions, WarmRefresh

log = logging.getLogger(__name__)

def warm_options(warm: WarmConfig, chain: ChainConfig, **overrides: Any) -> WarmOptions:
    """The book's ``WarmOptions`` from the ``[warm]`` section, the chain's ``log_chunk_blocks`` and ``overrides``
    (CLI flags; None = not given). Only the dataclass's fields are taken: ``poll_seconds`` and ``max_lag_blocks``
    are ``follow``'s.

    >>> from indexer.config import WarmConfig, ChainConfig
    >>> warm_options(WarmConfig(sample_size=0), ChainConfig(rpc_url="http://x"), full_every=5).full_every
    5
    """
    values = {**warm.model_dump(), "log_chunk_blocks": chain.log_chunk_blocks, **{k: v for k, v in overrides.items() if v is not None}}
    return WarmOptions(**{k: v for k, v in values.items() if k in WarmOptions.__dataclass_fields__})


def check_followable(proto: ProtocolConfig) -> None:
    """``ConfigError`` unless the warm follower can follow ``proto`` (it reads the whole instance: one shard)."""
    if proto.shards != 1:
        raise ConfigError(
            f"protocols.{proto.name}: the warm follower reads the whole instance; shards = {proto.shards} is for `indexer run` (set shards = 1 to follow it)", key="shards"
        )


class WarmIndexer:
    """A warm book of one protocol instance and the store its snapshots go to (see the module's docstring).

    ``options``: default ``warm_options(settings.warm, <the chain's config>)``. ``last_refresh`` is what the book
    read and computed for the latest stored snapshot (touched accounts, sample, full read and why)."""

    def __init__(self, settings: Settings, proto: ProtocolConfig, engine: Engine, *, rpc: RpcClient | None = None, options: WarmOptions | None = None) -> None:
        check_followable(proto)
        self.settings, self.proto, self.engine = settings, proto, engine
        self.chain = settings.chains[proto.chain]
        if rpc is None:
            rpc, self.chain_id = connect(proto.chain, self.chain)
        else:
            self.chain_id = rpc.chain_id()
        self.rpc = rpc
        self.multicall = Multicaller(
            rpc, address=self.chain.multicall_address, batch_size=self.chain.multicall_batch_size,
            max_in_flight=self.chain.rpc_max_in_flight, calls_per_request=self.chain.rpc_batch_calls,
        )  # fmt: skip
        self.adapter = make_adapter(proto, rpc, self.multicall)
        self.book = WarmBook(self.adapter, options or warm_options(settings.warm, self.chain))
        self.last_refresh: WarmRefresh | None = None

    # --- blocks -----------------------------------------------------------------------------------------------
    def _pin(self, at: int | None) -> tuple[BlockRef, str, int | None]:
        """(block, its parent hash, the head it was pinned from or None)."""
        head = None
        if at is None:
            head = self.rpc.block_number()
            at = max(0, head - self.chain.confirmations)
        raw = self.rpc.get_block(at)
        block = BlockRef(chain_id=self.chain_id, number=int(raw["number"], 16), hash=raw["hash"], timestamp=int(raw["timestamp"], 16))
        return block, str(raw["parentHash"]), head

    def _extends(self, block: BlockRef, parent_hash: str) -> bool:
        """Whether ``block`` is on the chain of the book's block (its parent, or the book's block is still canonical)."""
        last = self.book.block
        assert last is not None
        if block.number == last.number + 1:
            return parent_hash == last.hash
        return str(self.rpc.get_block(last.number)["hash"]) == last.hash

    # --- runs -------------------------------------------------------------------------------------------------
    def start(self, at_block: int | None = None) -> RunResult:
        """Discover accounts since the checkpoint, read them all at the pinned block, store the snapshot."""
        started, before, errors_before = time.monotonic(), self.rpc.request_count, dict(self.rpc.error_counts)
        block, _parent, head = self._pin(at_block)
        market = self.book.load(block)
        start, rescan = _discovery_start(self.engine, self.rpc, self.proto.chain, self.proto, block)
        new: set[AccountKey] = set()
        if start <= block.number:
            filt = self.adapter.log_filter(market)
            chunk = self.chain.log_chunk_blocks
            new = self.adapter.accounts_from_logs(scan_logs(self.rpc, filt.addresses, filt.topics, start, block.number, chunk=chunk, max_chunk=chunk))
        stored = set(known_accounts(self.engine, self.proto.name))
        refresh = self.book.start(block, stored | new, market=market)
        self.last_refresh = refresh
        log.info("warm start protocol=%s block=%d accounts=%d positions=%d", self.proto.name, block.number, len(self.book.known), len(refresh.positions))
        return self._store(refresh, tuple(sorted(new - stored)), rescan, head, started, before, errors_before)

    def step(self, at_block: int | None = None) -> RunResult | None:
        """Refresh to ``at_block`` (default: head - confirmations) and store it; None when the book is there already."""
        if self.book.block is None:
            return self.start(at_block)
        started, before, errors_before = time.monotonic(), self.rpc.request_count, dict(self.rpc.error_counts)
        block, parent, head = self._pin(at_block)
        if block.number <= self.book.block.number:
            return None
        if not self._extends(block, parent):
            return self._reorg(block)
        refresh = self.book.refresh(block)
        self.last_refresh = refresh
        log.info(
            "warm refresh protocol=%s block=%d range=%d-%d touched=%d hot=%d sampled=%d mismatches=%d full=%s positions=%d rpc_requests=%d seconds=%.3f",
            self.proto.name, block.number, refresh.first_block, block.number, len(refresh.touched), refresh.hot, len(refresh.sampled),
            len(refresh.mismatches), refresh.full_read or "-", len(refresh.positions), refresh.rpc_requests, refresh.duration_seconds,
        )  # fmt: skip
        return self._store(refresh, refresh.new_accounts, False, head, started, before, errors_before)

    def _reorg(self, block: BlockRef) -> RunResult:
        """The book's block left the chain: mark the stored runs whose blocks left it orphaned (as ``indexer run``
        does), start again at ``block`` (a full read) and snapshot again the canonical blocks below it whose runs
        were orphaned (full reads too; a reorg is rare)."""
        last = self.book.block
        assert last is not None
        log.warning(
            "warm follower protocol=%s: block %d (%s) left the chain (a reorg); starting again at block %d",
            self.proto.name, last.number, last.hash[:10], block.number,
        )  # fmt: skip
        recompute: list[int] = []
        if self.chain.reorg_depth > 0:
            reorg = recheck_runs(
                self.engine, chain_id=self.chain_id, protocol=self.proto.name, shard=0,
                above_block=block.number - self.chain.reorg_depth, canonical=partial(canonical_hashes, self.rpc),
            )  # fmt: skip
            recompute = sorted(n for n in reorg.recompute if n < block.number)
        result = self.start(block.number)
        for number in recompute:
            run_snapshot(self.settings, self.proto, self.engine, rpc=self.rpc, at_block=number, recheck=False)
        return result

    def follow(
        self,
        *,
        poll_seconds: float | None = None,
        max_blocks: int | None = None,
        max_lag_blocks: int | None = None,
        stop: Callable[[], bool] | None = None,
        on_run: Callable[[RunResult], None] | None = None,
    ) -> int:
        """Store a snapshot per new block until ``stop()`` is true or ``max_blocks`` snapshots were stored (the start,
        when the book has not started, counts as one); returns how many were stored. More than ``max_lag_blocks``
        behind, it jumps to the newest. ``poll_seconds`` and ``max_lag_blocks`` default to the ``[warm]`` section's.

        A step that fails with an RPC, store or reorg error (``IndexerError``; not a configuration error or a node of
        another chain) is logged, and the book starts again with a full read ``poll_seconds`` later: a failed store
        must not leave a block's new accounts out of the store. ``KeyboardInterrupt`` (Ctrl-C, or SIGTERM as the CLI
        maps it) goes through: the snapshot being written is one transaction, stored whole or not at all."""
        warm = self.settings.warm
        poll = warm.poll_seconds if poll_seconds is None else poll_seconds
        lag = warm.max_lag_blocks if max_lag_blocks is None else max_lag_blocks
        done = 0

        def stored(result: RunResult | None) -> bool:
            nonlocal done
            if result is not None:
                done += 1
                if on_run:
                    on_run(result)
            return (max_blocks is not None and done >= max_blocks) or bool(stop and stop())

        while not ((max_blocks is not None and done >= max_blocks) or (stop and stop())):
            try:
                if self.book.block is None:
                    stored(self.start())
                    continue
                target = max(0, self.rpc.block_number() - self.chain.confirmations)
                last = self.book.block.number
                if target <= last:
                    time.sleep(poll)
                    continue
                numbers = [target] if target - last > lag else list(range(last + 1, target + 1))
                for number in numbers:
                    if stored(self.step(number)):
                        break
            except (ConfigError, ChainMismatch):
                raise
            except IndexerError as exc:
                log.error("warm follower protocol=%s failed: %s; starting again with a full read in %.1fs", self.proto.name, exc, poll)
                self.book = WarmBook(self.adapter, self.book.options)
                time.sleep(poll)
        return done

    def _store(
        self, refresh: WarmRefresh, new_accounts: tuple[AccountKey, ...], rescan: bool, head: int | None, started: float, before: int, errors_before: dict[str, int]
    ) -> RunResult:
        block = refresh.block
        sequencer = read_sequencer(self.multicall, self.chain.sequencer_uptime_feed, block.number)
        positions, prices = label_snapshot(list(refresh.positions), list(refresh.prices), self.chain, block, sequencer, name=self.proto.name)
        snapshot = Snapshot(
            chain=self.proto.chain,
            protocol=self.proto.name,
            kind=self.adapter.kind,
            block=block,
            positions=tuple(positions),
            prices=tuple(prices),
            market_state=refresh.market_state,
            new_accounts=new_accounts,
            checkpoint_block=block.number,
            checkpoint_reset=rescan,
            accounts_read=refresh.accounts_read,
            rpc_requests=self.rpc.request_count - before,
            duration_seconds=time.monotonic() - started,
            head_block=head,
            rpc_errors=self.rpc.errors_since(errors_before),
        )
        run_id, created = write_snapshot(self.engine, snapshot)
        if created:
            notify_watchlist(self.engine, self.settings, run_id)
        return RunResult(run_id, created, snapshot)
