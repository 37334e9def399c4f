"""Morpho Blue adapter: positions per (market, borrower) at one block, decided with ``risk.morpho``.

Discovery: ``Borrow`` and ``SupplyCollateral`` events of the singleton name (market id, onBehalf) pairs;
with ``markets`` configured, the log filter asks only for those ids. The markets to read are those of the
known pairs, so ``load_market`` reads nothing and ``positions`` reads, all at the pinned block:
1. per market: ``market(id)``, ``idToMarketParams(id)``;
2. per market: oracle ``price()``, IRM ``borrowRateView(params, market)``; token symbols and decimals;
   the configured USD feeds of loan tokens;
3. per pair: ``position(id, account)``.
Interest is accrued to the block's timestamp off-chain (``risk.morpho.accrued``), as ``liquidate`` would.
A market whose oracle or IRM reverts cannot be decided: its positions are left out with a warning.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from eth_utils import to_checksum_address

from indexer.chain.abi import load_abi
from indexer.chain.multicall import Call
from indexer.constants import ZERO_ADDRESS
from indexer.domain import AccountKey, BlockRef, Position, PriceReading
from indexer.errors import DecodeError
from indexer.pricing.chainlink import FeedReading, read_feeds
from indexer.protocols.base import LogFilter, ProtocolAdapter, accounts_in_topics
from indexer.risk.fast_morpho import MorphoVerdicts
from indexer.risk.morpho import MorphoMarket, MorphoPosition, liquidation_incentive_factor, price_drop_to_liquidation, verdict
from indexer.risk.reprice.morpho_blue import MorphoPricedMarket, evaluate_morpho
from indexer.risk.state import encode

log = logging.getLogger(__name__)

# Event -> indexed parameter naming the account that holds the position.
_ACCOUNT_PARAM = {"Borrow": "onBehalf", "SupplyCollateral": "onBehalf"}
# Event -> indexed parameter naming the account whose position it changes (``change_filter``).
_CHANGE_PARAM = {
    "Supply": "onBehalf",
    "Withdraw": "onBehalf",
    "Borrow": "onBehalf",
    "Repay": "onBehalf",
    "SupplyCollateral": "onBehalf",
    "WithdrawCollateral": "onBehalf",
    "Liquidate": "borrower",
}


@dataclass(frozen=True, slots=True)
class MorphoMarketInfo:
    """One market's state, its tokens' display data and the USD feed of its loan token."""

    priced: MorphoPricedMarket  # the market state with symbols, decimals and the loan's USD answer (the run's market state)
    loan_usd: FeedReading | None  # the configured USD feed of the loan token, None without one

    @property
    def state(self) -> MorphoMarket:
        """The market state for the pure functions."""
        return self.priced.market


@dataclass
class MorphoSnapshot:
    """The singleton at the pinned block; ``markets`` and ``prices`` are filled by ``positions``."""

    morpho: str  # Morpho Blue address
    block: BlockRef  # the pinned block
    markets: dict[str, MorphoMarketInfo] = field(default_factory=dict)  # by market id
    prices: list[PriceReading] = field(default_factory=list)  # USD feeds (by token), then oracle prices (by market id)
    tried: set[str] = field(default_factory=set)  # market ids read (``markets``) or found undecidable (not created, a revert)
    usd_prices: dict[str, PriceReading] = field(default_factory=dict)  # token -> its USD feed, for the tokens of the markets read
    oracle_prices: dict[str, PriceReading] = field(default_factory=dict)  # market id -> its oracle price


def _hex32(value: bytes | str) -> str:
    return value.hex() if isinstance(value, str) else "0x" + value.hex()


class MorphoBlueAdapter(ProtocolAdapter):
    """The Morpho Blue singleton; every market in it, or the configured ones."""

    kind = "morpho_blue"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.abi = load_abi("MorphoBlue")
        self.oracle_abi = load_abi("MorphoOracle")
        self.irm_abi = load_abi("MorphoIrm")
        self.erc20 = load_abi("ERC20")
        self._fast = MorphoVerdicts()  # compiled kept states, for ``verdicts``

    def load_market(self, block: BlockRef) -> MorphoSnapshot:
        return MorphoSnapshot(self.config.morpho, block)

    def log_filter(self, market: MorphoSnapshot) -> LogFilter:
        topics: list[Any] = [[self.abi.event(name).topic0 for name in _ACCOUNT_PARAM]]
        if self.config.markets:
            topics.append(list(self.config.markets))  # topic 1 is the market id in both events
        return LogFilter(addresses=[market.morpho], topics=topics)

    def accounts_from_logs(self, logs: list[dict[str, Any]]) -> set[AccountKey]:
        """(onBehalf, market id) of each ``Borrow`` and ``SupplyCollateral``; with ``markets`` configured, of those only."""
        where = {self.abi.event(name).topic0: (self.abi.event(name).topic_index(param),) for name, param in _ACCOUNT_PARAM.items()}
        wanted = set(self.config.markets)
        by_market: defaultdict[str, list[dict[str, Any]]] = defaultdict(list)  # topic 1 is the market id in both events
        for entry in logs:
            topics = entry["topics"]
            if len(topics) > 1 and (not wanted or topics[1].lower() in wanted):
                by_market[topics[1].lower()].append(entry)
        return {AccountKey(k.account, market_id) for market_id, group in by_market.items() for k in accounts_in_topics(group, where)}

    def prices(self, market: MorphoSnapshot) -> list[PriceReading]:
        return list(market.prices)

    # --- markets -----------------------------------------------------------------------------------
    def read_markets(self, snap: MorphoSnapshot, ids: list[str]) -> None:
        """Fill ``snap.markets`` and ``snap.prices`` for ``ids`` at the snapshot's block. Markets read (or tried)
        before in this snapshot are not read again; ``snap.prices`` is the same however the ids were split."""
        ids = [i for i in ids if i not in snap.tried]
        if not ids:
            return
        snap.tried.update(ids)
        n, m, fn = snap.block.number, snap.morpho, self.abi.fn
        first = self.multicall.run([Call(m, fn(name), (bytes.fromhex(i[2:]),)) for i in ids for name in ("market", "idToMarketParams")], n)
        states: dict[str, tuple[tuple[Any, ...], tuple[Any, ...]]] = {}
        for k, market_id in enumerate(ids):
            totals, params = first[2 * k].all(), first[2 * k + 1].all()
            if int(params[0], 16) == 0:
                log.warning("morpho %s: market %s is not created at block %d; its positions are skipped", self.name, market_id, n)
                continue
            states[market_id] = (totals, params)
        live = list(states)
        tokens = sorted({to_checksum_address(p[i]) for _, p in states.values() for i in (0, 1)})
        calls = [Call(t, self.erc20.fn(name)) for t in tokens for name in ("symbol", "decimals")]
        where: dict[str, tuple[int, int | None]] = {}  # market id -> (index of price(), of borrowRateView or None)
        for market_id in live:
            totals, params = states[market_id]
            calls.append(Call(params[2], self.oracle_abi.fn("price")))
            rate_at = None
            if int(params[3], 16):  # a market without an IRM accrues nothing
                calls.append(Call(params[3], self.irm_abi.fn("borrowRateView"), (params, totals)))
                rate_at = len(calls) - 1
            where[market_id] = (len(calls) - 1 - (rate_at is not None), rate_at)
        second = self.multicall.run(calls, n)
        meta = {t: (second[2 * j], second[2 * j + 1]) for j, t in enumerate(tokens)}
        feeds = read_feeds(self.multicall, list(self.config.usd_feeds.values()), n)
        usd = {to_checksum_address(token): feeds.get(feed) for token, feed in self.config.usd_feeds.items()}
        for token, reading in usd.items():
            if reading is not None and token in meta:
                symbol = _symbol(meta[token], token)
                snap.usd_prices[token] = PriceReading(token, symbol, reading.answer, reading.decimals, reading.feed, reading.answer, reading.updated_at)
        for market_id in live:
            totals, params = states[market_id]
            price_at, rate_at = where[market_id]
            price_r, rate_r = second[price_at], (second[rate_at] if rate_at is not None else None)
            irm = params[3]
            if not price_r.ok or (rate_r is not None and not rate_r.ok):
                what = "oracle price()" if not price_r.ok else "IRM borrowRateView"
                log.warning("morpho %s: market %s: %s reverted at block %d; its positions are skipped", self.name, market_id, what, n)
                continue
            loan, coll = to_checksum_address(params[0]), to_checksum_address(params[1])
            state = MorphoMarket(
                market_id=market_id,
                loan_token=loan,
                collateral_token=coll,
                oracle=to_checksum_address(params[2]),
                irm=to_checksum_address(irm),
                lltv=params[4],
                total_supply_assets=totals[0],
                total_supply_shares=totals[1],
                total_borrow_assets=totals[2],
                total_borrow_shares=totals[3],
                last_update=totals[4],
                fee=totals[5],
                price=price_r.one(),
                borrow_rate=rate_r.one() if rate_r is not None else 0,
                block_timestamp=snap.block.timestamp,
            )
            feed = usd.get(loan)
            priced = MorphoPricedMarket(
                market=state,
                loan_symbol=_symbol(meta[loan], loan),
                loan_decimals=_decimals(meta[loan]),
                collateral_symbol=_symbol(meta[coll], coll),
                collateral_decimals=_decimals(meta[coll]),
                loan_usd_answer=feed.answer if feed else None,
                loan_usd_decimals=feed.decimals if feed else 0,
            )
            info = MorphoMarketInfo(priced, feed)
            snap.markets[market_id] = info
            snap.oracle_prices[market_id] = PriceReading(
                asset=coll,
                symbol=f"{priced.collateral_symbol}/{priced.loan_symbol}",
                price=state.price,
                price_decimals=36 + priced.loan_decimals - priced.collateral_decimals,
                source=state.oracle,
                feed_answer=None,
                feed_updated_at=None,
                market=market_id,
            )
        snap.prices[:] = [snap.usd_prices[t] for t in sorted(snap.usd_prices)] + [snap.oracle_prices[i] for i in sorted(snap.oracle_prices)]

    # --- positions ---------------------------------------------------------------------------------
    def positions(self, market: MorphoSnapshot, accounts: list[AccountKey], block: BlockRef) -> list[Position]:
        return self.positions_from_states(market, set(accounts), self.read_states(market, accounts, block), block)  # the warm refresh's two halves

    def market_state(self, market: MorphoSnapshot) -> dict[str, Any]:
        """Per market id read: its state, tokens and the loan's USD answer (``MorphoPricedMarket``)."""
        return {market_id: encode(info.priced) for market_id, info in sorted(market.markets.items())}

    def position_of(self, info: MorphoMarketInfo, pos: MorphoPosition, block: BlockRef) -> Position:
        m = info.state
        v = verdict(m, pos)
        ev = evaluate_morpho(info.priced, pos)  # the same numbers a stored position's model recomputes
        details = {
            "contract": self.config.morpho,  # where liquidate goes
            "verdict": "liquidatable" if v.liquidatable else ("no debt" if not v.borrowed else "healthy"),
            "unhealthy_on_stored_totals": str(v.unhealthy_on_stored_totals).lower(),
            "loan_token": m.loan_token,
            "collateral_token": m.collateral_token,
            "oracle": m.oracle,
            "lltv": str(m.lltv),
            "liquidation_incentive_factor": str(liquidation_incentive_factor(m.lltv)),
            "oracle_price": str(m.price),
            "borrowed_assets": str(v.borrowed),
            "max_borrow_assets": str(v.max_borrow),
            "collateral_value_loan_units": str(v.collateral_value),
            "borrow_shares": str(pos.borrow_shares),
            "usd": "loan token priced by its USD feed" if info.loan_usd else "unpriced: no usd_feeds entry for the loan token",
        }
        if v.liquidation_price is not None:
            details["liquidation_oracle_price"] = str(v.liquidation_price)
        return Position(
            protocol=self.name,
            kind=self.kind,
            account=pos.account,
            block=block,
            collateral_usd=ev.collateral_usd,
            debt_usd=ev.debt_usd,
            nlv_usd=ev.nlv_usd,
            health_factor=ev.health_factor,
            liquidatable=ev.liquidatable,
            liquidation_threshold_bps=m.lltv // 10**14,
            price_drop_to_liquidation=price_drop_to_liquidation(m, pos),
            legs=ev.legs,
            details=details,
            state=encode(pos),
            market=m.market_id,
        )

    # --- warm refresh (``indexer.warm``): the events that change positions, positions from kept state -------
    def change_filter(self, market: MorphoSnapshot) -> LogFilter:
        """Every event that can change a (market, account) position: supply and withdraw (supply shares),
        borrow and repay, collateral supply and withdrawal, liquidation (the borrower), and ``AccrueInterest``,
        which mints fee shares to the fee recipient. Interest changes no position: the totals it moves are read
        per market (``read_markets``). Topic 1 is the market id in each, so configured ``markets`` filter here."""
        topics: list[Any] = [[self.abi.event(name).topic0 for name in (*_CHANGE_PARAM, "AccrueInterest")]]
        if self.config.markets:
            topics.append(list(self.config.markets))
        return LogFilter(addresses=[market.morpho], topics=topics)

    def touched_accounts(self, logs: list[dict[str, Any]], first_block: int, block: BlockRef) -> set[AccountKey]:
        """(account, market id) pairs whose position the ``change_filter`` logs may have changed. Fee shares
        minted by ``AccrueInterest`` go to the fee recipient, which the event does not name: only when a log
        minted some, ``feeRecipient()`` is read at ``block`` and at ``first_block - 1`` (remembered from the
        previous call when it ended there), and both are touched in the markets concerned. (A recipient that held
        the role only strictly inside the range is not seen; the warm book's sample comparison covers that.)"""
        where = {self.abi.event(name).topic0: self.abi.event(name).topic_index(param) for name, param in _CHANGE_PARAM.items()}
        accrue = self.abi.event("AccrueInterest").topic0
        wanted = set(self.config.markets)
        keys: set[AccountKey] = set()
        fee_markets: set[str] = set()
        for entry in logs:
            topics = entry["topics"]
            if len(topics) < 2 or (wanted and topics[1].lower() not in wanted):
                continue
            t0, market_id = topics[0].lower(), topics[1].lower()
            if t0 == accrue:
                data = bytes.fromhex(entry["data"][2:])
                if len(data) >= 96 and int.from_bytes(data[64:96], "big"):  # feeShares
                    fee_markets.add(market_id)
                continue
            i = where.get(t0)
            if i is not None and i < len(topics):
                account = to_checksum_address("0x" + topics[i][-40:])
                if account != ZERO_ADDRESS:
                    keys.add(AccountKey(account, market_id))
        if fee_markets:
            recipients = {self._fee_recipient(first_block - 1), self._fee_recipient(block.number)}
            keys |= {AccountKey(r, m) for r in recipients if r != ZERO_ADDRESS for m in fee_markets}
        return keys

    def _fee_recipient(self, block: int) -> str:
        """``feeRecipient()`` at ``block`` (the public getter of the storage variable; not in the ABI file),
        remembered for the last two blocks asked (a warm refresh asks for its first block - 1, the previous one's last)."""
        from eth_utils import keccak

        from indexer.chain.abi import Function

        cache: dict[int, str] | None = getattr(self, "_fee_recipients", None)
        if cache is None:
            cache = self._fee_recipients = {}
        if block not in cache:
            fn = Function("feeRecipient", keccak(text="feeRecipient()")[:4], (), ("address",))
            (res,) = self.multicall.run([Call(self.config.morpho, fn)], block)
            cache[block] = to_checksum_address(res.one())
            for old in sorted(cache)[:-2]:
                del cache[old]
        return cache[block]

    def read_states(self, market: MorphoSnapshot, keys: list[AccountKey], block: BlockRef) -> dict[AccountKey, MorphoPosition]:
        """``position(id, account)`` of each key with a non-empty position (markets are not read: see
        ``positions_from_states``); empty or unreadable positions are absent."""
        keys = sorted(k for k in keys if k.market)
        results = self.multicall.run([Call(market.morpho, self.abi.fn("position"), (bytes.fromhex(k.market[2:]), k.account)) for k in keys], block.number)
        out: dict[AccountKey, MorphoPosition] = {}
        for key, res in zip(keys, results, strict=True):
            if not res.ok:
                self.unreadable(key.account, block.number, f"Morpho.position: {res.error}", market=key.market)  # never an empty position
                continue
            supply_shares, borrow_shares, collateral = res.value
            if supply_shares or borrow_shares or collateral:
                out[key] = MorphoPosition(key.account, supply_shares, borrow_shares, collateral)
        return out

    def verdicts(self, market: MorphoSnapshot, states: Mapping[AccountKey, MorphoPosition]) -> dict[AccountKey, bool]:
        """``{key: liquidatable}`` for the kept states: exactly ``Position.liquidatable`` of the position
        ``positions_from_states`` makes of each (``liquidate``'s health check on the totals accrued to the block's
        timestamp at the oracle price), computed by ``risk.fast_morpho`` without building positions. The markets of
        the states not read yet in this snapshot are read first (none after ``positions_from_states``); states of a
        market that cannot be decided (not created, oracle or IRM reverts) are absent, as there."""
        self.read_markets(market, sorted({k.market for k in states if k.market}))
        return self._fast({market_id: info.state for market_id, info in market.markets.items()}, states)

    def positions_from_states(self, market: MorphoSnapshot, known: set[AccountKey], states: dict[AccountKey, MorphoPosition], block: BlockRef) -> list[Position]:
        """``positions`` of the ``known`` keys from their states read before (``read_states``, kept by
        ``indexer.warm``): the markets of every known key are read at the snapshot's block, as ``positions`` reads
        them, and each position is decided there. ``positions`` is ``read_states`` then this."""
        self.read_markets(market, sorted({k.market for k in known if k.market}))
        return [self.position_of(market.markets[k.market], states[k], block) for k in sorted(states) if k.market in market.markets]


def _symbol(meta: tuple[Any, Any], token: str) -> str:
    return str(meta[0].value[0]) if meta[0].ok else token[:8]


def _decimals(meta: tuple[Any, Any]) -> int:
    if not meta[1].ok:
        raise DecodeError(f"decimals() failed: {meta[1].error}")
    return int(meta[1].value[0])
