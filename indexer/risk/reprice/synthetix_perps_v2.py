"""Synthetix PerpsV2 positions recomputed at other mark prices with ``risk.synthetix_perps``'s exact rule.

The one price is the market's ``assetPrice()`` (USD x 1e18 per unit of the base asset, e.g. "sETH"). A shock
moves it and nothing else: the margin, the entry price, the recorded funding sequence, the skew and the
funding rate stay as stored, and the elapsed time is the snapshot's (the unrecorded funding since the last
recomputation is valued at the shocked price, as the contract values it). The validity flag stays as read;
a shocked answer of 0 is evaluated with the rule (on chain a zero rate is invalid and ``canLiquidate``
false, which says nothing about the position's risk).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from indexer.domain import BlockRef, PositionLeg
from indexer.risk.reprice.base import FALLING, RISING, Evaluation, OraclePrice, PositionModel, Shocks, register, symbol_key
from indexer.risk.reprice.shared import decode_shared
from indexer.risk.state import decode
from indexer.risk.synthetix_perps import PerpsMarket, PerpsPosition, PerpsVerdict, verdict

MARGIN_SYMBOL = "sUSD"  # the margin's unit (the system's dollar; no oracle price)


def evaluation(m: PerpsMarket, p: PerpsPosition) -> tuple[PerpsVerdict, Evaluation]:
    """The verdict at ``m.price`` and the values a ``Position`` reports (the adapter builds its positions
    with this, so a model at unshocked prices reproduces them exactly)."""
    v = verdict(m, p)
    legs = [PositionLeg(m.address, MARGIN_SYMBOL, "collateral", p.margin, 18, p.margin, 0)]
    if p.size:
        legs.append(PositionLeg(m.address, m.base_asset, "long" if p.size > 0 else "short", abs(p.size), 18, abs(v.notional), 0))
    ev = Evaluation(
        health_factor=v.health_factor,
        liquidatable=v.can_liquidate,
        collateral_usd=p.margin,
        debt_usd=0,
        nlv_usd=v.remaining_margin,
        legs=tuple(legs),
    )
    return v, ev


class SynthetixPerpsV2Model(PositionModel):
    """A PerpsV2 position (``.position``) in its market (``.market``, whose ``address`` is the market id)."""

    kind = "synthetix_perps_v2"
    market: PerpsMarket  # type: ignore[assignment]  # the base class's market id is ``market.address``

    def __init__(self, *, market: PerpsMarket, position: PerpsPosition, protocol: str, account: str, block: BlockRef) -> None:
        super().__init__(protocol=protocol, account=account, market=market.address, block=block)
        self.market = market
        self.position = position

    def oracle_prices(self) -> dict[str, OraclePrice]:
        m, p = self.market, self.position
        if p.size == 0:  # margin only: no price moves the verdict
            return {}
        return {
            symbol_key(m.base_asset): OraclePrice(
                symbol=m.base_asset,
                asset=m.address,
                answer=m.price,
                decimals=18,
                unit="USD x 1e18 per base unit (assetPrice)",
                direction=FALLING if p.size > 0 else RISING,
            )
        }

    def evaluate_at(self, answers: Mapping[str, int]) -> Evaluation:
        m = self.market
        price = answers.get(symbol_key(m.base_asset), m.price)
        if price != m.price:
            m = replace(m, price=price)
        return evaluation(m, self.position)[1]

    def at(self, shocks: Shocks) -> SynthetixPerpsV2Model:
        m = self.market
        price = self.shocked_answers(shocks).get(symbol_key(m.base_asset), m.price)
        return SynthetixPerpsV2Model(market=replace(m, price=price), position=self.position, protocol=self.protocol, account=self.account, block=self.block)


@register("synthetix_perps_v2")
def load(*, protocol: str, account: str, market: str, block: BlockRef, market_state: Any, state: Any) -> SynthetixPerpsV2Model:
    """``market_state``: the encoded ``PerpsMarket`` of the position's market; ``state``: its ``PerpsPosition``."""
    perps_market = decode_shared(PerpsMarket, market_state)  # one object per run and market: decoded once
    if perps_market.address != market:
        raise ValueError(f"synthetix_perps_v2 {account}: market state of {perps_market.address}, position in {market}")
    return SynthetixPerpsV2Model(protocol=protocol, account=account, block=block, market=perps_market, position=decode(PerpsPosition, state))
