"""The warm book of one protocol instance: positions' raw state in memory, brought forward block by block.

A position changes only through its protocol's events; interest indexes, funding and oracle prices change for
everyone at once and are few. So a refresh to block B, after the book's last block L, makes:

1. ``adapter.load_market(B)``: indexes, rates, prices (a few aggregate3 calls, however many accounts);
2. one ``eth_getLogs`` over L+1..B for the adapter's ``change_filter`` united with its discovery ``log_filter``;
3. one read (``adapter.read_states``) of the accounts those events name (``touched_accounts``), of newly
   discovered ones, and of a random sample of untouched positions;
4. no read for every other position: its verdict is recomputed from its kept raw state and the market at B
   (``adapter.positions_from_states``, the adapter's own rule; for GMX ``indexer.warm.gmx``).

The sample is compared with the kept state: a difference (a change no event announced) is logged with the
account, and the whole book is re-read at B. ``WarmOptions.full_every`` adds a periodic full re-read.

Risk tiers: the positions the previous refresh found liquidatable or near it (``WarmOptions.hot_band_bps``) are
"hot": up to ``hot_max`` of them, the nearest first, are re-read and compared like the sample at every refresh (so a
change no event announced is found within a block where it matters most); the random sample is drawn from the
others ("cold"). Both are fixed numbers, so the reads of a refresh stay independent of the book's size. In GMX's
re-read mode the hot positions' ``getPositionInfo`` is asked every block, the cold ones' every ``cold_every``
refreshes (``indexer.warm.gmx``).

After the states are brought forward, the adapter's fast exact verdict kernel (``adapter.verdicts``, e.g.
``risk.fast_aave``) decides the whole book (``WarmRefresh.liquidatable``, timed in ``verdict_seconds``); adapters
without one (GMX) take the verdicts from the positions.

So the requests per refresh depend on the number of accounts touched (and the sample size and ``hot_max``), not on
the number of accounts in the book, and the verdicts are those a full read at B gives (``tests/test_warm_refresh.py``).

>>> WarmOptions().sample_size
16
"""

from __future__ import annotations

import logging
import random
import time
from dataclasses import dataclass
from typing import Any

from indexer.chain.logs import scan_logs
from indexer.chain.rpc import UNREADABLE
from indexer.constants import DEFAULT_LOG_CHUNK_BLOCKS, UINT256_MAX, WAD
from indexer.domain import AccountKey, BlockRef, Position, PriceReading
from indexer.errors import IndexerError
from indexer.protocols.base import ProtocolAdapter
from indexer.protocols.gmx_v2 import GmxV2Adapter
from indexer.warm.filters import merge_filters, select
from indexer.warm.gmx import GmxWarm

log = logging.getLogger(__name__)

# Untouched positions re-read and compared with the kept state per refresh: a fixed number (not a share of the
# book), so that the requests of a refresh do not grow with the book; 16 ride in the aggregate3 batch that reads
# the touched accounts. Over a day of 12 s blocks that is ~115k comparisons: a book of 10k positions is checked
# about eleven times over.
DEFAULT_SAMPLE_SIZE = 16
# Refreshes between two full re-reads compared with the kept state, whatever the samples found: the backstop for a
# change no event announces and no sample met (a Comet base transfer made by another contract, see
# ``CompoundV3Adapter.touched_accounts``). 1000 blocks: ~3.3 h at 12 s blocks, ~4 min at Arbitrum's 0.25 s; a full
# read costs about as many requests as accounts / batch size.
DEFAULT_FULL_EVERY = 1000
# Mismatching accounts logged one line each (the rest as a count): a broken change filter must not flood the log.
MISMATCHES_LOGGED = 20
# Hot band: a position whose health factor is below 1.05 (or, without one, whose liquidating price move is below
# 5 %) was one ordinary block's move (a few % on a volatile asset) away from liquidation at the previous refresh.
DEFAULT_HOT_BAND_BPS = 500
# Hot positions re-read per refresh at most (the nearest first): two Aave calls per account plus its balances, so
# 256 accounts ride in about three aggregate3 batches of 500 calls; the bound keeps a refresh's reads independent of
# the book's size even in a crash, when most of the book is near liquidation.
DEFAULT_HOT_MAX = 256
# GMX re-read mode: refreshes between two getPositionInfo reads of a cold position (hot ones: every refresh). 8 blocks
# is ~1.6 min at 12 s blocks, 2 s at Arbitrum's 0.25 s; a cold position is at least ``hot_band_bps`` from liquidation.
DEFAULT_COLD_EVERY = 8


class WarmError(IndexerError):
    """The warm book was asked something it cannot do (a refresh before ``start``, or backwards)."""


@dataclass(frozen=True, slots=True)
class WarmOptions:
    """How a warm book refreshes."""

    sample_size: int = DEFAULT_SAMPLE_SIZE  # untouched positions re-read and compared per refresh
    seed: int = 0  # seed of the sample's random choice (the same seed gives the same samples)
    full_every: int = DEFAULT_FULL_EVERY  # a full re-read, compared with the kept state, every this many refreshes; 0: never
    log_chunk_blocks: int = DEFAULT_LOG_CHUNK_BLOCKS  # eth_getLogs range per request when a refresh spans many blocks
    gmx_mode: str = "auto"  # GMX getPositionInfo: "auto" (derive where ported), "derive" or "reread" (indexer.warm.gmx)
    hot_band_bps: int = DEFAULT_HOT_BAND_BPS  # liquidatable, or HF below 1 + band (no HF: liquidating move below band): hot
    hot_max: int = DEFAULT_HOT_MAX  # hot positions re-read and compared per refresh at most, the nearest first
    cold_every: int = DEFAULT_COLD_EVERY  # GMX re-read mode: refreshes between two getPositionInfo reads of a cold position

    def __post_init__(self) -> None:
        for name, low in (("sample_size", 0), ("full_every", 0), ("hot_band_bps", 0), ("hot_max", 0), ("cold_every", 1), ("log_chunk_blocks", 1)):
            if getattr(self, name) < low:
                raise WarmError(f"WarmOptions.{name} = {getattr(self, name)}: must be >= {low}")


@dataclass(frozen=True, slots=True)
class WarmRefresh:
    """What one refresh (or the start) read and computed, at one block."""

    block: BlockRef  # the block the verdicts are at
    first_block: int  # first block of the log range (the previous refresh's block + 1); = block.number at start
    positions: tuple[Position, ...]  # every position of the book at ``block``
    prices: tuple[PriceReading, ...]  # the prices the verdicts used (``adapter.prices``)
    market_state: dict[str, Any]  # ``adapter.market_state`` (what the store keeps for the models)
    new_accounts: tuple[AccountKey, ...]  # accounts discovered in the log range
    touched: tuple[AccountKey, ...]  # accounts re-read because events named them (or they were new, or unreadable before)
    sampled: tuple[AccountKey, ...]  # untouched positions re-read and compared with the kept state
    mismatches: tuple[AccountKey, ...]  # accounts whose kept state differed from the chain's (then all were re-read)
    hot: int  # hot positions (near liquidation at the previous refresh) re-read and compared, at most ``hot_max``
    liquidatable: tuple[AccountKey, ...]  # keys (``Position.key``) of the positions the exact verdicts find liquidatable at ``block``
    verdict_seconds: float  # time of ``adapter.verdicts`` over the whole book (0.0 without a kernel: from the positions)
    full_read: str  # "" for a warm refresh; why every account was read: "start", "mismatch", "periodic"
    accounts_read: int  # accounts whose state was read from the chain
    rpc_requests: int  # JSON-RPC requests the refresh made
    duration_seconds: float  # wall time


def nearness(position: Position, band_bps: int) -> float | None:
    """How near ``position`` was to liquidation (lower: nearer) when it is hot, else None: liquidatable, or a health
    factor below 1 + band (the health factor - 1), or, without a health factor, a liquidating price move below the
    band (that move). Floats are fine here: a tier decides what is re-read first, never a verdict."""
    hf, drop = position.health_factor, position.price_drop_to_liquidation
    if hf != UINT256_MAX:
        if position.liquidatable or hf * 10_000 < WAD * (10_000 + band_bps):
            return hf / WAD - 1.0
        return None
    if position.liquidatable:
        return -1.0
    if drop is not None and drop * 10_000 < band_bps:
        return drop
    return None


class WarmBook:
    """Raw position state of one protocol instance, kept current with events (see the module's docstring).

    >>> # book = WarmBook(adapter); book.start(block, known); book.refresh(next_block).positions
    """

    def __init__(self, adapter: ProtocolAdapter, options: WarmOptions | None = None) -> None:
        self.adapter = adapter
        self.options = options or WarmOptions()
        self.rng = random.Random(self.options.seed)
        self.known: set[AccountKey] = set()  # every account the discovery events named (as the store's known accounts)
        self.states: dict[AccountKey, Any] = {}  # raw state of each account with a position (``adapter.read_states``)
        self.dirty: set[AccountKey] = set()  # accounts whose last read failed (left out; read again next refresh)
        self.near: list[AccountKey] = []  # hot accounts of the last refresh, the nearest to liquidation first (``nearness``)
        self.block: BlockRef | None = None  # the block the states are at
        self.refreshes = 0
        self.gmx = GmxWarm(adapter, self.options.gmx_mode, self.options.cold_every) if isinstance(adapter, GmxV2Adapter) else None
        needed = ("change_filter", "touched_accounts", "read_states") + (() if self.gmx else ("positions_from_states",))
        for name in needed:
            if not hasattr(adapter, name):
                raise WarmError(f"{adapter.kind}: the adapter has no {name}(): no warm refresh for this kind")

    # --- reads ------------------------------------------------------------------------------------------------
    def load(self, block: BlockRef) -> Any:
        """``adapter.load_market(block)``, the multicaller pinned to the block first."""
        pin = getattr(self.adapter.multicall, "pin", None)
        if pin is not None:
            pin(block)  # reads at the block go by its hash where the node allows (a reorg fails them)
        return self.adapter.load_market(block)

    def _read(self, market: Any, keys: list[AccountKey], block: BlockRef) -> tuple[dict[AccountKey, Any], set[AccountKey]]:
        """(states of ``keys`` with a position, keys to read again): when a read failed (``unreadable``), the
        keys that came back without a position may be the failed ones; they are left out and read next time."""
        if not keys:
            return {}, set()
        before = self.adapter.rpc.error_counts.get(UNREADABLE, 0)
        states = self.adapter.read_states(market, keys, block)  # type: ignore[attr-defined]
        failed = self.adapter.rpc.error_counts.get(UNREADABLE, 0) > before
        return states, ({k for k in keys if k not in states} if failed else set())

    def _positions(self, market: Any, block: BlockRef, hot: set[AccountKey] | None) -> list[Position]:
        """Every position at ``block``; ``hot``: the hot accounts of a warm refresh (GMX re-read mode asks the node
        for them and a slice of the cold ones only), None for a full read."""
        if self.gmx is not None:
            return self.gmx.positions(market, self.known, self.states, block, hot=hot)
        return list(self.adapter.positions_from_states(market, self.known, self.states, block))  # type: ignore[attr-defined]

    def _result(self, market: Any, block: BlockRef, first: int, started: float, before: int, **kw: Any) -> WarmRefresh:
        positions = self._positions(market, block, None)
        return self._done(market, block, first, started, before, positions, **kw)

    def _verdicts(self, market: Any, positions: list[Position]) -> tuple[tuple[AccountKey, ...], float]:
        """(the liquidatable accounts, the kernel's time): ``adapter.verdicts`` over every kept state where the adapter
        has a kernel, else the positions' verdicts. The kernel is exact by contract (``tests/test_fast_verdicts*``); a
        difference from the positions would be a bug: logged, and the positions' verdicts (the stored ones) win."""
        kernel = getattr(self.adapter, "verdicts", None)
        if kernel is None or self.gmx is not None:
            return tuple(sorted({p.key for p in positions if p.liquidatable})), 0.0
        started = time.perf_counter()
        verdicts = kernel(market, self.states)
        seconds = time.perf_counter() - started
        fast = {k for k, ok in verdicts.items() if ok}
        slow = {self._state_key(p) for p in positions if p.liquidatable}
        if fast != slow:  # O(book) set comparison, far cheaper than the positions themselves
            log.error(
                "fast verdicts differ from the positions protocol=%s accounts=%s: the positions' verdicts are used",
                self.adapter.name, ",".join(k.account for k in sorted(fast ^ slow)[:MISMATCHES_LOGGED]),
            )  # fmt: skip
            fast = slow
        return tuple(sorted(fast)), seconds

    def _state_key(self, position: Position) -> AccountKey:
        """The key of ``position``'s kept state: its own key, or its account's (GMX keeps one state per account)."""
        key = position.key
        return key if key in self.states else AccountKey(position.account)

    def _tiers(self, positions: list[Position]) -> None:
        """``near``: the accounts of the hot positions, the nearest to liquidation first."""
        band = self.options.hot_band_bps
        ranked: list[tuple[bool, float, AccountKey]] = []
        for p in positions:
            distance = nearness(p, band)
            if distance is not None:
                ranked.append((not p.liquidatable, distance, self._state_key(p)))
        ranked.sort()
        near: dict[AccountKey, None] = {}  # an account with several positions: ranked by its nearest
        for _, _, key in ranked:
            near.setdefault(key, None)
        self.near = list(near)

    def _done(self, market: Any, block: BlockRef, first: int, started: float, before: int, positions: list[Position], **kw: Any) -> WarmRefresh:
        self.block = block
        liquidatable, seconds = self._verdicts(market, positions)
        self._tiers(positions)
        kw.setdefault("hot", 0)
        return WarmRefresh(
            block=block,
            first_block=first,
            positions=tuple(positions),
            prices=tuple(self.adapter.prices(market)),
            market_state=self.adapter.market_state(market),
            liquidatable=liquidatable,
            verdict_seconds=seconds,
            rpc_requests=self.adapter.rpc.request_count - before,
            duration_seconds=time.monotonic() - started,
            **kw,
        )

    # --- start and refresh ------------------------------------------------------------------------------------
    def start(self, block: BlockRef, known: set[AccountKey], *, market: Any = None) -> WarmRefresh:
        """Read every known account at ``block`` (a full read) and keep their states; ``market``: the adapter's
        ``load_market(block)`` when the caller has it already (it must not have been given to ``positions``)."""
        started, before = time.monotonic(), self.adapter.rpc.request_count
        market = self.load(block) if market is None else market
        self.known = set(known)
        self.states, self.dirty = self._read(market, sorted(self.known), block)
        return self._result(
            market, block, block.number, started, before,
            new_accounts=(), touched=(), sampled=(), mismatches=(), full_read="start", accounts_read=len(self.known),
        )  # fmt: skip

    def refresh(self, block: BlockRef) -> WarmRefresh:
        """Bring the book to ``block`` (after its last block): events since, the accounts they name, the hot
        positions, a sample of the others.

        A refresh that fails (an RPC error) leaves the book at its last block, and may be retried at the same or a
        later block: the states it already replaced are of accounts the retry reads again (the same events name
        them), every other state is untouched."""
        if self.block is None:
            raise WarmError("refresh before start: call start(block, known) first")
        if block.number <= self.block.number:
            raise WarmError(f"refresh to block {block.number}: the book is at block {self.block.number} already")
        started, before = time.monotonic(), self.adapter.rpc.request_count
        adapter, first = self.adapter, self.block.number + 1
        market = self.load(block)
        change, discovery = adapter.change_filter(market), adapter.log_filter(market)  # type: ignore[attr-defined]
        merged = merge_filters(change, discovery)
        chunk = self.options.log_chunk_blocks
        logs = scan_logs(adapter.rpc, merged.addresses, merged.topics, first, block.number, chunk=chunk, max_chunk=chunk)
        new = adapter.accounts_from_logs(select(discovery, logs)) - self.known
        self.known |= new
        named = adapter.touched_accounts(select(change, logs), first, block)  # type: ignore[attr-defined]
        touched = (named & self.known) | new | self.dirty
        self.refreshes += 1
        every = self.options.full_every
        if every and self.refreshes % every == 0:
            return self._full(market, block, first, started, before, new, touched, "periodic")
        hot = [k for k in self.near if k in self.states and k not in touched][: self.options.hot_max]
        hot_set = set(hot)
        candidates = sorted(set(self.states) - touched - hot_set)
        sample = self.rng.sample(candidates, min(self.options.sample_size, len(candidates)))
        checked = hot_set | set(sample)
        fresh, unread = self._read(market, sorted(touched | checked), block)
        mismatches = sorted(k for k in checked if k not in unread and fresh.get(k) != self.states.get(k))
        if mismatches:
            self._log_mismatches([k for k in mismatches if k in hot_set], block, "hot re-read")
            self._log_mismatches([k for k in mismatches if k not in hot_set], block, "sample")
            return self._full(market, block, first, started, before, new, touched, "mismatch", mismatches=mismatches, sample=sample, hot=len(hot))
        for key in touched:
            if key in fresh:
                self.states[key] = fresh[key]
            else:
                self.states.pop(key, None)
        for key in checked - fresh.keys():  # unreadable this time (an equal state keeps its object: caches stay warm)
            self.states.pop(key, None)
        self.dirty = unread
        positions = self._positions(market, block, hot_set)
        if self.gmx is not None and checked:
            bad = self.gmx.verify(checked, block)  # the derived Reader answers against the node's
            if bad:
                self._log_mismatches(bad, block, "GMX getPositionInfo")
                market = self.load(block)  # a fresh market object: ``positions`` fills it
                return self._full(market, block, first, started, before, new, touched, "mismatch", mismatches=bad, sample=sample, hot=len(hot))
        return self._done(
            market, block, first, started, before, positions,
            new_accounts=tuple(sorted(new)), touched=tuple(sorted(touched)), sampled=tuple(sorted(sample)), mismatches=(), full_read="",
            accounts_read=len(touched | checked), hot=len(hot),
        )  # fmt: skip

    def _full(
        self,
        market: Any,
        block: BlockRef,
        first: int,
        started: float,
        before: int,
        new: set[AccountKey],
        touched: set[AccountKey],
        why: str,
        *,
        mismatches: list[AccountKey] | None = None,
        sample: list[AccountKey] | None = None,
        hot: int = 0,
    ) -> WarmRefresh:
        """Re-read every known account at ``block``; a periodic re-read also compares them with the kept states."""
        fresh, unread = self._read(market, sorted(self.known), block)
        if mismatches is None:
            mismatches = sorted(k for k in self.known - touched - unread if fresh.get(k) != self.states.get(k))
            if mismatches:
                self._log_mismatches(mismatches, block, "periodic full read")
        self.states, self.dirty = fresh, unread
        return self._result(
            market, block, first, started, before,
            new_accounts=tuple(sorted(new)), touched=tuple(sorted(touched)), sampled=tuple(sorted(sample or ())),
            mismatches=tuple(mismatches), full_read=why, accounts_read=len(self.known), hot=hot,
        )  # fmt: skip

    def _log_mismatches(self, keys: list[AccountKey], block: BlockRef, what: str) -> None:
        for key in keys[:MISMATCHES_LOGGED]:
            log.warning(
                "warm state mismatch protocol=%s block=%d account=%s market=%s check=%s: kept state differs from the chain; re-reading every account",
                self.adapter.name, block.number, key.account, key.market or "-", what,
            )  # fmt: skip
        if len(keys) > MISMATCHES_LOGGED:
            log.warning("warm state mismatch protocol=%s block=%d: %d more accounts", self.adapter.name, block.number, len(keys) - MISMATCHES_LOGGED)
