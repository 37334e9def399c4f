"""GMX v2 positions from kept state: the adapter's own ``positions`` with the Reader answered locally.

The adapter reads, per snapshot, each account's stored positions (``getAccountPositions``), then per position the
Reader's ``getPositionInfo`` (PnL, pending borrowing and funding fees, close impact) at the feed prices, and then
again at candidate prices while it settles each liquidation price. Of those, only the stored positions are
per-account state; the rest is the Reader's arithmetic over them and a few market-wide DataStore values.

``LocalReader`` answers both from memory: ``getAccountPositions`` from the props the warm book keeps (re-read
when an event names the account), ``getPositionInfo`` with ``gmx_reader.position_info`` over the DataStore values
of the positions' markets, read once per block (one aggregate3). ``ReaderMulticaller`` hands the adapter those
answers and sends every other call (feeds, token data, market props, factors) to the node, so that
``GmxWarm.positions`` runs the adapter's ``positions`` unchanged: the verdicts, fees, liquidation prices and
stored state are the adapter's, and a refresh costs a constant number of requests.

Where a market's settings leave the ported subset (``MarketData.derivable``), or ``referral_storage`` is set
(discounts per trader), or ``mode`` is "reread", ``getPositionInfo`` goes to the node instead: every position
is then re-read every block in batches (with the liquidation price search's rounds), and that is logged.
``verify`` compares the local answers for a sample of positions with the node's; a difference switches the
instance to "reread" for good.

Risk tiers in re-read mode (``cold_every`` > 1, warm refreshes only): ``getPositionInfo`` (and the liquidation
price search) is asked from the node every refresh for the hot accounts (``WarmBook``'s, near liquidation), for the
accounts whose kept props changed, and for a round-robin slice of the others (``int(account) % cold_every``); every
other account's positions are those computed at its last read. A cold position's values (and its ``block``) may so
be up to ``cold_every - 1`` refreshes old: a market-wide move (prices, funding, borrowing fees) reaches it at the
latest then, and the refresh's ``prices`` are the tokens of the positions read this time. A cold position was at
least ``hot_band_bps`` from liquidation at its last read. Full reads (start, mismatch, periodic) read all.
"""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass, field
from typing import Any

from eth_utils import to_checksum_address

from indexer.chain.multicall import Call, CallResult, Multicaller
from indexer.domain import AccountKey, BlockRef, Position
from indexer.protocols.gmx_v2 import MAX_POSITIONS_PER_ACCOUNT, GmxSnapshot, GmxV2Adapter
from indexer.warm.gmx_reader import MarketData, ReaderRevert, position_info, props_key

log = logging.getLogger(__name__)

# How ``getPositionInfo`` is answered: "auto" derives it where the settings allow (else asks the node), "derive"
# always derives (tests), "reread" always asks the node.
GMX_MODES = ("auto", "derive", "reread")


@dataclass
class LocalReader:
    """The Reader's per-position views at one block, from kept props and the markets' DataStore values."""

    reader: str  # Reader address (calls to it are answered here)
    data_store: str  # DataStore address
    block: BlockRef  # the block the answers are for
    props: dict[str, tuple[Any, ...]]  # account -> decoded getAccountPositions(0, MAX) answer
    markets: dict[str, MarketData]  # market token -> its DataStore values at ``block`` (derivable markets only)
    by_key: dict[bytes, Any] = field(default_factory=dict)  # position key -> props
    cache: dict[tuple[Any, ...], Any] = field(default_factory=dict)  # market-wide pending values per prices
    first: dict[bytes, tuple[Call, CallResult]] = field(default_factory=dict)  # first getPositionInfo answered per key

    def __post_init__(self) -> None:
        for items in self.props.values():
            for p in items:
                self.by_key[props_key(p)] = p

    def answer(self, call: Call, block: int) -> CallResult | None:
        """The call's result, or None when the node must answer it."""
        if block != self.block.number or call.target.lower() != self.reader.lower():
            return None
        name = call.fn.name
        if name == "getAccountPositions":
            ds, account, start, end = call.args
            if ds.lower() != self.data_store.lower() or (start, end) != (0, MAX_POSITIONS_PER_ACCOUNT):
                return None
            return CallResult(True, (self.props.get(to_checksum_address(account), ()),), "")
        if name == "getPositionInfo":
            ds, _referral, key, prices, size_delta, ui_receiver, use_size = call.args
            if ds.lower() != self.data_store.lower() or int(ui_receiver, 16) != 0:
                return None
            props = self.by_key.get(bytes(key))
            if props is None:
                return CallResult(False, (), f"{name} reverted on {call.target}")  # EmptyPosition
            md = self.markets.get(to_checksum_address(props[0][1]))
            if md is None:
                return None
            try:
                info = position_info(md, bytes(key), props, _prices(prices), size_delta, bool(use_size), self.block.timestamp, self.cache)
                result = CallResult(True, (info,), "")
            except ReaderRevert:
                result = CallResult(False, (), f"{name} reverted on {call.target}")
            self.first.setdefault(bytes(key), (call, result))
            return result
        return None


def _prices(prices: Any) -> tuple[tuple[int, int], tuple[int, int], tuple[int, int]]:
    return tuple((int(p[0]), int(p[1])) for p in prices)  # type: ignore[return-value]


class ReaderMulticaller(Multicaller):
    """A ``Multicaller`` whose calls ``local`` can answer are answered locally; the others go to ``inner`` in one
    ``run`` (so in as few aggregate3 requests as the adapter's own batch would take)."""

    def __init__(self, inner: Multicaller, local: LocalReader) -> None:
        super().__init__(inner.rpc, address=inner.address, batch_size=inner.batch_size)
        self.inner = inner
        self.local = local

    def run(self, calls: list[Call], block: int) -> list[CallResult]:
        out: list[CallResult | None] = [self.local.answer(c, block) for c in calls]
        remote = [i for i, r in enumerate(out) if r is None]
        if remote:
            for i, res in zip(remote, self.inner.run([calls[i] for i in remote], block), strict=True):
                out[i] = res
        return out  # type: ignore[return-value]


class GmxWarm:
    """``positions_from_states`` for GMX v2 (see the module's docstring)."""

    def __init__(self, adapter: GmxV2Adapter, mode: str = "auto", cold_every: int = 1) -> None:
        if mode not in GMX_MODES:
            raise ValueError(f"gmx mode {mode!r}: one of {', '.join(GMX_MODES)}")
        if cold_every < 1:
            raise ValueError(f"gmx cold_every {cold_every}: must be >= 1")
        self.adapter = adapter
        self.mode = mode
        self.cold_every = cold_every  # re-read mode: refreshes between two reads of a cold account's positions
        self.tick = 0  # tiered re-read refreshes so far (picks the round-robin slice)
        # account -> (its kept props when read, its positions then): reused for cold accounts in re-read mode
        self.kept: dict[AccountKey, tuple[Any, list[Position]]] = {}
        self.reused = 0  # positions of the last ``positions`` taken from ``kept`` (not read at its block)
        self._market_props: dict[str, tuple[str, str, str]] = {}  # market -> (index, long, short): immutable
        self.last: LocalReader | None = None  # the local reader of the last ``positions``
        self.rereading: str = ""  # why getPositionInfo goes to the node ("" while it is derived)

    def _market_data(self, markets: list[str], block: BlockRef) -> dict[str, MarketData]:
        """Each market's DataStore values at ``block`` (Market.Props read once per market and kept)."""
        a = self.adapter
        new = [m for m in markets if m not in self._market_props]
        if new:
            res = a.multicall.run([Call(a.config.reader, a.reader_abi.fn("getMarket"), (a.config.data_store, m)) for m in new], block.number)
            for m, r in zip(new, res, strict=True):
                _token, index, long_token, short_token = (to_checksum_address(x) for x in r.one())
                self._market_props[m] = (index, long_token, short_token)
        data = {m: MarketData(m, *self._market_props[m]) for m in markets}
        named = [(m, name, call) for m in markets for name, call in data[m].calls(a.config.data_store)]
        for (m, name, _call), r in zip(named, a.multicall.run([c for _, _, c in named], block.number), strict=True):
            if name[0] == "flag":
                data[m].fill(name, r.value[0] if r.ok else None)  # a setting only checked may be absent (None: unknown)
            else:
                data[m].fill(name, r.one())  # a value the Reader reads must answer
        return data

    def positions(
        self, market: GmxSnapshot, known: set[AccountKey], states: dict[AccountKey, tuple[Any, ...]], block: BlockRef, *, hot: set[AccountKey] | None = None
    ) -> list[Position]:
        """The adapter's ``positions`` of every known account, with the Reader's per-position views answered from
        ``states`` (the accounts' stored props) and the markets' DataStore values at ``block``. ``hot``: the hot
        accounts of a warm refresh (in re-read mode the cold ones are then read in slices, see the module's
        docstring); None: a full read, every account at ``block``."""
        a = self.adapter
        props = {k.account: v for k, v in states.items()}
        markets = sorted({to_checksum_address(p[0][1]) for items in props.values() for p in items})
        data: dict[str, MarketData] = {}
        if self.mode != "reread" and not self.rereading:
            data = self._market_data(markets, block) if markets else {}
            why = "referral_storage is set (per-trader discounts are not ported)" if int(a.config.referral_storage, 16) != 0 else ""
            why = why or next((f"market {m}: {d.derivable()}" for m, d in data.items() if d.derivable()), "")
            if why and self.mode == "auto":
                self.rereading = why
                self.kept.clear()  # derived before: every account is read from the node once before any is reused
                log.warning("gmx %s: getPositionInfo is re-read from the node every block: %s", a.name, why)
                data = {}
        local = LocalReader(a.config.reader, a.config.data_store, block, props, data)
        self.last = local
        view = copy.copy(a)
        view.multicall = ReaderMulticaller(a.multicall, local)
        accounts = sorted(known)
        self.reused = 0
        if hot is None or self.cold_every == 1 or not (self.mode == "reread" or self.rereading):
            out = view.positions(market, accounts, block)
            self._keep(accounts, states, out)
            return out
        self.tick += 1
        slot = self.tick % self.cold_every
        due = [
            k for k in accounts
            if k in hot or int(k.account, 16) % self.cold_every == slot or k not in self.kept or self.kept[k][0] is not states.get(k)
        ]  # fmt: skip
        read = view.positions(market, due, block)
        self._keep(due, states, read)
        by_account: dict[str, list[Position]] = {}
        for p in read:
            by_account.setdefault(p.account, []).append(p)
        due_set, out = set(due), []
        for k in accounts:  # the adapter's order: by account
            if k in due_set:
                out += by_account.get(k.account, [])
            elif k in states:
                out += self.kept[k][1]
                self.reused += len(self.kept[k][1])
        return out

    def _keep(self, accounts: list[AccountKey], states: dict[AccountKey, tuple[Any, ...]], positions: list[Position]) -> None:
        """Remember the positions just computed for ``accounts``; an account is kept only when every open position of
        its props came back (none left out or unreadable), else it is read again next refresh."""
        by_account: dict[str, list[Position]] = {}
        for p in positions:
            by_account.setdefault(p.account, []).append(p)
        for k in accounts:
            state = states.get(k)
            got = by_account.get(k.account, [])
            if state is not None and len(got) == sum(1 for p in state if p[1][0] > 0):  # sizeInUsd > 0, as ``positions``
                self.kept[k] = (state, got)
            else:
                self.kept.pop(k, None)

    def verify(self, accounts: set[AccountKey], block: BlockRef) -> list[AccountKey]:
        """Accounts among ``accounts`` whose locally derived getPositionInfo (at the feed prices of the last
        ``positions``) differs from the node's answer at ``block``; a difference stops deriving for good."""
        local = self.last
        if local is None or not local.markets or local.block != block:
            return []
        wanted = {k.account for k in accounts}
        items = [(key, call, res) for key, (call, res) in local.first.items() if to_checksum_address(local.by_key[key][0][0]) in wanted]
        if not items:
            return []
        remote = self.adapter.multicall.run([call for _, call, _ in items], block.number)
        bad = sorted({AccountKey(to_checksum_address(local.by_key[key][0][0])) for (key, _call, mine), theirs in zip(items, remote, strict=True) if mine != theirs})
        if bad:
            self.kept.clear()
            self.rereading = f"the derived getPositionInfo differs from the Reader's for {', '.join(k.account for k in bad[:3])}"
            log.warning("gmx %s: %s at block %d; getPositionInfo is re-read from the node from now on", self.adapter.name, self.rereading, block.number)
        return bad

