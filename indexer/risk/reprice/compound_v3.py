"""Compound V3 (Comet) positions recomputed at other oracle prices with Comet's exact rule (``risk.comet``).

The verdict is ``absorb``'s (interest accrued to the block's timestamp). The adapter builds its ``Position``
numbers with ``evaluate_comet`` too. Oracle answers are ``getPrice(feed)``: USD x 1e8 per whole token, for
each collateral asset and for the base token.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from indexer.domain import BlockRef, PositionLeg
from indexer.risk.comet import PRICE_SCALE, CometMarket, CometUser, CometVerdict, verdict
from indexer.risk.reprice.base import FALLING, RISING, Evaluation, OraclePrice, PositionModel, Shocks, register, symbol_key
from indexer.risk.reprice.shared import decode_shared
from indexer.risk.state import decode

# Comet prices are USD x 1e8; the domain's USD values are x 1e18.
TO_USD = 10**18 // PRICE_SCALE
_PRICE_DECIMALS = len(str(PRICE_SCALE)) - 1


@dataclass(frozen=True, slots=True)
class CometOutcome:
    """The evaluation of one account and Comet's numbers behind it."""

    evaluation: Evaluation  # verdict (absorb) and USD values
    verdict: CometVerdict  # both verdicts and the values in USD x 1e8
    liquidation_threshold_bps: int  # liquidate-CF weighted by collateral value, bps


def evaluate_comet(market: CometMarket, user: CometUser) -> CometOutcome:
    """HF, ``absorb`` verdict, USD values and legs of ``user`` at the market's prices, as the adapter stores them."""
    v = verdict(market, user)
    legs = []
    lcf_weighted = 0
    for asset in market.assets:
        if not (user.assets_in >> asset.offset) & 1:
            continue
        amount = user.collateral.get(asset.offset, 0)
        value = amount * asset.price // asset.scale
        lcf_weighted += value * asset.liquidate_collateral_factor
        legs.append(PositionLeg(asset.asset, asset.symbol, "collateral", amount, asset.decimals, value * TO_USD, asset.liquidate_collateral_factor // 10**14))
    if v.base_balance:
        side = "debt" if v.base_balance < 0 else "supply"
        value = v.debt_value if v.base_balance < 0 else v.supply_value
        legs.append(PositionLeg(market.base_token, market.base_symbol, side, abs(v.base_balance), market.base_decimals, value * TO_USD, 0))
    evaluation = Evaluation(
        health_factor=v.health_factor,
        liquidatable=v.absorbable,
        collateral_usd=v.collateral_value * TO_USD,
        debt_usd=v.debt_value * TO_USD,
        nlv_usd=(v.collateral_value + v.supply_value - v.debt_value) * TO_USD,
        legs=tuple(legs),
    )
    lt_bps = lcf_weighted // v.collateral_value // 10**14 if v.collateral_value else 0
    return CometOutcome(evaluation, v, lt_bps)


class CompoundV3Model(PositionModel):
    """One Comet account: ``market`` (assets, prices, indexes, rates) and ``user`` (principal, collateral)."""

    kind = "compound_v3"

    def __init__(self, market: CometMarket, user: CometUser, *, protocol: str, block: BlockRef, market_id: str = "", account: str | None = None) -> None:
        super().__init__(protocol=protocol, account=account or user.account, market=market_id, block=block)
        self.market: CometMarket = market  # the protocol object
        self.user = user
        self._prices: dict[str, OraclePrice] | None = None

    def oracle_prices(self) -> dict[str, OraclePrice]:
        if self._prices is None:
            m, u = self.market, self.user
            unit = f"USD x 1e{_PRICE_DECIMALS} per whole token (Comet.getPrice)"
            prices: dict[str, OraclePrice] = {}
            for asset in m.assets:
                if (u.assets_in >> asset.offset) & 1:
                    prices[symbol_key(asset.symbol)] = OraclePrice(asset.symbol, asset.asset, asset.price, _PRICE_DECIMALS, unit, FALLING)
            if u.principal != 0:  # the base: owed (a borrower) or lent (a supplier)
                direction = RISING if u.principal < 0 else FALLING
                prices[symbol_key(m.base_symbol)] = OraclePrice(m.base_symbol, m.base_token, m.base_price, _PRICE_DECIMALS, unit, direction)
            self._prices = prices
        return dict(self._prices)

    def market_at(self, answers: Mapping[str, int]) -> CometMarket:
        """The market with the assets of ``answers`` (collateral or base, by symbol) priced at those raw answers."""
        new = {symbol_key(s): int(a) for s, a in answers.items()}
        if not new:
            return self.market
        m = self.market
        assets = tuple(replace(a, price=new[symbol_key(a.symbol)]) if symbol_key(a.symbol) in new else a for a in m.assets)
        return replace(m, assets=assets, base_price=new.get(symbol_key(m.base_symbol), m.base_price))

    def evaluate_at(self, answers: Mapping[str, int]) -> Evaluation:
        return evaluate_comet(self.market_at(answers), self.user).evaluation

    def at(self, shocks: Shocks) -> CompoundV3Model:
        market = self.market_at(self.shocked_answers(shocks))
        return CompoundV3Model(market, self.user, protocol=self.protocol, block=self.block, market_id=self.market_id, account=self.account)


@register("compound_v3")
def load(*, protocol: str, account: str, market: str, block: BlockRef, market_state: Any, state: Any) -> CompoundV3Model:
    """The model of a stored Comet position: ``market_state`` is ``encode(CometMarket)``, ``state`` ``encode(CometUser)``."""
    if market_state is None:
        raise ValueError(f"compound_v3 position {account}: its run stored no market state")
    return CompoundV3Model(decode_shared(CometMarket, market_state), decode(CometUser, state), protocol=protocol, block=block, market_id=market, account=account)
