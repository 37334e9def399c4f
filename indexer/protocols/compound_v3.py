"""Compound V3 (Comet) adapter: reads one Comet and its accounts at one block, decides with ``risk.comet``.

Reads per snapshot (all through Multicall3 at the pinned block):
1. base token, base feed, base scale, borrow minimum, number of assets, totals, stored utilization;
2. asset infos, base price, the rates at the stored utilization, base symbol/decimals;
3. collateral prices, symbols, decimals, and the feeds behind them (for the stored price history);
4. per account: ``userBasic``;  5. per collateral bit set: ``collateralBalanceOf``.

``liquidatable`` is whether ``absorb`` would succeed at the block (interest accrued to its timestamp);
``details["view_is_liquidatable"]`` is what the ``isLiquidatable`` view says (stored index).
"""

from __future__ import annotations

import logging
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
from indexer.risk.comet import CometAsset, CometMarket, CometUser, liquidation_price, price_drop_to_liquidation
from indexer.risk.fast_comet import CometVerdicts
from indexer.risk.reprice.compound_v3 import evaluate_comet
from indexer.risk.state import encode

log = logging.getLogger(__name__)

# Event -> indexed parameters naming an account with a position.
_ACCOUNT_PARAMS = {
    "Supply": ("dst",),
    "Withdraw": ("src",),
    "Transfer": ("from", "to"),
    "SupplyCollateral": ("dst",),
    "WithdrawCollateral": ("src",),
    "TransferCollateral": ("from", "to"),
    "AbsorbDebt": ("borrower",),
    "AbsorbCollateral": ("borrower",),
}


@dataclass(frozen=True, slots=True)
class CometSnapshot:
    """What ``load_market`` read."""

    comet: str  # Comet address
    market: CometMarket  # state for the pure functions
    prices: tuple[PriceReading, ...]  # base and collateral prices with their feeds' data
    # Tokens (base or collateral) whose getPrice reverts at the block (feed answer <= 0): price 0 in ``market``;
    # positions whose verdict or values need them are left out (logged), as Comet itself cannot value them.
    unpriced: frozenset[str] = frozenset()


class CompoundV3Adapter(ProtocolAdapter):
    """One Comet deployment (cUSDCv3, cWETHv3, ...), including extended asset lists."""

    kind = "compound_v3"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.abi = load_abi("Comet")
        self.erc20 = load_abi("ERC20")
        self._fast = CometVerdicts()  # compiled kept states, for ``verdicts``

    # --- market ------------------------------------------------------------------------------------
    def load_market(self, block: BlockRef) -> CometSnapshot:
        n, c, fn = block.number, self.config.comet, self.abi.fn
        names = ("baseToken", "baseTokenPriceFeed", "baseScale", "baseBorrowMin", "numAssets", "totalsBasic", "getUtilization")
        first = self.multicall.run([Call(c, fn(name)) for name in names], n)
        base_token, base_feed, base_scale, borrow_min, num_assets, totals, util = (r.one() for r in first)
        base_token, base_feed = to_checksum_address(base_token), to_checksum_address(base_feed)
        second = self.multicall.run(
            [Call(c, fn("getAssetInfo"), (i,)) for i in range(num_assets)]
            + [
                Call(c, fn("getPrice"), (base_feed,)),
                Call(c, fn("getSupplyRate"), (util,)),
                Call(c, fn("getBorrowRate"), (util,)),
                Call(base_token, self.erc20.fn("symbol")),
                Call(base_token, self.erc20.fn("decimals")),
            ],
            n,
        )
        infos = [r.one() for r in second[:num_assets]]
        price_r, supply_rate_r, borrow_rate_r, sym_r, dec_r = second[num_assets:]
        failed: dict[str, tuple[str, str]] = {}  # token -> (feed, getPrice error), decided with the feeds' answers below
        if not price_r.ok:
            failed[base_token] = (base_feed, str(price_r.error))
        third = self.multicall.run(
            [Call(c, fn("getPrice"), (info[2],)) for info in infos]
            + [Call(info[1], self.erc20.fn(name)) for info in infos for name in ("symbol", "decimals")],
            n,
        )
        assets = []
        for i, info in enumerate(infos):
            offset, asset, feed, scale, bcf, lcf, lf, cap = info
            p = third[i]
            if not p.ok:
                failed[to_checksum_address(asset)] = (to_checksum_address(feed), str(p.error))
            sym, dec = third[num_assets + 2 * i], third[num_assets + 2 * i + 1]
            assets.append(
                CometAsset(
                    offset=offset,
                    asset=to_checksum_address(asset),
                    symbol=sym.value[0] if sym.ok else asset[:8],
                    decimals=dec.value[0] if dec.ok else len(str(scale)) - 1,
                    price_feed=to_checksum_address(feed),
                    scale=scale,
                    borrow_collateral_factor=bcf,
                    liquidate_collateral_factor=lcf,
                    liquidation_factor=lf,
                    supply_cap=cap,
                    price=p.one() if p.ok else 0,
                )
            )
        supply_index, borrow_index, _tsi, _tbi, total_supply, total_borrow, last_accrual, pause_flags = totals
        market = CometMarket(
            base_token=base_token,
            base_symbol=sym_r.value[0] if sym_r.ok else base_token[:8],
            base_decimals=dec_r.value[0] if dec_r.ok else len(str(base_scale)) - 1,
            base_scale=base_scale,
            base_price=price_r.one() if price_r.ok else 0,
            base_borrow_min=borrow_min,
            base_supply_index=supply_index,
            base_borrow_index=borrow_index,
            total_supply_base=total_supply,
            total_borrow_base=total_borrow,
            last_accrual_time=last_accrual,
            pause_flags=pause_flags,
            supply_rate=supply_rate_r.one(),
            borrow_rate=borrow_rate_r.one(),
            assets=tuple(assets),
            block_timestamp=block.timestamp,
        )
        feeds = read_feeds(self.multicall, [base_feed] + [a.price_feed for a in assets], n)
        for token, (feed, error) in failed.items():
            # getPrice reverts on a non-positive answer, and so would isLiquidatable and absorb of the accounts
            # that reach it: those are left out (``positions``). Any other failure fails the snapshot loudly.
            reading = feeds.get(feed)
            if reading is None or reading.answer > 0:
                raise DecodeError(f"Comet.getPrice({feed}) for {token} failed at block {n}: {error}")
        prices = []
        for token, symbol, feed, price in [(base_token, market.base_symbol, base_feed, market.base_price)] + [
            (a.asset, a.symbol, a.price_feed, a.price) for a in assets
        ]:
            reading = feeds.get(feed)
            prices.append(
                PriceReading(
                    asset=token,
                    symbol=symbol,
                    price=reading.answer if token in failed and reading is not None else price,  # unpriced: the answer refused
                    price_decimals=8,
                    source=feed,
                    feed_answer=reading.answer if reading else None,
                    feed_updated_at=reading.updated_at if reading else None,
                )
            )
        return CometSnapshot(c, market, tuple(prices), unpriced=frozenset(failed))

    def log_filter(self, market: CometSnapshot) -> LogFilter:
        return LogFilter(addresses=[market.comet], topics=[[self.abi.event(name).topic0 for name in _ACCOUNT_PARAMS]])

    def accounts_from_logs(self, logs: list[dict[str, Any]]) -> set[AccountKey]:
        where: dict[str, list[int]] = {}
        for name, params in _ACCOUNT_PARAMS.items():
            ev = self.abi.event(name)
            where[ev.topic0] = [ev.topic_index(p) for p in params]
        return accounts_in_topics(logs, where)

    def prices(self, market: CometSnapshot) -> list[PriceReading]:
        return list(market.prices)

    # --- accounts ----------------------------------------------------------------------------------
    def read_users(self, market: CometSnapshot, accounts: list[str], block: int) -> list[CometUser]:
        """``userBasic`` and collateral balances of the accounts with a position."""
        c = market.comet
        basics = self.multicall.run([Call(c, self.abi.fn("userBasic"), (a,)) for a in accounts], block)
        held: list[tuple[str, int, int]] = []
        for account, res in zip(accounts, basics, strict=True):
            if not res.ok:
                self.unreadable(account, block, f"Comet.userBasic: {res.error}")  # left out, never read as empty
                continue
            principal, _index, _accrued, assets_in, reserved = res.value
            bits = assets_in | (reserved << 16)  # CometWithExtendedAssetList keeps offsets >= 16 in _reserved
            if principal != 0 or bits:
                held.append((account, principal, bits))
        calls: list[Call] = []
        keys: list[tuple[int, int]] = []
        for u, (account, _principal, bits) in enumerate(held):
            for asset in market.market.assets:
                if (bits >> asset.offset) & 1:
                    calls.append(Call(c, self.abi.fn("collateralBalanceOf"), (account, asset.asset)))
                    keys.append((u, asset.offset))
        balances = self.multicall.run(calls, block)
        collateral: list[dict[int, int]] = [{} for _ in held]
        unread: set[int] = set()
        for (u, offset), res in zip(keys, balances, strict=True):
            if not res.ok:
                if u not in unread:
                    self.unreadable(held[u][0], block, f"Comet.collateralBalanceOf, asset offset {offset}: {res.error}")  # never a zero balance
                unread.add(u)
                continue
            collateral[u][offset] = res.value[0]
        return [CometUser(a, p, bits, collateral[u]) for u, (a, p, bits) in enumerate(held) if u not in unread]

    def positions(self, market: CometSnapshot, accounts: list[AccountKey], block: BlockRef) -> list[Position]:
        return self.positions_from_states(market, set(accounts), self.read_states(market, accounts, block), block)  # the warm refresh's two halves

    def _without_unpriced(self, snap: CometSnapshot, users: list[CometUser], block: int) -> list[CometUser]:
        """``users`` without those needing a price Comet's getPrice refuses (logged): a borrower's verdict reads the
        base price and its collateral prices, and every non-zero balance's value reads its price."""
        m = snap.market
        bad_bits, base_bad = _unpriced_rule(snap)
        kept = [u for u in users if not (u.assets_in & bad_bits or (base_bad and u.principal != 0))]
        if len(kept) < len(users):
            symbols = ", ".join(sorted(a.symbol for a in m.assets if a.asset in snap.unpriced) + ([m.base_symbol] if base_bad else []))
            log.warning(
                "positions left out protocol=%s block=%d count=%d reason=%s",
                self.name, block, len(users) - len(kept), f"Comet.getPrice reverts for {symbols} (feed answer <= 0)",
            )  # fmt: skip
        return kept

    def market_state(self, market: CometSnapshot) -> dict[str, Any]:
        """The Comet's state (assets and prices, base price, indexes, rates) under "" ."""
        return {"": encode(market.market)}

    def position_of(self, market: CometMarket, user: CometUser, block: BlockRef) -> Position:
        outcome = evaluate_comet(market, user)  # the same numbers a stored position's model recomputes
        ev, v = outcome.evaluation, outcome.verdict
        details = {
            "contract": self.config.comet,  # where absorb and buyCollateral go
            "view_is_liquidatable": str(v.view_liquidatable).lower(),
            "absorbable": str(v.absorbable).lower(),
            "verdict": v.reason,
            "base_balance": str(v.base_balance),
            "principal": str(user.principal),
            "liquidation_collateral_value_usd_1e8": str(v.liquidation_collateral_value),
            "borrow_collateral_value_usd_1e8": str(v.borrow_collateral_value),
        }
        if v.base_balance < 0:
            for asset in market.assets:
                p = liquidation_price(market, user, asset.offset)
                if p is not None:
                    details[f"liquidation_price_usd_1e8.{asset.symbol}"] = str(p)
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
            liquidation_threshold_bps=outcome.liquidation_threshold_bps,
            price_drop_to_liquidation=price_drop_to_liquidation(market, user),
            legs=ev.legs,
            details=details,
            state=encode(user),
        )

    # --- warm refresh (``indexer.warm``): the events that change positions, positions from kept state -------
    def change_filter(self, market: CometSnapshot) -> LogFilter:
        """Every event that can change an account's ``userBasic`` principal or collateral: the discovery events
        are all of them (supply, withdraw, base transfer, collateral supply / withdraw / transfer, absorb).
        Interest changes no principal: it is in the indexes ``load_market`` reads."""
        return self.log_filter(market)

    def touched_accounts(self, logs: list[dict[str, Any]], first_block: int, block: BlockRef) -> set[AccountKey]:
        """Accounts whose position the ``change_filter`` logs may have changed: the parties ``accounts_from_logs``
        names (the payer of a supply and the receiver of a withdrawal keep their position), and the parties of
        the base transfers sent straight to the Comet in ``first_block .. block``.

        Comet's ``transferBase`` emits ``Transfer`` only for the supply it moves: a base transfer in which the
        sender borrows and the receiver repays changes both principals and emits no event at all. Such transfers
        are found in the blocks' transactions (one batched ``eth_getBlockByNumber`` per refresh): calls of
        ``transfer``, ``transferFrom``, ``transferAsset`` and ``transferAssetFrom`` to the Comet. A transfer made
        by another contract (a bulker) is not seen there; the warm book's sample comparison and periodic full
        reads are what finds those."""
        return self.accounts_from_logs(logs) | self._direct_transfers(first_block, block.number)

    def _direct_transfers(self, first: int, last: int) -> set[AccountKey]:
        from eth_abi import decode as abi_decode
        from eth_utils import keccak

        signatures = {  # selector -> (argument types, indexes of the accounts in them; None: the transaction's sender)
            "transfer(address,uint256)": (["address", "uint256"], (None, 0)),
            "transferFrom(address,address,uint256)": (["address", "address", "uint256"], (0, 1)),
            "transferAsset(address,address,uint256)": (["address", "address", "uint256"], (None, 0)),
            "transferAssetFrom(address,address,address,uint256)": (["address", "address", "address", "uint256"], (0, 1)),
        }
        by_selector = {"0x" + keccak(text=sig)[:4].hex(): how for sig, how in signatures.items()}
        comet = self.config.comet.lower()
        accounts: set[AccountKey] = set()
        for b in self.rpc.batch([("eth_getBlockByNumber", [hex(n), True]) for n in range(first, last + 1)]):
            for tx in (b or {}).get("transactions", []):
                data = tx.get("input") or tx.get("data") or "0x"
                how = by_selector.get(data[:10].lower())
                if how is None or (tx.get("to") or "").lower() != comet:
                    continue
                try:
                    args = abi_decode(how[0], bytes.fromhex(data[10:]))
                except Exception:  # noqa: BLE001  (malformed calldata: the call reverted, nothing moved)
                    continue
                for i in how[1]:
                    account = to_checksum_address(tx["from"] if i is None else args[i])
                    if account != ZERO_ADDRESS:
                        accounts.add(AccountKey(account))
        return accounts

    def read_states(self, market: CometSnapshot, keys: list[AccountKey], block: BlockRef) -> dict[AccountKey, CometUser]:
        """The raw state (``CometUser``) of each account with a position; others (or unreadable ones) absent."""
        return {AccountKey(u.account): u for u in self.read_users(market, sorted({k.account for k in keys}), block.number)}

    def verdicts(self, market: CometSnapshot, states: Mapping[AccountKey, CometUser]) -> dict[AccountKey, bool]:
        """``{key: liquidatable}`` for the kept states: exactly ``Position.liquidatable`` of the position
        ``positions_from_states`` makes of each (``absorb`` passes: a borrower under water at the borrow index accrued
        to the block's timestamp, absorb not paused), computed by ``risk.fast_comet`` without building positions.
        The states ``positions_from_states`` leaves out (a price Comet's ``getPrice`` refuses) are absent."""
        bad_bits, base_bad = _unpriced_rule(market)
        return self._fast(market.market, states, skip_bits=bad_bits, skip_borrowers=base_bad)

    def positions_from_states(self, market: CometSnapshot, known: set[AccountKey], states: dict[AccountKey, CometUser], block: BlockRef) -> list[Position]:
        """``positions`` of accounts whose state was read before (``read_states``, kept by ``indexer.warm``):
        the same verdicts when the states are current. ``positions`` is ``read_states`` then this."""
        users = [states[k] for k in sorted(states)]
        if market.unpriced:
            users = self._without_unpriced(market, users, block.number)
        return [self.position_of(market.market, user, block) for user in users]


def _unpriced_rule(snap: CometSnapshot) -> tuple[int, bool]:
    """(collateral bits whose price Comet refuses, whether it refuses the base price): an account holding such a
    bit, or with a non-zero principal when the base is refused, cannot be decided (``_without_unpriced``)."""
    bad_bits = 0
    for a in snap.market.assets:
        if a.asset in snap.unpriced:
            bad_bits |= 1 << a.offset
    return bad_bits, snap.market.base_token in snap.unpriced
