"""Aave V3 positions recomputed at other oracle prices with the pool's exact rule (``risk.aave_v3``).

The adapter builds its ``Position`` numbers with ``evaluate_aave`` too, so a stored position and its model's
``evaluate()`` cannot drift apart. Oracle answers are ``AaveOracle.getAssetPrice`` values in base-currency
units (USD x 1e8 on USD markets) per whole token.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from indexer.constants import USD_SCALE
from indexer.domain import BlockRef, PositionLeg
from indexer.risk.aave_v3 import AaveAccountData, AaveMarket, AaveUser, AaveVerdict, account_data, liquidation_verdict
from indexer.risk.reprice.base import Evaluation, OraclePrice, PositionModel, Shocks, register, symbol_key
from indexer.risk.reprice.shared import decode_shared, direction_of
from indexer.risk.state import decode


@dataclass(frozen=True, slots=True)
class AaveOutcome:
    """The evaluation of one account and the pool-level numbers behind it."""

    evaluation: Evaluation  # verdict and USD values
    data: AaveAccountData  # what getUserAccountData returns, with the legs
    verdict: AaveVerdict  # the liquidationCall validation outcome


def to_usd(value_base: int, base_unit: int) -> int:
    """Base-currency units to USD x 1e18 (floored)."""
    return value_base * USD_SCALE // base_unit


def evaluate_aave(market: AaveMarket, user: AaveUser) -> AaveOutcome:
    """HF, verdict, USD values and legs of ``user`` at the market's prices, as the adapter stores them."""
    data = account_data(market, user)
    verdict = liquidation_verdict(market, user, data)
    unit = market.base_currency_unit
    legs = []
    for side, group in (("collateral", data.collateral_legs), ("debt", data.debt_legs)):
        for leg in group:
            reserve = market.reserves[leg.reserve_id]
            if reserve is None:  # legs are only built for live reserves
                raise ValueError(f"reserve {leg.reserve_id} of a leg is not live")
            legs.append(
                PositionLeg(
                    asset=reserve.asset,
                    symbol=reserve.symbol,
                    side=side,
                    amount=leg.balance,
                    decimals=reserve.decimals,
                    value_usd=to_usd(leg.value_base, unit),
                    liquidation_threshold_bps=leg.liquidation_threshold,
                )
            )
    coll_usd = to_usd(data.total_collateral_base, unit)
    debt_usd = to_usd(data.total_debt_base, unit)
    evaluation = Evaluation(
        health_factor=data.health_factor,
        liquidatable=verdict.liquidatable,
        collateral_usd=coll_usd,
        debt_usd=debt_usd,
        nlv_usd=coll_usd - debt_usd,
        legs=tuple(legs),
    )
    return AaveOutcome(evaluation, data, verdict)


class AaveV3Model(PositionModel):
    """One Aave V3 account: ``market`` (every reserve, the eMode categories in use) and ``user`` (raw balances)."""

    kind = "aave_v3"

    def __init__(self, market: AaveMarket, user: AaveUser, *, protocol: str, block: BlockRef, market_id: str = "", account: str | None = None) -> None:
        super().__init__(protocol=protocol, account=account or user.account, market=market_id, block=block)
        self.market: AaveMarket = market  # the protocol object
        self.user = user
        self._prices: dict[str, OraclePrice] | None = None
        self._reserves_of: dict[str, tuple[int, ...]] = {}  # symbol key -> reserve ids of the user's legs

    def oracle_prices(self) -> dict[str, OraclePrice]:
        if self._prices is None:
            data = account_data(self.market, self.user)
            unit = self.market.base_currency_unit
            decimals = len(str(unit)) - 1
            held: dict[int, int] = {}
            owed: dict[int, int] = {}
            for leg in data.collateral_legs:
                held[leg.reserve_id] = leg.value_base
            for leg in data.debt_legs:
                owed[leg.reserve_id] = leg.value_base
            prices: dict[str, OraclePrice] = {}
            reserves_of: dict[str, list[int]] = {}
            for rid in sorted(held.keys() | owed.keys()):
                reserve = self.market.reserves[rid]
                if reserve is None:  # legs are only built for live reserves
                    continue
                key = symbol_key(reserve.symbol)
                reserves_of.setdefault(key, []).append(rid)
                prices[key] = OraclePrice(
                    symbol=reserve.symbol,
                    asset=reserve.asset,
                    answer=reserve.price,
                    decimals=decimals,
                    unit=f"base currency x 1e{decimals} per whole token (AaveOracle.getAssetPrice)",
                    direction=direction_of(held.get(rid), owed.get(rid)),
                )
            self._reserves_of = {k: tuple(v) for k, v in reserves_of.items()}
            self._prices = prices
        return dict(self._prices)

    def market_at(self, answers: Mapping[str, int]) -> AaveMarket:
        """The market with the reserves of ``answers`` (by symbol) priced at those raw answers."""
        self.oracle_prices()
        new: dict[int, int] = {}
        for symbol, answer in answers.items():
            for rid in self._reserves_of.get(symbol_key(symbol), ()):
                new[rid] = int(answer)
        if not new:
            return self.market
        reserves = tuple(replace(r, price=new[i]) if r is not None and i in new else r for i, r in enumerate(self.market.reserves))
        return replace(self.market, reserves=reserves)

    def evaluate_at(self, answers: Mapping[str, int]) -> Evaluation:
        return evaluate_aave(self.market_at(answers), self.user).evaluation

    def at(self, shocks: Shocks) -> AaveV3Model:
        market = self.market_at(self.shocked_answers(shocks))
        return AaveV3Model(market, self.user, protocol=self.protocol, block=self.block, market_id=self.market_id, account=self.account)


@register("aave_v3")
def load(*, protocol: str, account: str, market: str, block: BlockRef, market_state: Any, state: Any) -> AaveV3Model:
    """The model of a stored Aave position: ``market_state`` is ``encode(AaveMarket)``, ``state`` ``encode(AaveUser)``."""
    if market_state is None:
        raise ValueError(f"aave_v3 position {account}: its run stored no market state")
    return AaveV3Model(decode_shared(AaveMarket, market_state), decode(AaveUser, state), protocol=protocol, block=block, market_id=market, account=account)
