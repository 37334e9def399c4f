"""Morpho Blue positions recomputed at other prices with Morpho's exact rule (``risk.morpho``).

A market's oracle answers one number: the collateral's price in loan-token units x 1e36 (``IOracle.price``).
It is keyed here by the collateral's symbol. The loan token's USD feed (``usd_feeds``), keyed by the loan's
symbol, only values the position in USD, exactly as the adapter does (``evaluate_morpho``).

A shock of the loan token moves both: the ratio is divided by it and the USD answer multiplied,
``price' = floor(price * m_collateral / m_loan)``, ``usd' = floor(usd * m_loan)`` (``MorphoBlueModel.evaluate``).
In answer terms (``evaluate_at``), a loan USD answer ``a`` in place of the stored ``a0`` turns the ratio into
``floor(ratio * a0 / a)``; so ``liquidation_answer(loan symbol)`` is the loan's USD answer at which the
position becomes liquidatable, with the market's oracle moved to match.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from indexer.constants import UINT256_MAX, USD_SCALE, WAD
from indexer.domain import BlockRef, PositionLeg
from indexer.risk.morpho import (
    ORACLE_PRICE_SCALE,
    MorphoMarket,
    MorphoPosition,
    accrued,
    borrowed_assets,
    is_healthy,
    max_borrow,
    mul_div_down,
    to_assets_down,
)
from indexer.risk.reprice.base import FALLING, Evaluation, OraclePrice, PositionModel, Shocks, register, shock_of, shocked, symbol_key
from indexer.risk.reprice.shared import decode_shared, direction_of
from indexer.risk.state import decode


@dataclass(frozen=True, slots=True)
class MorphoPricedMarket:
    """One market's rule inputs and what values its loan token in USD: a run's market state per market id."""

    market: MorphoMarket  # params, stored totals, oracle price, IRM rate at the block
    loan_symbol: str  # loan token symbol
    loan_decimals: int  # loan token decimals
    collateral_symbol: str  # collateral token symbol
    collateral_decimals: int  # collateral token decimals
    loan_usd_answer: int | None  # the loan token's USD feed answer at the block; None without a feed (USD values 0)
    loan_usd_decimals: int  # decimals of that answer (0 without a feed)


def evaluate_morpho(
    priced: MorphoPricedMarket,
    position: MorphoPosition,
    *,
    now: MorphoMarket | None = None,
    price: int | None = None,
    loan_usd_answer: int | None = None,
) -> Evaluation:
    """HF, ``liquidate``'s verdict, USD values and legs of ``position``, as the adapter stores them.

    ``now``: the market accrued to the block (``accrued(priced.market)``, computed when not given); ``price``:
    the oracle's ratio (default: the stored one); ``loan_usd_answer``: the loan's USD answer (default: stored).
    """
    m = priced.market
    now = accrued(m) if now is None else now
    p = now.price if price is None else price
    answer = priced.loan_usd_answer if loan_usd_answer is None else loan_usd_answer
    borrowed = borrowed_assets(now, position) if position.borrow_shares else 0
    limit = max_borrow(now, position, p)
    collateral_value = mul_div_down(position.collateral, p, ORACLE_PRICE_SCALE)
    supplied = to_assets_down(position.supply_shares, now.total_supply_assets, now.total_supply_shares)

    def usd(loan_amount: int) -> int:
        if priced.loan_usd_answer is None or answer is None:
            return 0
        return loan_amount * answer * USD_SCALE // (10**priced.loan_decimals * 10**priced.loan_usd_decimals)

    lltv_bps = m.lltv // 10**14
    legs = []
    if position.collateral:
        legs.append(
            PositionLeg(m.collateral_token, priced.collateral_symbol, "collateral", position.collateral, priced.collateral_decimals, usd(collateral_value), lltv_bps)
        )
    if borrowed:
        legs.append(PositionLeg(m.loan_token, priced.loan_symbol, "debt", borrowed, priced.loan_decimals, usd(borrowed), 0))
    if supplied:
        legs.append(PositionLeg(m.loan_token, priced.loan_symbol, "supply", supplied, priced.loan_decimals, usd(supplied), 0))
    collateral_usd, debt_usd = usd(collateral_value), usd(borrowed)
    return Evaluation(
        health_factor=UINT256_MAX if borrowed == 0 else limit * WAD // borrowed,
        liquidatable=not is_healthy(now, position, p),
        collateral_usd=collateral_usd,
        debt_usd=debt_usd,
        nlv_usd=collateral_usd + usd(supplied) - debt_usd,
        legs=tuple(legs),
    )


def _ratio_over_loan(ratio: int, stored_answer: int, answer: int) -> int:
    """The collateral/loan ratio once the loan's USD answer moves from ``stored_answer`` to ``answer``."""
    if answer <= 0:
        return UINT256_MAX  # a worthless loan token: any collateral covers the debt
    return ratio * stored_answer // answer


class MorphoBlueModel(PositionModel):
    """One Morpho Blue position: ``market`` (the market's state), ``position`` (shares, collateral) and
    ``priced`` (the market with its tokens' symbols and the loan's USD answer)."""

    kind = "morpho_blue"

    def __init__(self, priced: MorphoPricedMarket, position: MorphoPosition, *, protocol: str, block: BlockRef, account: str | None = None) -> None:
        super().__init__(protocol=protocol, account=account or position.account, market=priced.market.market_id, block=block)
        self.market: MorphoMarket = priced.market  # the protocol object
        self.priced = priced
        self.position = position
        self._now = accrued(priced.market)  # interest to the block's timestamp does not depend on prices
        self._prices: dict[str, OraclePrice] | None = None

    @property
    def collateral_key(self) -> str:
        return symbol_key(self.priced.collateral_symbol)

    @property
    def loan_key(self) -> str:
        return symbol_key(self.priced.loan_symbol)

    def _loan_answer(self) -> int | None:
        """The loan token's stored USD answer, when it has one under a key of its own (not the collateral's)."""
        return self.priced.loan_usd_answer if self.loan_key != self.collateral_key else None

    def oracle_prices(self) -> dict[str, OraclePrice]:
        if self._prices is None:
            pm, pos, m = self.priced, self.position, self.market
            prices: dict[str, OraclePrice] = {}
            if pos.collateral or pos.borrow_shares:
                decimals = 36 + pm.loan_decimals - pm.collateral_decimals
                unit = "loan-token units x 1e36 per collateral-token unit (IOracle.price)"
                prices[self.collateral_key] = OraclePrice(pm.collateral_symbol, m.collateral_token, m.price, decimals, unit, FALLING)
            answer = self._loan_answer()
            if answer is not None and (pos.borrow_shares or pos.supply_shares):
                ev = evaluate_morpho(pm, pos, now=self._now)
                owed = next((leg.amount for leg in ev.legs if leg.side == "debt"), None)
                lent = next((leg.amount for leg in ev.legs if leg.side == "supply"), None)
                unit = f"USD x 1e{pm.loan_usd_decimals} per whole token (usd_feeds)"
                prices[self.loan_key] = OraclePrice(pm.loan_symbol, m.loan_token, answer, pm.loan_usd_decimals, unit, direction_of(lent, owed))
            self._prices = prices
        return dict(self._prices)

    def evaluate_at(self, answers: Mapping[str, int]) -> Evaluation:
        given = {symbol_key(k): int(v) for k, v in answers.items()}
        ratio = given.get(self.collateral_key, self.market.price)
        usd = self.priced.loan_usd_answer
        stored = self._loan_answer()
        if stored is not None and self.loan_key in given:
            ratio = _ratio_over_loan(ratio, stored, given[self.loan_key])
            usd = given[self.loan_key]
        return evaluate_morpho(self.priced, self.position, now=self._now, price=ratio, loan_usd_answer=usd)

    def _shocked(self, shocks: Shocks | None) -> tuple[int, int | None]:
        """(oracle ratio, loan USD answer) under ``shocks``: the ratio times ``m_collateral / m_loan`` (floored
        once), the loan's USD answer times ``m_loan``."""
        m_coll = shock_of(shocks or {}, self.priced.collateral_symbol)
        m_loan = shock_of(shocks or {}, self.priced.loan_symbol)
        if m_loan == 0:
            ratio = UINT256_MAX if m_coll else 0
        else:
            ratio = shocked(self.market.price, m_coll / m_loan)
        usd = self.priced.loan_usd_answer
        return ratio, None if usd is None else shocked(usd, m_loan)

    def evaluate(self, shocks: Shocks | None = None) -> Evaluation:
        ratio, usd = self._shocked(shocks)
        return evaluate_morpho(self.priced, self.position, now=self._now, price=ratio, loan_usd_answer=usd)

    def at(self, shocks: Shocks) -> MorphoBlueModel:
        ratio, usd = self._shocked(shocks)
        priced = replace(self.priced, market=replace(self.market, price=ratio), loan_usd_answer=usd)
        return MorphoBlueModel(priced, self.position, protocol=self.protocol, block=self.block, account=self.account)


@register("morpho_blue")
def load(*, protocol: str, account: str, market: str, block: BlockRef, market_state: Any, state: Any) -> MorphoBlueModel:
    """The model of a stored Morpho position: ``market_state`` is ``encode(MorphoPricedMarket)`` of its market,
    ``state`` ``encode(MorphoPosition)``."""
    if market_state is None:
        raise ValueError(f"morpho_blue position {account} in {market}: its run stored no state for the market")
    return MorphoBlueModel(decode_shared(MorphoPricedMarket, market_state), decode(MorphoPosition, state), protocol=protocol, block=block, account=account)
