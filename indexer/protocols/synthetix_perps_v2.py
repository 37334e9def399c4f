"""Synthetix PerpsV2 adapter: positions per (market proxy, account), decided with ``risk.synthetix_perps``.

Discovery: ``PositionModified`` from each configured market proxy (events are emitted by the proxy).
Reads per snapshot, all through Multicall3 at the pinned block:
1. per market: ``marketKey``, ``baseAsset``, ``assetPrice``, ``marketSkew``, funding state; settings;
2. per market: the latest funding-sequence entry and the settings keyed by the market key;
3. per (market, account): ``positions(account)`` and ``isFlagged(account)``;
4. the funding-sequence entries at the positions' ``lastFundingIndex``.
Everything else (PnL, funding, margins, the verdict, the liquidation price) is computed off-chain with
the protocol's 18-decimal arithmetic.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from eth_utils import to_checksum_address

from indexer.chain.abi import load_abi
from indexer.chain.multicall import Call
from indexer.constants import ZERO_ADDRESS
from indexer.domain import AccountKey, BlockRef, Position, PriceReading
from indexer.errors import DecodeError
from indexer.pricing.chainlink import read_feeds
from indexer.protocols.base import LogFilter, ProtocolAdapter, accounts_in_topics
from indexer.risk.fast_synthetix import PerpsVerdicts
from indexer.risk.reprice.synthetix_perps_v2 import evaluation
from indexer.risk.state import encode
from indexer.risk.synthetix_perps import PerpsMarket, PerpsPosition, approx_liquidation_price, exact_liquidation_price

log = logging.getLogger(__name__)

_MARKET_VIEWS = ("marketKey", "baseAsset", "assetPrice", "marketSkew", "fundingSequenceLength", "fundingLastRecomputed", "fundingRateLastRecomputed")
_KEYED_SETTINGS = ("skewScale", "maxFundingVelocity", "liquidationBufferRatio", "liquidationPremiumMultiplier")
_GLOBAL_SETTINGS = ("liquidationFeeRatio", "minKeeperFee", "maxKeeperFee", "keeperLiquidationFee")


@dataclass(frozen=True, slots=True)
class PerpsSnapshot:
    """What ``load_market`` read: every configured market at the pinned block."""

    markets: dict[str, PerpsMarket]  # by proxy address (checksummed)
    prices: tuple[PriceReading, ...]


def _text(value: bytes) -> str:
    return value.rstrip(b"\0").decode(errors="replace")


class SynthetixPerpsV2Adapter(ProtocolAdapter):
    """Synthetix PerpsV2 markets on one chain."""

    kind = "synthetix_perps_v2"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.abi = load_abi("PerpsV2Market")
        self.settings_abi = load_abi("PerpsV2MarketSettings")
        self._fast = PerpsVerdicts()  # compiled kept states, for ``verdicts``

    def load_market(self, block: BlockRef) -> PerpsSnapshot:
        n, fn, sfn = block.number, self.abi.fn, self.settings_abi.fn
        settings = self.config.market_settings
        markets = [to_checksum_address(m) for m in self.config.markets]
        first = self.multicall.run(
            [Call(m, fn(name)) for m in markets for name in _MARKET_VIEWS] + [Call(settings, sfn(name)) for name in _GLOBAL_SETTINGS], n
        )
        per = len(_MARKET_VIEWS)
        globals_ = {name: r.one() for name, r in zip(_GLOBAL_SETTINGS, first[per * len(markets) :], strict=True)}
        views = []
        for k, m in enumerate(markets):
            values = first[k * per : (k + 1) * per]
            if not all(r.ok for r in values):
                raise DecodeError(f"PerpsV2 market {m} did not answer its views at block {n}: {next(r.error for r in values if not r.ok)}")
            views.append(dict(zip(_MARKET_VIEWS, (r.value for r in values), strict=True)))
        second_calls: list[Call] = []
        for m, v in zip(markets, views, strict=True):
            key = v["marketKey"][0]
            second_calls.append(Call(m, fn("fundingSequence"), (v["fundingSequenceLength"][0] - 1,)))
            second_calls += [Call(settings, sfn(name), (key,)) for name in _KEYED_SETTINGS]
        second = self.multicall.run(second_calls, n)
        # The configured Chainlink feed behind a market's rate only dates its price (the 'stale' label).
        feed_of = {to_checksum_address(m): to_checksum_address(f) for m, f in self.config.price_feeds.items()}
        feeds = read_feeds(self.multicall, [feed_of[m] for m in markets if m in feed_of], n)
        out: dict[str, PerpsMarket] = {}
        prices = []
        step = 1 + len(_KEYED_SETTINGS)
        for k, (m, v) in enumerate(zip(markets, views, strict=True)):
            latest, *keyed = (r.one() for r in second[k * step : (k + 1) * step])
            price, invalid = v["assetPrice"]
            market = PerpsMarket(
                address=m,
                market_key=v["marketKey"][0],
                base_asset=_text(v["baseAsset"][0]),
                price=price,
                price_invalid=bool(invalid),
                skew=v["marketSkew"][0],
                funding_last_recomputed=v["fundingLastRecomputed"][0],
                funding_rate_last_recomputed=v["fundingRateLastRecomputed"][0],
                latest_funding_entry=latest,
                skew_scale=keyed[0],
                max_funding_velocity=keyed[1],
                liquidation_buffer_ratio=keyed[2],
                liquidation_premium_multiplier=keyed[3],
                liquidation_fee_ratio=globals_["liquidationFeeRatio"],
                min_keeper_fee=globals_["minKeeperFee"],
                max_keeper_fee=globals_["maxKeeperFee"],
                keeper_liquidation_fee=globals_["keeperLiquidationFee"],
                block_timestamp=block.timestamp,
            )
            if invalid:
                log.warning("perps %s: market %s (%s) reports an invalid price at block %d; canLiquidate is false there", self.name, m, market.base_asset, n)
            out[m] = market
            feed = feeds.get(feed_of.get(m, ""))
            prices.append(PriceReading(m, market.base_asset, price, 18, m, feed.answer if feed else None, feed.updated_at if feed else None))
        return PerpsSnapshot(out, tuple(prices))

    def log_filter(self, market: PerpsSnapshot) -> LogFilter:
        return LogFilter(addresses=list(market.markets), topics=[[self.abi.event("PositionModified").topic0]])

    def accounts_from_logs(self, logs: list[dict[str, Any]]) -> set[AccountKey]:
        """(account, market proxy) of each ``PositionModified`` (the proxy emits it)."""
        ev = self.abi.event("PositionModified")
        where = {ev.topic0: (ev.topic_index("account"),)}
        by_market: defaultdict[str, list[dict[str, Any]]] = defaultdict(list)
        for entry in logs:
            if entry["topics"][0].lower() == ev.topic0:
                by_market[to_checksum_address(entry["address"])].append(entry)
        return {AccountKey(k.account, market) for market, group in by_market.items() for k in accounts_in_topics(group, where)}

    def prices(self, market: PerpsSnapshot) -> list[PriceReading]:
        return list(market.prices)

    def market_state(self, market: PerpsSnapshot) -> dict[str, Any]:
        """Every market's ``PerpsMarket`` (``risk.state.encode``), by proxy address (``Position.market``)."""
        return {address: encode(m) for address, m in market.markets.items()}

    def positions(self, market: PerpsSnapshot, accounts: list[AccountKey], block: BlockRef) -> list[Position]:
        return self.positions_from_states(market, set(accounts), self.read_states(market, accounts, block), block)  # the warm refresh's two halves

    def position_of(self, m: PerpsMarket, p: PerpsPosition, flagged: bool, block: BlockRef) -> Position:
        v, ev = evaluation(m, p)  # the same code the stored position's model recomputes it with
        exact = exact_liquidation_price(m, p)
        details = {
            "market_key": _text(m.market_key),
            "size": str(p.size),
            "last_price": str(p.last_price),
            "mark_price": str(m.price),
            "price_invalid": str(m.price_invalid).lower(),
            "profit_loss": str(v.profit_loss),
            "accrued_funding": str(v.accrued_funding),
            "remaining_margin": str(v.remaining_margin),
            "liquidation_margin": str(v.liquidation_margin),
            "liquidation_premium": str(v.liquidation_premium),
            "liquidation_fee": str(v.liquidation_fee),
            "protocol_liquidation_price": str(approx_liquidation_price(m, p)),
            "flagged": str(flagged).lower(),
            "verdict": "liquidatable" if v.can_liquidate else ("invalid price" if v.rule else ("no position" if not p.size else "healthy")),
        }
        move = None
        if exact is not None:
            details["liquidation_price"] = str(exact)
            move = abs(m.price - exact) / m.price if m.price else None
        return Position(
            protocol=self.name,
            kind=self.kind,
            account=p.account,
            block=block,
            collateral_usd=ev.collateral_usd,
            debt_usd=ev.debt_usd,
            nlv_usd=ev.nlv_usd,
            health_factor=ev.health_factor,
            liquidatable=ev.liquidatable,
            liquidation_threshold_bps=m.liquidation_buffer_ratio // 10**14,
            price_drop_to_liquidation=move,
            legs=ev.legs,
            details=details,
            market=m.address,
            state=encode(p),
        )

    # --- warm refresh (``indexer.warm``): the events that change positions, positions from kept state -------
    def change_filter(self, market: PerpsSnapshot) -> LogFilter:
        """Every event that can change an account's ``positions(account)`` or ``isFlagged(account)`` in a market:
        ``PositionModified`` (trades, margin transfers, liquidations), ``MarginTransferred``, ``PositionFlagged`` and
        ``PositionLiquidated``. Funding changes no position: the sequence entry a position points at never
        changes, and the market's latest entry and funding rate are read by ``load_market``."""
        names = ("PositionModified", "MarginTransferred", "PositionFlagged", "PositionLiquidated")
        return LogFilter(addresses=list(market.markets), topics=[[self.abi.event(name).topic0 for name in names]])

    def touched_accounts(self, logs: list[dict[str, Any]], first_block: int, block: BlockRef) -> set[AccountKey]:
        """(account, market proxy) pairs the ``change_filter`` logs name: an indexed topic in ``PositionModified``
        and ``MarginTransferred``, a data word in ``PositionFlagged`` and ``PositionLiquidated`` (not indexed)."""
        where: dict[str, tuple[str, int]] = {}
        for name in ("PositionModified", "MarginTransferred"):
            ev = self.abi.event(name)
            where[ev.topic0] = ("topic", ev.topic_index("account"))
        for name in ("PositionFlagged", "PositionLiquidated"):
            ev = self.abi.event(name)
            where[ev.topic0] = ("data", [n for n, _ in ev.data].index("account"))
        keys: set[AccountKey] = set()
        for entry in logs:
            topics = entry["topics"]
            how = where.get(topics[0].lower())
            if how is None:
                continue
            kind, i = how
            if kind == "topic":
                if i >= len(topics):
                    continue
                word = topics[i]
            else:
                data = entry["data"][2:]
                word = data[64 * i : 64 * (i + 1)]
                if len(word) < 64:
                    continue
            account = to_checksum_address("0x" + word[-40:])
            if account != ZERO_ADDRESS:
                keys.add(AccountKey(account, to_checksum_address(entry["address"])))
        return keys

    def read_states(self, market: PerpsSnapshot, keys: list[AccountKey], block: BlockRef) -> dict[AccountKey, tuple[PerpsPosition, bool]]:
        """(``PerpsPosition`` with its funding entry, ``isFlagged``) of each key with a position (size or margin)
        in a configured market; others (or unreadable ones) absent. The reads of ``positions``."""
        keys = [k for k in sorted(keys) if k.market in market.markets]
        fn = self.abi.fn
        results = self.multicall.run([Call(k.market, fn(name), (k.account,)) for k in keys for name in ("positions", "isFlagged")], block.number)
        raw = []
        for j, key in enumerate(keys):
            pos_r, flag_r = results[2 * j], results[2 * j + 1]
            if not (pos_r.ok and flag_r.ok):
                self.unreadable(key.account, block.number, f"PerpsV2 positions/isFlagged: {pos_r.error or flag_r.error}", market=key.market)
                continue
            pid, last_index, margin, last_price, size = pos_r.one()
            if size or margin:
                raw.append((key, pid, last_index, margin, last_price, size, bool(flag_r.one())))
        wanted = sorted({(key.market, idx) for key, _, idx, *_ in raw})
        entries_r = self.multicall.run([Call(m, fn("fundingSequence"), (idx,)) for m, idx in wanted], block.number)
        entries = {w: r.one() for w, r in zip(wanted, entries_r, strict=True) if r.ok}
        out: dict[AccountKey, tuple[PerpsPosition, bool]] = {}
        for key, pid, last_index, margin, last_price, size, flagged in raw:
            if (key.market, last_index) not in entries:
                self.unreadable(key.account, block.number, f"PerpsV2 fundingSequence({last_index}) failed", market=key.market)
                continue
            out[key] = (PerpsPosition(key.account, pid, last_index, margin, last_price, size, entries[(key.market, last_index)]), flagged)
        return out

    def verdicts(self, market: PerpsSnapshot, states: Mapping[AccountKey, tuple[PerpsPosition, bool]]) -> dict[AccountKey, bool]:
        """``{key: liquidatable}`` for the kept states: exactly ``Position.liquidatable`` of the position
        ``positions_from_states`` makes of each (``canLiquidate`` at the market's price: valid price, and the remaining
        margin less the liquidation premium at most the liquidation margin), computed by ``risk.fast_synthetix``
        without building positions. States of a market not configured are absent, as there."""
        return self._fast(market.markets, states)

    def positions_from_states(
        self, market: PerpsSnapshot, known: set[AccountKey], states: dict[AccountKey, tuple[PerpsPosition, bool]], block: BlockRef
    ) -> list[Position]:
        """``positions`` of accounts whose state was read before (``read_states``, kept by ``indexer.warm``) at
        ``market``: the same verdicts when the states are current (a position's funding entry never changes)."""
        return [self.position_of(market.markets[k.market], p, flagged, block) for k, (p, flagged) in sorted(states.items()) if k.market in market.markets]
