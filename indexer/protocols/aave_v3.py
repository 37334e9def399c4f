"""Aave V3 adapter: reads a market and its accounts at one block, decides with ``risk.aave_v3``.

Reads per snapshot (all through Multicall3 at the pinned block):
1. provider: pool, oracle, sentinel;  2. pool revision, reserves list, oracle base unit;
3. per reserve: reserve data, normalized income/debt, grace period, oracle price and source, symbol;
4. feeds behind the oracle (for the stored price history) and the sentinel's answer;
5. per account: user configuration and eMode;  6. per set bit: aToken / debt token scaled balance;
7. eMode categories in use.
The number of requests grows with accounts / batch size, not with accounts.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from eth_utils import to_checksum_address

from indexer.chain.abi import load_abi
from indexer.chain.multicall import Call
from indexer.constants import ZERO_ADDRESS
from indexer.domain import AccountKey, BlockRef, Position, PriceReading
from indexer.errors import DecodeError
from indexer.pricing.chainlink import read_feeds
from indexer.protocols.base import LogFilter, ProtocolAdapter, accounts_in_topics
from indexer.risk.aave_v3 import AaveEModeCategory, AaveMarket, AaveReserve, AaveUser, price_drop_to_liquidation
from indexer.risk.fast_aave import AaveVerdicts
from indexer.risk.reprice.aave_v3 import evaluate_aave
from indexer.risk.state import encode

log = logging.getLogger(__name__)

# topic0 -> index of the topic holding the account, for the events that name Aave accounts.
_ACCOUNT_TOPIC = {
    "Supply": 2,  # onBehalfOf
    "Borrow": 2,  # onBehalfOf
    "Withdraw": 2,  # user
    "Repay": 2,  # user
    "LiquidationCall": 3,  # user
    "ReserveUsedAsCollateralEnabled": 2,  # user
    "UserEModeSet": 1,  # user
}
# aToken / variable debt token events -> indexes of the topics holding an account whose scaled balance changes
# (``change_filter``): both sides of a transfer, the minted-to account, the burned-from account.
_TOKEN_CHANGE_TOPICS = {"Transfer": (1, 2), "BalanceTransfer": (1, 2), "Mint": (2,), "Burn": (1,)}


@dataclass(frozen=True, slots=True)
class AaveReserveTokens:
    """Addresses and display data of one reserve."""

    a_token: str  # aToken
    variable_debt_token: str  # variable debt token
    source: str  # price source behind AaveOracle ("" when none)


@dataclass(frozen=True, slots=True)
class AaveMarketSnapshot:
    """What ``load_market`` read: the pure market state plus the addresses the adapter needs."""

    pool: str  # Pool address
    oracle: str  # AaveOracle address
    market: AaveMarket  # state for the pure functions (eMode categories filled in by ``positions``)
    tokens: dict[int, AaveReserveTokens]  # by reserve id
    prices: tuple[PriceReading, ...]  # oracle prices with feed data
    # Reserves whose getAssetPrice reverts at the block (source answer <= 0 and no fallback oracle): their price
    # is 0 in ``market``; positions using them cannot be decided by the protocol and are left out (logged).
    unpriced: frozenset[int] = frozenset()
    # eMode categories the positions read so far are in (filled by ``positions`` and ``verdicts``, each read once per
    # snapshot; stored in the run's market state)
    emode_in_use: dict[int, AaveEModeCategory] = field(default_factory=dict)
    block_number: int | None = None  # the block ``load_market`` read (eMode categories are read there); None: unknown


def encode_user(user: AaveUser) -> dict[str, Any]:
    """``risk.state.encode(user)`` (the position's stored state), written out: the generic encoder walks the
    dataclass's fields for every position of every refresh (tests/test_fast_verdicts.py checks they agree)."""
    return {
        "account": user.account,
        "configuration": user.configuration,
        "emode_category": user.emode_category,
        "scaled_collateral": {str(k): v for k, v in user.scaled_collateral.items()},
        "scaled_debt": {str(k): v for k, v in user.scaled_debt.items()},
    }


class AaveV3Adapter(ProtocolAdapter):
    """Aave V3 markets, any Pool revision from v3.2 (5) on; eMode of v3.2+ and the legacy one."""

    kind = "aave_v3"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.pool_abi = load_abi("AaveV3Pool")
        self.provider_abi = load_abi("AaveV3PoolAddressesProvider")
        self.oracle_abi = load_abi("AaveOracle")
        self.atoken_abi = load_abi("AaveV3AToken")
        self.erc20_abi = load_abi("ERC20")
        self.sentinel_abi = load_abi("PriceOracleSentinel")
        self.fast_verdicts = AaveVerdicts()  # ``verdicts``: keeps each kept state's compiled form between blocks

    # --- market ------------------------------------------------------------------------------------
    def load_market(self, block: BlockRef) -> AaveMarketSnapshot:
        n = block.number
        provider = self.config.pool_addresses_provider
        p = self.provider_abi
        pool_r, oracle_r, sentinel_r = self.multicall.run(
            [Call(provider, p.fn("getPool")), Call(provider, p.fn("getPriceOracle")), Call(provider, p.fn("getPriceOracleSentinel"))], n
        )
        pool, oracle = pool_r.one(), oracle_r.one()
        sentinel = sentinel_r.value[0] if sentinel_r.ok else ZERO_ADDRESS
        rev_r, list_r, unit_r, base_r = self.multicall.run(
            [
                Call(pool, self.pool_abi.fn("POOL_REVISION")),
                Call(pool, self.pool_abi.fn("getReservesList")),
                Call(oracle, self.oracle_abi.fn("BASE_CURRENCY_UNIT")),
                Call(oracle, self.oracle_abi.fn("BASE_CURRENCY")),
            ],
            n,
        )
        revision = rev_r.one()
        # getReservesList drops removed reserves and shortens the array, so a position in it is not
        # the reserve id of the user bitmaps: the id comes from getReserveData(asset).id.
        live = [to_checksum_address(a) for a in list_r.one() if int(a, 16) != 0]
        base_unit = unit_r.one()
        base_currency = base_r.value[0] if base_r.ok else ZERO_ADDRESS
        if int(base_currency, 16) != 0:
            log.warning("AaveOracle %s quotes in %s, not USD: *_usd values are in that currency", oracle, base_currency)
        per = 7
        calls: list[Call] = []
        for asset in live:
            calls += [
                Call(pool, self.pool_abi.fn("getReserveData"), (asset,)),
                Call(pool, self.pool_abi.fn("getReserveNormalizedIncome"), (asset,)),
                Call(pool, self.pool_abi.fn("getReserveNormalizedVariableDebt"), (asset,)),
                Call(pool, self.pool_abi.fn("getLiquidationGracePeriod"), (asset,)),
                Call(oracle, self.oracle_abi.fn("getAssetPrice"), (asset,)),
                Call(oracle, self.oracle_abi.fn("getSourceOfAsset"), (asset,)),
                Call(asset, self.erc20_abi.fn("symbol")),
            ]
        if sentinel != ZERO_ADDRESS:
            calls.append(Call(sentinel, self.sentinel_abi.fn("isLiquidationAllowed")))
        results = self.multicall.run(calls, n)
        ids = [results[k * per].one()[7] for k in range(len(live))]
        reserves: list[AaveReserve | None] = [None] * (max(ids) + 1 if ids else 0)
        tokens: dict[int, AaveReserveTokens] = {}
        failed: dict[int, str] = {}  # reserve id -> getAssetPrice error
        for k, (rid, asset) in enumerate(zip(ids, live, strict=True)):
            data_r, inc_r, debt_r, grace_r, price_r, src_r, sym_r = results[k * per : (k + 1) * per]
            data = data_r.one()
            configuration = data[0][0]
            if not price_r.ok:
                failed[rid] = str(price_r.error)  # decided below, with the source's answer
            reserves[rid] = AaveReserve(
                reserve_id=rid,
                asset=asset,
                symbol=sym_r.value[0] if sym_r.ok else asset[:8],
                configuration=configuration,
                normalized_income=inc_r.one(),
                normalized_debt=debt_r.one(),
                price=price_r.one() if price_r.ok else 0,
                grace_period_until=grace_r.value[0] if grace_r.ok else 0,  # absent before v3.1
            )
            tokens[rid] = AaveReserveTokens(
                a_token=to_checksum_address(data[8]),
                variable_debt_token=to_checksum_address(data[10]),
                source=to_checksum_address(src_r.value[0]) if src_r.ok else "",
            )
        sentinel_allows: bool | None = None
        if sentinel != ZERO_ADDRESS:
            sentinel_allows = bool(results[-1].value[0]) if results[-1].ok else False
        feeds = read_feeds(self.multicall, [t.source for t in tokens.values() if t.source and t.source != ZERO_ADDRESS], n)
        for rid, error in failed.items():
            # AaveOracle asks its fallback oracle when the source answers <= 0; without one (or when the fallback
            # reverts too) getAssetPrice reverts, and so do getUserAccountData and liquidationCall of every user of
            # the reserve: those positions are left out. Any other failure is not understood: the snapshot fails
            # loudly rather than treating the price as zero.
            feed = feeds.get(tokens[rid].source)
            if feed is None or feed.answer > 0:
                raise DecodeError(f"AaveOracle.getAssetPrice({reserves[rid].asset}) failed at block {n}: {error}")  # type: ignore[union-attr]
        prices = []
        for rid, reserve in enumerate(reserves):
            if reserve is None:
                continue
            feed = feeds.get(tokens[rid].source)
            prices.append(
                PriceReading(
                    asset=reserve.asset,
                    symbol=reserve.symbol,
                    price=feed.answer if rid in failed and feed is not None else reserve.price,  # unpriced: the answer refused
                    price_decimals=len(str(base_unit)) - 1,
                    source=tokens[rid].source,
                    feed_answer=feed.answer if feed else None,
                    feed_updated_at=feed.updated_at if feed else None,
                )
            )
        market = AaveMarket(
            revision=revision,
            reserves=tuple(reserves),
            emode_categories={},
            base_currency_unit=base_unit,
            block_timestamp=block.timestamp,
            sentinel_allows_liquidation=sentinel_allows,
        )
        return AaveMarketSnapshot(pool, oracle, market, tokens, tuple(prices), unpriced=frozenset(failed), block_number=n)

    def log_filter(self, market: AaveMarketSnapshot) -> LogFilter:
        topics = [self.pool_abi.event(name).topic0 for name in _ACCOUNT_TOPIC]
        topics.append(self.atoken_abi.event("Transfer").topic0)
        addresses = [market.pool] + [t.a_token for t in market.tokens.values()]
        return LogFilter(addresses=addresses, topics=[topics])

    def accounts_from_logs(self, logs: list[dict[str, Any]]) -> set[AccountKey]:
        where = {self.pool_abi.event(name).topic0: (i,) for name, i in _ACCOUNT_TOPIC.items()}
        where[self.atoken_abi.event("Transfer").topic0] = (2,)  # to
        return accounts_in_topics(logs, where)

    def prices(self, market: AaveMarketSnapshot) -> list[PriceReading]:
        return list(market.prices)

    # --- accounts ----------------------------------------------------------------------------------
    def _emode_categories(self, pool: str, ids: set[int], block: int) -> dict[int, AaveEModeCategory]:
        ordered = sorted(i for i in ids if i)
        calls: list[Call] = []
        for cid in ordered:
            calls += [
                Call(pool, self.pool_abi.fn("getEModeCategoryCollateralConfig"), (cid,)),
                Call(pool, self.pool_abi.fn("getEModeCategoryCollateralBitmap"), (cid,)),
                Call(pool, self.pool_abi.fn("getEModeCategoryBorrowableBitmap"), (cid,)),
                Call(pool, self.pool_abi.fn("getEModeCategoryData"), (cid,)),
            ]
        results = self.multicall.run(calls, block)
        out: dict[int, AaveEModeCategory] = {}
        for k, cid in enumerate(ordered):
            cfg_r, coll_r, borr_r, legacy_r = results[4 * k : 4 * k + 4]
            if cfg_r.ok and coll_r.ok:
                ltv, lt, bonus = cfg_r.value[0]
                out[cid] = AaveEModeCategory(cid, ltv, lt, bonus, coll_r.one(), borr_r.value[0] if borr_r.ok else 0, legacy=False)
            else:  # pre-3.2 pool: category from the legacy struct, eligibility from reserve config bits
                ltv, lt, bonus, _source, _label = legacy_r.one()
                out[cid] = AaveEModeCategory(cid, ltv, lt, bonus, 0, 0, legacy=True)
        return out

    def read_users(self, market: AaveMarketSnapshot, accounts: list[str], block: int) -> list[AaveUser]:
        """Raw user state (configuration, eMode, scaled balances) for every account with a position."""
        pool = market.pool
        calls: list[Call] = []
        for a in accounts:
            calls += [Call(pool, self.pool_abi.fn("getUserConfiguration"), (a,)), Call(pool, self.pool_abi.fn("getUserEMode"), (a,))]
        results = self.multicall.run(calls, block)
        configs: list[tuple[str, int, int]] = []
        for k, account in enumerate(accounts):
            cfg_r, emode_r = results[2 * k], results[2 * k + 1]
            if not (cfg_r.ok and emode_r.ok):
                self.unreadable(account, block, cfg_r.error or emode_r.error)  # left out, never read as empty
                continue
            configuration = cfg_r.value[0][0]
            if configuration:
                configs.append((account, configuration, emode_r.value[0]))
        balance_calls: list[Call] = []
        keys: list[tuple[int, int, str]] = []  # (user index, reserve id, "c"|"d")
        for u, (account, configuration, _) in enumerate(configs):
            for rid in range(len(market.market.reserves)):
                if market.market.reserves[rid] is None:
                    continue
                if (configuration >> (2 * rid + 1)) & 1:
                    balance_calls.append(Call(market.tokens[rid].a_token, self.atoken_abi.fn("scaledBalanceOf"), (account,)))
                    keys.append((u, rid, "c"))
                if (configuration >> (2 * rid)) & 1:
                    balance_calls.append(Call(market.tokens[rid].variable_debt_token, self.atoken_abi.fn("scaledBalanceOf"), (account,)))
                    keys.append((u, rid, "d"))
        balances = self.multicall.run(balance_calls, block)
        coll: list[dict[int, int]] = [{} for _ in configs]
        debt: list[dict[int, int]] = [{} for _ in configs]
        unread: set[int] = set()
        for (u, rid, side), res in zip(keys, balances, strict=True):
            if not res.ok:
                if u not in unread:
                    self.unreadable(configs[u][0], block, f"scaledBalanceOf, reserve {rid}: {res.error}")  # never a zero balance
                unread.add(u)
                continue
            (coll if side == "c" else debt)[u][rid] = res.value[0]
        return [AaveUser(a, cfg, em, coll[u], debt[u]) for u, (a, cfg, em) in enumerate(configs) if u not in unread]

    @staticmethod
    def _unpriced_bits(market: AaveMarketSnapshot) -> int:
        """The user configuration bits of the reserves whose price reverts: borrowing and collateral, as
        getUserAccountData prices either."""
        mask = 0
        for rid in market.unpriced:
            mask |= 0b11 << (2 * rid)
        return mask

    def _without_unpriced(self, market: AaveMarketSnapshot, users: list[AaveUser], block: int) -> list[AaveUser]:
        """``users`` without those using a reserve whose price reverts (the protocol cannot decide them); logged."""
        mask = self._unpriced_bits(market)
        kept = [u for u in users if not u.configuration & mask]
        if len(kept) < len(users):
            symbols = ", ".join(sorted(market.market.reserves[rid].symbol for rid in market.unpriced))  # type: ignore[union-attr]
            log.warning(
                "positions left out protocol=%s block=%d count=%d reason=%s",
                self.name, block, len(users) - len(kept), f"AaveOracle.getAssetPrice reverts for {symbols} (source answer <= 0, no usable fallback oracle)",
            )  # fmt: skip
        return kept

    def with_emode(self, market: AaveMarketSnapshot, users: Iterable[AaveUser], block: int) -> AaveMarket:
        """The market state with every eMode category the users are in; a category is read (at ``block``, the
        snapshot's) once per snapshot and kept in ``market.emode_in_use``."""
        ids = {u.emode_category for u in users if u.emode_category}
        if not ids:
            return market.market
        missing = ids - market.emode_in_use.keys()
        if missing:
            market.emode_in_use.update(self._emode_categories(market.pool, missing, block))
        return replace(market.market, emode_categories={i: market.emode_in_use[i] for i in sorted(ids)})

    def positions(self, market: AaveMarketSnapshot, accounts: list[AccountKey], block: BlockRef) -> list[Position]:
        return self.positions_from_states(market, set(accounts), self.read_states(market, accounts, block), block)  # the warm refresh's two halves

    def market_state(self, market: AaveMarketSnapshot) -> dict[str, Any]:
        """The pool's state (every reserve with its price and indexes, the eMode categories in use) under "" ."""
        state = replace(market.market, emode_categories=dict(sorted(market.emode_in_use.items())))
        return {"": encode(state)}

    def position_of(self, state: AaveMarket, market: AaveMarketSnapshot, user: AaveUser, block: BlockRef) -> Position:
        outcome = evaluate_aave(state, user)  # the same numbers a stored position's model recomputes
        ev, data, verdict = outcome.evaluation, outcome.data, outcome.verdict
        return Position(
            protocol=self.name,
            kind=self.kind,
            account=user.account,
            block=block,
            collateral_usd=ev.collateral_usd,
            debt_usd=ev.debt_usd,
            nlv_usd=ev.nlv_usd,
            health_factor=ev.health_factor,
            liquidatable=ev.liquidatable,
            liquidation_threshold_bps=data.current_liquidation_threshold,
            price_drop_to_liquidation=price_drop_to_liquidation(state, user, data),
            legs=ev.legs,
            details={
                "contract": market.pool,  # where liquidationCall goes
                "pool_revision": str(state.revision),
                "emode_category": str(user.emode_category),
                "total_collateral_base": str(data.total_collateral_base),
                "total_debt_base": str(data.total_debt_base),
                "available_borrows_base": str(data.available_borrows_base),
                "ltv_bps": str(data.ltv),
                "verdict": verdict.reason,
                "liquidation_collateral_asset": verdict.collateral_asset or "",
                "liquidation_debt_asset": verdict.debt_asset or "",
            },
            state=encode_user(user),
        )

    # --- warm refresh (``indexer.warm``): the events that change positions, positions from kept state -------
    def change_filter(self, market: AaveMarketSnapshot) -> LogFilter:
        """Every event that can change an account's position (a superset of ``log_filter``): the Pool's user
        events, and every balance event (Transfer, BalanceTransfer, Mint, Burn) of the aTokens and variable debt
        tokens. Scaled balances change only through those (aTokens are transferable, and the liquidation
        protocol fee and the treasury's accrual move aTokens too); the configuration bits change with a borrow or
        a full repay (debt Mint / Burn), a collateral switch (ReserveUsedAsCollateral*) or a liquidation, the
        eMode with UserEModeSet. Interest changes no scaled balance: it is in the indexes ``load_market`` reads."""
        pool_events = (*_ACCOUNT_TOPIC, "ReserveUsedAsCollateralDisabled", "DeficitCreated")
        topics = {self.pool_abi.event(name).topic0 for name in pool_events}
        topics |= {self.atoken_abi.event(name).topic0 for name in _TOKEN_CHANGE_TOPICS}  # the debt token's have the same signatures
        addresses = [market.pool] + [t.a_token for t in market.tokens.values()] + [t.variable_debt_token for t in market.tokens.values()]
        return LogFilter(addresses=addresses, topics=[sorted(topics)])

    def touched_accounts(self, logs: list[dict[str, Any]], first_block: int, block: BlockRef) -> set[AccountKey]:
        """Accounts whose position the ``change_filter`` logs may have changed (in ``first_block .. block``)."""
        where = {self.pool_abi.event(name).topic0: (i,) for name, i in _ACCOUNT_TOPIC.items()}
        where[self.pool_abi.event("ReserveUsedAsCollateralDisabled").topic0] = (2,)  # user
        where[self.pool_abi.event("DeficitCreated").topic0] = (1,)  # user
        where.update({self.atoken_abi.event(name).topic0: idx for name, idx in _TOKEN_CHANGE_TOPICS.items()})
        return accounts_in_topics(logs, where)

    def read_states(self, market: AaveMarketSnapshot, keys: list[AccountKey], block: BlockRef) -> dict[AccountKey, AaveUser]:
        """The raw state (``AaveUser``) of each account with a position; accounts without one (or unreadable,
        see ``unreadable``) are absent."""
        return {AccountKey(u.account): u for u in self.read_users(market, sorted({k.account for k in keys}), block.number)}

    def positions_from_states(self, market: AaveMarketSnapshot, known: set[AccountKey], states: dict[AccountKey, AaveUser], block: BlockRef) -> list[Position]:
        """``positions`` of accounts whose state was read before (``read_states``, kept by ``indexer.warm``), at
        ``market``: the same verdicts as ``positions`` gives for the accounts at that block when the states are
        current. ``positions`` is ``read_states`` then this."""
        users = [states[k] for k in sorted(states)]
        if market.unpriced:
            users = self._without_unpriced(market, users, block.number)
        state = self.with_emode(market, users, block.number)  # fills ``market.emode_in_use`` (the run's market state)
        return [self.position_of(state, market, user, block) for user in users]

    def verdicts(self, market: AaveMarketSnapshot, states: Mapping[AccountKey, AaveUser]) -> dict[AccountKey, bool]:
        """``{key: liquidatable}`` for the kept states at ``market``: exactly ``Position.liquidatable`` of
        ``positions_from_states(market, ..., states, ...)`` for the same inputs (``risk.fast_aave``), fast.

        The same accounts: a state using a reserve whose price reverts (``market.unpriced``) is absent, as
        ``positions_from_states`` leaves its position out (and logs it; this does not log again). The eMode
        categories of the states are read once per snapshot (``with_emode``) and shared with the positions.
        """
        skip = self._unpriced_bits(market) if market.unpriced else 0
        users = [u for u in states.values() if u.emode_category and not u.configuration & skip]
        if users and market.block_number is None:
            raise ValueError("verdicts: the market snapshot has no block_number (eMode categories are read at it)")
        state = self.with_emode(market, users, market.block_number or 0)
        return self.fast_verdicts(state, states, skip_bits=skip)
