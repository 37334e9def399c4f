"""GMX v2 adapter: every position of the accounts named by position events, decided with ``risk.gmx``.

Discovery: ``EventLog1`` logs of the EventEmitter whose event-name hash is PositionIncrease or
PositionDecrease; topic 2 is the account. Reads per snapshot (Multicall3, pinned block):
1. per account: ``Reader.getAccountPositions``; the DataStore's ``MIN_COLLATERAL_USD``;
2. per market: ``Reader.getMarket`` and the market's liquidation factors from the DataStore;
3. the configured Chainlink feeds and token decimals -> (min, max) prices per unit x 1e30;
4. per position: ``Reader.getPositionInfo`` at those prices (PnL and fees with pending borrowing/funding).
The verdict is ``isPositionLiquidatable`` with ``forLiquidation=true`` on those values, as a keeper's
liquidation decides it after updating funding and borrowing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from eth_abi import encode
from eth_utils import keccak, to_checksum_address

from indexer.chain.abi import load_abi
from indexer.chain.multicall import Call
from indexer.constants import ZERO_ADDRESS
from indexer.domain import AccountKey, BlockRef, Position, PriceReading
from indexer.errors import DecodeError
from indexer.pricing.chainlink import read_feeds
from indexer.protocols.base import LogFilter, ProtocolAdapter
from indexer.risk.gmx import (
    FLOAT_PRECISION,
    BoundarySearch,
    GmxPosition,
    apply_factor,
    is_liquidatable_remaining,
    liquidation_price,
    remaining_collateral_usd,
)
from indexer.risk.reprice.gmx_v2 import GmxOracle, encode_state, evaluate_position

log = logging.getLogger(__name__)

# Positions read per account in one getAccountPositions call (GMX UIs page the same way).
MAX_POSITIONS_PER_ACCOUNT = 100
POSITION_EVENTS = ("PositionIncrease", "PositionDecrease")


# --- DataStore keys, as gmx-synthetics Keys.sol derives them ---------------------------------------------
def key_of(name: str) -> bytes:
    return keccak(encode(["string"], [name]))


def market_key(name: str, market: str) -> bytes:
    return keccak(encode(["bytes32", "address"], [key_of(name), market]))


def position_key(account: str, market: str, collateral_token: str, is_long: bool) -> bytes:
    """``Position.getPositionKey``: keccak256(abi.encode(account, market, collateralToken, isLong))."""
    return keccak(encode(["address", "address", "address", "bool"], [account, market, collateral_token, is_long]))


MIN_COLLATERAL_USD = key_of("MIN_COLLATERAL_USD")
# Rounds of Reader calls (one batch each) the liquidation price search may take before it settles for
# the model's estimate; in the tests most settle in one round and none needs more than twelve.
LIQUIDATION_PRICE_ROUNDS = 16


@dataclass(frozen=True, slots=True)
class _Meta:
    """What identifies a position read with getPositionInfo."""

    key: bytes
    account: str
    market: str
    collateral: str
    is_long: bool
    index: str
    long_token: str
    short_token: str


@dataclass(frozen=True, slots=True)
class GmxSnapshot:
    """Addresses and the block; markets and prices are read in ``positions`` (they depend on the accounts)."""

    block: BlockRef
    prices: list[PriceReading]


class GmxV2Adapter(ProtocolAdapter):
    """GMX v2 on one chain: DataStore + Reader + EventEmitter."""

    kind = "gmx_v2"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.reader_abi = load_abi("GmxReader")
        self.store_abi = load_abi("GmxDataStore")
        self.emitter_abi = load_abi("GmxEventEmitter")
        self.erc20 = load_abi("ERC20")

    def load_market(self, block: BlockRef) -> GmxSnapshot:
        return GmxSnapshot(block, [])

    def log_filter(self, market: GmxSnapshot) -> LogFilter:
        names = ["0x" + keccak(text=n).hex() for n in POSITION_EVENTS]
        return LogFilter(addresses=[self.config.event_emitter], topics=[[self.emitter_abi.event("EventLog1").topic0], names])

    def accounts_from_logs(self, logs: list[dict[str, Any]]) -> set[AccountKey]:
        keys: set[AccountKey] = set()
        t0 = self.emitter_abi.event("EventLog1").topic0
        for entry in logs:
            topics = entry["topics"]
            if topics[0].lower() == t0 and len(topics) > 2:
                account = to_checksum_address("0x" + topics[2][-40:])
                if account != ZERO_ADDRESS:
                    keys.add(AccountKey(account))
        return keys

    def prices(self, market: GmxSnapshot) -> list[PriceReading]:
        return list(market.prices)

    # --- reads -------------------------------------------------------------------------------------
    def _unit_prices(self, snap: GmxSnapshot, tokens: list[str]) -> tuple[dict[str, tuple[int, int]], dict[str, tuple[str, int]]]:
        """(min, max) per smallest unit x 1e30 from the configured feeds, for tokens that have one.

        A feed answering <= 0 gives no price (GMX's oracle refuses it: no order or liquidation executes in a
        market using the token): its reading is stored, the token is left out of the prices."""
        feeds_cfg = {to_checksum_address(t): f for t, f in self.config.price_feeds.items()}
        fixed = {to_checksum_address(t): d for t, d in self.config.token_decimals.items()}
        tokens = [t for t in tokens if t in feeds_cfg]
        n = snap.block.number
        feeds = read_feeds(self.multicall, [feeds_cfg[t] for t in tokens], n)
        decimals = self.multicall.run([Call(t, self.erc20.fn("decimals")) for t in tokens], n)
        symbols = self.multicall.run([Call(t, self.erc20.fn("symbol")) for t in tokens], n)
        spread = self.config.price_spread_bps
        out: dict[str, tuple[int, int]] = {}
        meta: dict[str, tuple[str, int]] = {}
        for t, dec_r, sym_r in zip(tokens, decimals, symbols, strict=True):
            feed = feeds.get(feeds_cfg[t])
            dec = fixed[t] if t in fixed else dec_r.one() if dec_r.ok else None
            if feed is None or dec is None:
                why = "no decimals (a synthetic token? set token_decimals)" if dec is None else f"feed {feeds_cfg[t]}"
                raise DecodeError(f"gmx {self.name}: no usable price for {t} at block {n} ({why})")
            exp = 30 - dec - feed.decimals
            mid = feed.answer * 10**exp if exp >= 0 else feed.answer // 10**-exp
            meta[t] = (sym_r.value[0] if sym_r.ok else t[:8], dec)
            if feed.answer > 0:
                out[t] = (mid * (10_000 - spread) // 10_000, -(-mid * (10_000 + spread) // 10_000))
            snap.prices.append(PriceReading(t, meta[t][0], mid, 30 - dec, feed.feed, feed.answer, feed.updated_at))
        return out, meta

    def positions(self, market: GmxSnapshot, accounts: list[AccountKey], block: BlockRef) -> list[Position]:
        n, r, ds = block.number, self.config.reader, self.config.data_store
        owners = sorted({k.account for k in accounts})
        first = self.multicall.run(
            [Call(r, self.reader_abi.fn("getAccountPositions"), (ds, a, 0, MAX_POSITIONS_PER_ACCOUNT)) for a in owners]
            + [Call(ds, self.store_abi.fn("getUint"), (MIN_COLLATERAL_USD,))],
            n,
        )
        min_collateral_usd = first[-1].one()
        props = []
        for account, res in zip(owners, first[:-1], strict=True):
            if not res.ok:
                self.unreadable(account, n, f"Reader.getAccountPositions: {res.error}")  # never "no positions"
                continue
            props += [p for p in res.one() if p[1][0] > 0]  # sizeInUsd > 0
        markets = sorted({to_checksum_address(p[0][1]) for p in props})
        second = self.multicall.run(
            [
                c
                for m in markets
                for c in (
                    Call(r, self.reader_abi.fn("getMarket"), (ds, m)),
                    Call(ds, self.store_abi.fn("getUint"), (market_key("MIN_COLLATERAL_FACTOR_FOR_LIQUIDATION", m),)),
                    Call(ds, self.store_abi.fn("getUint"), (market_key("MAX_POSITION_IMPACT_FACTOR_FOR_LIQUIDATIONS", m),)),
                )
            ],
            n,
        )
        info: dict[str, tuple[tuple[str, str, str, str], int, int]] = {}
        for k, m in enumerate(markets):
            props_m = tuple(to_checksum_address(a) for a in second[3 * k].one())
            info[m] = (props_m, second[3 * k + 1].one(), second[3 * k + 2].one())  # type: ignore[assignment]
        tokens = sorted({t for props_m, _, _ in info.values() for t in props_m[1:]} | {to_checksum_address(p[0][2]) for p in props})
        unit, meta = self._unit_prices(market, tokens)
        calls, metas = [], []
        unpriced: dict[str, set[str]] = {}
        skipped = 0
        refused = {t for t, (_sym, _dec) in meta.items() if t not in unit}  # feed answer <= 0
        for p in props:
            account, m, collateral = (to_checksum_address(a) for a in p[0])
            is_long = bool(p[2][0])
            key = position_key(account, m, collateral, is_long)
            (_, index, long_token, short_token), _, _ = info[m]
            missing = {t for t in (index, long_token, short_token, collateral) if t not in unit}
            if missing:
                unpriced.setdefault(m, set()).update(missing)
                skipped += 1
                continue
            prices = (unit[index], unit[long_token], unit[short_token])
            calls.append(Call(r, self.reader_abi.fn("getPositionInfo"), (ds, self.config.referral_storage, key, prices, 0, ZERO_ADDRESS, True)))
            metas.append(_Meta(key, account, m, collateral, is_long, index, long_token, short_token))
        if unpriced:
            log.warning(
                "positions left out protocol=%s block=%d count=%d reason=%s",
                self.name,
                n,
                skipped,
                "tokens without a price (no price_feeds entry, or a feed answer <= 0 that GMX refuses): "
                + "; ".join(f"market {m}: {', '.join(t + (' (answer <= 0)' if t in refused else '') for t in sorted(ts))}" for m, ts in sorted(unpriced.items())),
            )
        infos = self.multicall.run(calls, n)
        found: list[GmxPosition] = []
        read: list[_Meta] = []  # the metas of ``found``, index for index
        for meta_p, res in zip(metas, infos, strict=True):
            if not res.ok:
                self.unreadable(meta_p.account, n, f"Reader.getPositionInfo(0x{meta_p.key.hex()}): {res.error}", market=meta_p.market)  # never a zero position
                continue
            found.append(self._from_info(res.value, meta_p, unit[meta_p.index], info[meta_p.market], min_collateral_usd))
            read.append(meta_p)
        metas = read
        liq_prices = self._liquidation_prices(found, metas, unit, info, n)
        mids = {pr.asset: pr.price for pr in market.prices}
        return [self.position_of(pos, meta, block, liq_prices.get(pos.key), mids) for pos in found]

    def _from_info(self, value: Any, m: _Meta, index_price: tuple[int, int], market_info: Any, min_collateral_usd: int) -> GmxPosition:
        (pi,) = self.reader_abi.named("getPositionInfo", value).values()  # one unnamed struct
        nums, fees = pi["position"]["numbers"], pi["fees"]
        _, min_factor, max_impact = market_info
        return GmxPosition(
            key="0x" + m.key.hex(),
            account=m.account,
            market=m.market,
            collateral_token=m.collateral,
            index_token=m.index,
            is_long=m.is_long,
            size_in_usd=nums["sizeInUsd"],
            size_in_tokens=nums["sizeInTokens"],
            collateral_amount=nums["collateralAmount"],
            index_price=index_price,
            collateral_price=(fees["collateralTokenPrice"]["min"], fees["collateralTokenPrice"]["max"]),
            collateral_is_index=m.collateral == m.index,
            base_pnl_usd=pi["basePnlUsd"],
            impact_usd=pi["executionPriceResult"]["totalImpactUsd"],
            total_cost_amount=fees["totalCostAmount"],
            position_fee_usd=apply_factor(nums["sizeInUsd"], fees["positionFeeFactor"]),
            borrowing_fee_usd=fees["borrowing"]["borrowingFeeUsd"],
            funding_fee_amount=fees["funding"]["fundingFeeAmount"],
            min_collateral_usd=min_collateral_usd,
            min_collateral_factor_for_liquidation=min_factor,
            max_position_impact_factor_for_liquidations=max_impact,
        )

    def _liquidation_prices(
        self, found: list[GmxPosition], metas: list[_Meta], unit: dict[str, tuple[int, int]], market_info: dict[str, Any], block: int
    ) -> dict[str, tuple[int, bool]]:
        """Index price (min = max) at which each position becomes liquidatable, and whether it is exact.

        The model (``risk.gmx.liquidation_price``) gives the start; ``BoundarySearch`` then asks the Reader
        itself at candidate prices, two per position per round, all positions in one batch per round,
        re-anchoring the model on what the Reader returned, until the verdict flips between adjacent units. Where the search does not settle within
        ``LIQUIDATION_PRICE_ROUNDS`` rounds the model's price is kept and marked inexact."""
        r, ds = self.config.reader, self.config.data_store
        out: dict[str, tuple[int, bool]] = {}
        searches: dict[int, BoundarySearch] = {}
        for i, p in enumerate(found):
            est = liquidation_price(p)
            if est is None:
                continue
            out[p.key] = (est, False)
            s = 1 if p.is_long else -1
            searches[i] = BoundarySearch(start=est, toward_safety=s)
        for _ in range(LIQUIDATION_PRICE_ROUNDS):
            live = [i for i, srch in searches.items() if srch.result is None and not srch.failed]
            if not live:
                break
            calls = []
            for i in live:
                m = metas[i]
                for x in searches[i].propose():
                    at = (x, x)
                    prices = (at, at if m.long_token == m.index else unit[m.long_token], at if m.short_token == m.index else unit[m.short_token])
                    calls.append(Call(r, self.reader_abi.fn("getPositionInfo"), (ds, self.config.referral_storage, m.key, prices, 0, ZERO_ADDRESS, True)))
            results = self.multicall.run(calls, block)
            for j, i in enumerate(live):
                pair, anchored = [], None
                for k, x in enumerate(searches[i].propose()):
                    res = results[2 * j + k]
                    if not res.ok:
                        break
                    q = self._from_info(res.value, metas[i], (x, x), market_info[metas[i].market], found[i].min_collateral_usd)
                    pair.append(is_liquidatable_remaining(q, remaining_collateral_usd(q))[0])
                    anchored = anchored or q
                if len(pair) < 2:
                    searches[i].failed = True
                    continue
                searches[i].observe(pair[0], pair[1], proposal=liquidation_price(anchored, searches[i].x))
        for i, srch in searches.items():
            if srch.result is not None:
                out[found[i].key] = (srch.result, True)
        return out

    def position_of(
        self, p: GmxPosition, meta: dict[str, tuple[str, int]], block: BlockRef, liq_price: tuple[int, bool] | None, mids: dict[str, int]
    ) -> Position:
        """The position and its verdict, computed by the same code its stored model recomputes it with;
        ``mids``: the feed price per unit x 1e30 of each token (the answers a shock moves)."""
        oracle = GmxOracle(
            index_symbol=meta[p.index_token][0],
            index_decimals=meta[p.index_token][1],
            index_answer=mids[p.index_token],
            collateral_symbol=meta[p.collateral_token][0],
            collateral_decimals=meta[p.collateral_token][1],
            collateral_answer=mids[p.collateral_token],
            liquidation_index_price=liq_price[0] if liq_price is not None else None,
            liquidation_index_price_exact=liq_price is not None and liq_price[1],
        )
        at = evaluate_position(p, oracle, p.index_price, p.collateral_price)
        remaining, reason, ev = at.remaining_usd, at.reason, at.evaluation
        liquidatable = ev.liquidatable
        liq = liq_price[0] if liq_price is not None else None
        mid = (p.index_price[0] + p.index_price[1]) // 2
        details = {
            "position_key": p.key,
            "market": p.market,
            "is_long": str(p.is_long).lower(),
            "size_in_usd_1e30": str(p.size_in_usd),
            "size_in_tokens": str(p.size_in_tokens),
            "index_price_min": str(p.index_price[0]),
            "index_price_max": str(p.index_price[1]),
            "collateral_price_min": str(p.collateral_price[0]),
            "collateral_price_max": str(p.collateral_price[1]),
            "base_pnl_usd_1e30": str(p.base_pnl_usd),
            "total_cost_amount": str(p.total_cost_amount),
            "borrowing_fee_usd_1e30": str(p.borrowing_fee_usd),
            "funding_fee_amount": str(p.funding_fee_amount),
            "remaining_collateral_usd_1e30": str(remaining),
            "min_collateral_usd_1e30": str(p.min_collateral_usd),
            "min_collateral_factor_for_liquidation": str(p.min_collateral_factor_for_liquidation),
            "verdict": reason or "healthy",
        }
        if liq_price is not None:
            details["liquidation_index_price"] = str(liq_price[0])
            details["liquidation_index_price_exact"] = str(liq_price[1]).lower()
        return Position(
            protocol=self.name,
            kind=self.kind,
            account=p.account,
            block=block,
            collateral_usd=ev.collateral_usd,
            debt_usd=ev.debt_usd,
            nlv_usd=ev.nlv_usd,
            health_factor=ev.health_factor,
            liquidatable=liquidatable,
            liquidation_threshold_bps=p.min_collateral_factor_for_liquidation * 10_000 // FLOAT_PRECISION,
            price_drop_to_liquidation=0.0 if liquidatable else abs(mid - liq) / mid if liq is not None and mid else None,
            legs=ev.legs,
            details=details,
            market=p.key,
            state=encode_state(p, oracle),
        )

    # --- warm refresh (``indexer.warm``): the events that change positions, the positions' stored props ------
    def change_filter(self, market: GmxSnapshot) -> LogFilter:
        """Every event that can change an account's stored positions: PositionIncrease and PositionDecrease
        (liquidations and ADL are decreases), the discovery events. Funding, borrowing, open interest and pool
        amounts are market-wide (``indexer.warm.gmx`` reads them per market)."""
        return self.log_filter(market)

    def touched_accounts(self, logs: list[dict[str, Any]], first_block: int, block: BlockRef) -> set[AccountKey]:
        """Accounts the ``change_filter`` logs name (topic 2 of EventLog1)."""
        return self.accounts_from_logs(logs)

    def read_states(self, market: GmxSnapshot, keys: list[AccountKey], block: BlockRef) -> dict[AccountKey, tuple[Any, ...]]:
        """``Reader.getAccountPositions(dataStore, account, 0, MAX_POSITIONS_PER_ACCOUNT)`` of each account with
        at least one position, as decoded (the stored ``Position.Props``, what ``positions`` reads first);
        accounts without (or unreadable, see ``unreadable``) are absent."""
        owners = sorted({k.account for k in keys})
        r, ds = self.config.reader, self.config.data_store
        results = self.multicall.run([Call(r, self.reader_abi.fn("getAccountPositions"), (ds, a, 0, MAX_POSITIONS_PER_ACCOUNT)) for a in owners], block.number)
        out: dict[AccountKey, tuple[Any, ...]] = {}
        for account, res in zip(owners, results, strict=True):
            if not res.ok:
                self.unreadable(account, block.number, f"Reader.getAccountPositions: {res.error}")
                continue
            if res.one():
                out[AccountKey(account)] = tuple(res.one())
        return out
