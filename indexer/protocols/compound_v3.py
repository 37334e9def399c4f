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
from dataclasses import dataclass
from typing import Any

from eth_utils import to_checksum_address

from indexer.chain.abi import load_abi
from indexer.chain.multicall import Call
from indexer.constants import ZERO_ADDRESS
from indexer.domain import AccountKey, BlockRef, Position, PriceReading
from indexer.errors import DecodeError
from indexer.pricing.chainlink import read_feeds
from indexer.protocols.base import LogFilter, ProtocolAdapter
from indexer.risk.comet import CometAsset, CometMarket, CometUser, liquidation_price, price_drop_to_liquidation
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


class CompoundV3Adapter(ProtocolAdapter):
    """One Comet deployment (cUSDCv3, cWETHv3, ...), including extended asset lists."""

    kind = "compound_v3"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.abi = load_abi("Comet")
        self.erc20 = load_abi("ERC20")

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
        if not price_r.ok:
            raise DecodeError(f"Comet.getPrice(base feed {base_feed}) failed at block {n}: {price_r.error}")
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
                # getPrice reverts on a non-positive answer, and so would isLiquidatable and absorb.
                raise DecodeError(f"Comet.getPrice({feed}) for asset {asset} failed at block {n}: {p.error}")
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
                    price=p.one(),
                )
            )
        supply_index, borrow_index, _tsi, _tbi, total_supply, total_borrow, last_accrual, pause_flags = totals
        market = CometMarket(
            base_token=base_token,
            base_symbol=sym_r.value[0] if sym_r.ok else base_token[:8],
            base_decimals=dec_r.value[0] if dec_r.ok else len(str(base_scale)) - 1,
            base_scale=base_scale,
            base_price=price_r.one(),
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
        prices = []
        for token, symbol, feed, price in [(base_token, market.base_symbol, base_feed, market.base_price)] + [
            (a.asset, a.symbol, a.price_feed, a.price) for a in assets
        ]:
            reading = feeds.get(feed)
            prices.append(
                PriceReading(
                    asset=token,
                    symbol=symbol,
                    price=price,
                    price_decimals=8,
                    source=feed,
                    feed_answer=reading.answer if reading else None,
                    feed_updated_at=reading.updated_at if reading else None,
                )
            )
        return CometSnapshot(c, market, tuple(prices))

    def log_filter(self, market: CometSnapshot) -> LogFilter:
        return LogFilter(addresses=[market.comet], topics=[[self.abi.event(name).topic0 for name in _ACCOUNT_PARAMS]])

    def accounts_from_logs(self, logs: list[dict[str, Any]]) -> set[AccountKey]:
        where: dict[str, list[int]] = {}
        for name, params in _ACCOUNT_PARAMS.items():
            ev = self.abi.event(name)
            where[ev.topic0] = [ev.topic_index(p) for p in params]
        accounts: set[AccountKey] = set()
        for entry in logs:
            topics = entry["topics"]
            for i in where.get(topics[0].lower(), ()):
                if i < len(topics):
                    account = to_checksum_address("0x" + topics[i][-40:])
                    if account != ZERO_ADDRESS:
                        accounts.add(AccountKey(account))
        return accounts

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
                raise DecodeError(f"Comet.userBasic({account}) failed at block {block}: {res.error}")
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
        for (u, offset), res in zip(keys, balances, strict=True):
            if not res.ok:
                raise DecodeError(f"Comet.collateralBalanceOf({held[u][0]}) failed at block {block}: {res.error}")
            collateral[u][offset] = res.value[0]
        return [CometUser(a, p, bits, collateral[u]) for u, (a, p, bits) in enumerate(held)]

    def positions(self, market: CometSnapshot, accounts: list[AccountKey], block: BlockRef) -> list[Position]:
        users = self.read_users(market, sorted({k.account for k in accounts}), block.number)
        return [self.position_of(market.market, user, block) for user in users]

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
