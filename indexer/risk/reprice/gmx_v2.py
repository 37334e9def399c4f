"""GMX v2 positions recomputed at other prices with ``risk.gmx``'s rule (``isPositionLiquidatable``).

Two prices move: the index token's and, when it is another token, the collateral token's. Each answer is
the feed's price per smallest unit x 1e30 (the mid the adapter priced from); a shock scales the position's
(min, max) pair with it, keeping the spread in proportion. The PnL follows the index price; the collateral
is valued at the collateral's min price and the position and borrowing fee amounts are re-derived from
their USD values at it, as GMX derives them (``risk.gmx.remaining_at_prices``).

Caveat: the fee USD values are held as the Reader gave them at the snapshot's prices. On chain the pending
borrowing fee depends on the pool's value (so on the long and short tokens' prices) and the pending funding
amount on the prices too, so away from the snapshot's prices a verdict very close to the boundary can differ
from the Reader's by those pending amounts; at a block where nothing is pending the model is exact. The
liquidation index price the adapter settled with the Reader itself is kept in the state and is what
``liquidation_answer`` returns for the index when it is exact.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from indexer.constants import USD_SCALE
from indexer.domain import BlockRef, PositionLeg
from indexer.risk.gmx import FLOAT_PRECISION, GmxPosition, cost_amount_at, health_factor, is_liquidatable_remaining, remaining_at_prices
from indexer.risk.reprice.base import FALLING, RISING, Evaluation, OraclePrice, PositionModel, register, symbol_key
from indexer.risk.state import decode, encode

TO_USD = FLOAT_PRECISION // USD_SCALE  # GMX USD is 1e30, the domain's 1e18


@dataclass(frozen=True, slots=True)
class GmxOracle:
    """What a GMX position's state carries beside its ``GmxPosition`` (stored in the same JSON object): the
    prices a shock moves, by the symbols shocks name, and the adapter's liquidation index price."""

    index_symbol: str  # the index token's symbol (the shock's key)
    index_decimals: int
    index_answer: int  # the index token's feed price per unit x 1e30 (mid, before the spread)
    collateral_symbol: str
    collateral_decimals: int
    collateral_answer: int  # the collateral token's feed price per unit x 1e30 (mid)
    liquidation_index_price: int | None  # index price (min = max) where the verdict flips, None: none
    liquidation_index_price_exact: bool  # settled with the Reader's own verdicts (else the model's estimate)


def encode_state(p: GmxPosition, oracle: GmxOracle) -> dict[str, Any]:
    """``Position.state`` of a GMX position: the fields of both, in one object."""
    return {**encode(p), **encode(oracle)}


def decode_state(state: Mapping[str, Any]) -> tuple[GmxPosition, GmxOracle]:
    return decode(GmxPosition, dict(state)), decode(GmxOracle, dict(state))


def pair_at(pair: tuple[int, int], answer: int, new: int) -> tuple[int, int]:
    """The (min, max) pair read at ``answer`` moved to ``new``, the spread kept in proportion."""
    if new == answer:
        return pair
    if answer <= 0:
        return (new, new)
    return (pair[0] * new // answer, -(-pair[1] * new // answer))


@dataclass(frozen=True, slots=True)
class GmxEvaluation:
    """The rule's values at some prices (1e30 USD), and the ``Evaluation`` a ``Position`` reports."""

    remaining_usd: int  # remaining collateral (the NLV), 1e30
    reason: str  # the rule's reason when liquidatable, "" otherwise
    evaluation: Evaluation


def evaluate_position(p: GmxPosition, oracle: GmxOracle, index_price: tuple[int, int], collateral_price: tuple[int, int]) -> GmxEvaluation:
    """The verdict and values at the given (min, max) prices per unit x 1e30. The adapter builds its
    positions with this at the prices it read, so a model at unshocked prices reproduces them exactly."""
    remaining = remaining_at_prices(p, index_price, collateral_price)
    liquidatable, reason = is_liquidatable_remaining(p, remaining)
    cmin = collateral_price[0]
    collateral_usd = p.collateral_amount * cmin // TO_USD
    notional = p.size_in_tokens * (index_price[0] if p.is_long else index_price[1]) // TO_USD
    ev = Evaluation(
        health_factor=health_factor(p, remaining),
        liquidatable=liquidatable,
        collateral_usd=collateral_usd,
        debt_usd=cost_amount_at(p, cmin) * cmin // TO_USD,
        nlv_usd=remaining // TO_USD if remaining >= 0 else -(-remaining // TO_USD),
        legs=(
            PositionLeg(p.collateral_token, oracle.collateral_symbol, "collateral", p.collateral_amount, oracle.collateral_decimals, collateral_usd, 0),
            PositionLeg(p.index_token, oracle.index_symbol, "long" if p.is_long else "short", p.size_in_tokens, oracle.index_decimals, notional, 0),
        ),
    )
    return GmxEvaluation(remaining, reason, ev)


class GmxV2Model(PositionModel):
    """A GMX v2 position (``.position``, the Reader's pending-fee view of it at the snapshot's block) and
    ``.oracle``: its tokens' symbols, decimals and feed answers, and the Reader-settled liquidation price."""

    kind = "gmx_v2"

    def __init__(self, *, position: GmxPosition, oracle: GmxOracle, protocol: str, account: str, market: str, block: BlockRef) -> None:
        super().__init__(protocol=protocol, account=account, market=market, block=block)
        self.position = position
        self.oracle = oracle

    def _keys(self) -> tuple[str, str | None]:
        index = symbol_key(self.oracle.index_symbol)
        collateral = None if self.position.collateral_is_index else symbol_key(self.oracle.collateral_symbol)
        return index, collateral

    def oracle_prices(self) -> dict[str, OraclePrice]:
        p, oracle = self.position, self.oracle
        index_key, collateral_key = self._keys()
        unit = "USD x 1e30 per smallest unit (GMX price)"
        out = {
            index_key: OraclePrice(
                symbol=oracle.index_symbol,
                asset=p.index_token,
                answer=oracle.index_answer,
                decimals=30 - oracle.index_decimals,
                unit=unit,
                direction=FALLING if p.is_long else RISING,
            )
        }
        if collateral_key is not None and collateral_key != index_key:
            out[collateral_key] = OraclePrice(
                symbol=oracle.collateral_symbol,
                asset=p.collateral_token,
                answer=oracle.collateral_answer,
                decimals=30 - oracle.collateral_decimals,
                unit=unit,
                direction=FALLING,
            )
        return out

    def prices_at(self, answers: Mapping[str, int]) -> tuple[tuple[int, int], tuple[int, int]]:
        """The (index, collateral) (min, max) pairs with the raw answers of ``answers`` (others as stored)."""
        p, oracle = self.position, self.oracle
        index_key, collateral_key = self._keys()
        index_price = pair_at(p.index_price, oracle.index_answer, answers.get(index_key, oracle.index_answer))
        if p.collateral_is_index:
            collateral_price = index_price if index_price != p.index_price else p.collateral_price
        else:
            new = answers.get(collateral_key, oracle.collateral_answer) if collateral_key is not None else oracle.collateral_answer
            collateral_price = pair_at(p.collateral_price, oracle.collateral_answer, new)
        return index_price, collateral_price

    def evaluate_at(self, answers: Mapping[str, int]) -> Evaluation:
        return evaluate_position(self.position, self.oracle, *self.prices_at(answers)).evaluation

    def liquidation_answer(self, symbol: str) -> int | None:
        """For the index token: the price the adapter settled with the Reader's own verdicts when it is
        exact (and the position was read without a spread, so that the answer means min = max); otherwise
        the model's boundary (see the module's caveat)."""
        p, oracle = self.position, self.oracle
        liq = oracle.liquidation_index_price
        if (
            symbol_key(symbol) == self._keys()[0]
            and oracle.liquidation_index_price_exact
            and liq is not None
            and p.index_price == (oracle.index_answer, oracle.index_answer)
            and not self.evaluate_at({}).liquidatable
            and (liq < oracle.index_answer if p.is_long else liq > oracle.index_answer)
        ):
            return liq
        return super().liquidation_answer(symbol)


@register("gmx_v2")
def load(*, protocol: str, account: str, market: str, block: BlockRef, market_state: Any, state: Any) -> GmxV2Model:
    """``state``: ``encode_state`` of the position; GMX keeps no market-wide state (``market_state`` unused)."""
    position, oracle = decode_state(state)
    return GmxV2Model(protocol=protocol, account=account, market=market, block=block, position=position, oracle=oracle)
