"""A stored position that can be recomputed under other oracle prices with its protocol's exact rule.

Every snapshot stores, beside each verdict, the exact inputs of the protocol's rule: the position's own raw
state (``Position.state``) and the market-wide state of its run (``Snapshot.market_state``, keyed by market).
``load_model`` turns them back into a ``PositionModel``; stress scenarios, liquidation levels, cascades and
liquidation targets all ask that model, never the chain.

Prices are addressed by asset symbol as the position's legs name it (``PositionLeg.symbol``), compared
case-insensitively. A *shock* multiplies the oracle's raw answer for that asset by a ``Fraction``; the
shocked raw answer is ``floor(answer * m)``, so a shock of 1 reproduces the stored verdict exactly.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from indexer.domain import BlockRef, PositionLeg

Shocks = Mapping[str, Fraction]  # asset symbol -> price multiplier (1 = unchanged)

# Directions in which a leg's price hurts the position.
FALLING, RISING = "falling", "rising"


@dataclass(frozen=True, slots=True)
class Evaluation:
    """A position's verdict and values at (possibly shocked) prices, as the protocol computes them."""

    health_factor: int  # WAD; constants.UINT256_MAX without debt
    liquidatable: bool  # the protocol's exact verdict at these prices
    collateral_usd: int  # collateral the protocol counts, USD x 1e18
    debt_usd: int  # debt, USD x 1e18
    nlv_usd: int  # net liquidation value at these prices (collateral + supply + PnL - debt - fees), USD x 1e18
    legs: tuple[PositionLeg, ...]  # per-asset detail at these prices (amounts as stored, values repriced)


@dataclass(frozen=True, slots=True)
class OraclePrice:
    """The raw oracle answer a model uses for one asset, in the unit its oracle speaks."""

    symbol: str  # asset symbol as the legs name it
    asset: str  # token address (or market address for a perp's index)
    answer: int  # raw oracle answer at the snapshot's block
    decimals: int  # decimals of ``answer`` as a USD price (for display); see ``unit``
    unit: str  # what ``answer`` means, e.g. "USD x 1e8 per token" or "loan units x 1e36 per collateral unit"
    direction: str  # FALLING or RISING: the move that brings the position towards liquidation


def symbol_key(symbol: str) -> str:
    """Case-insensitive key of an asset symbol."""
    return symbol.strip().upper()


def shock_of(shocks: Shocks, symbol: str) -> Fraction:
    """The multiplier ``shocks`` gives ``symbol`` (1 when absent)."""
    key = symbol_key(symbol)
    for name, m in shocks.items():
        if symbol_key(name) == key:
            return Fraction(m)
    return Fraction(1)


def shocked(answer: int, m: Fraction) -> int:
    """``floor(answer * m)``: the raw oracle answer under a shock."""
    if m < 0:
        raise ValueError(f"a price multiplier must be >= 0, got {m}")
    return answer * m.numerator // m.denominator


class PositionModel(ABC):
    """One stored position, recomputable at other prices. Subclasses hold the protocol's state objects
    (``.market``/``.user`` for Aave and Comet, ``.market``/``.position`` for Morpho and Synthetix,
    ``.position`` for GMX); the market id is ``market_id``."""

    kind: str = ""  # adapter kind, e.g. "aave_v3"

    def __init__(self, *, protocol: str, account: str, market: str, block: BlockRef) -> None:
        self.protocol = protocol  # protocol instance name
        self.account = account  # account address, checksummed
        self.market_id = market  # market id within the instance ("" for single-market instances)
        self.block = block  # the snapshot's block

    @abstractmethod
    def oracle_prices(self) -> dict[str, OraclePrice]:
        """The raw oracle answers this position's verdict depends on, by symbol key (``symbol_key``)."""

    @abstractmethod
    def evaluate_at(self, answers: Mapping[str, int]) -> Evaluation:
        """The exact verdict with the raw oracle answers of ``answers`` (by symbol; others as stored)."""

    def shocked_answers(self, shocks: Shocks | None) -> dict[str, int]:
        """The raw answers ``shocks`` moves (by symbol key), each ``shocked`` from the stored one."""
        answers = {}
        for key, op in self.oracle_prices().items():
            m = shock_of(shocks or {}, op.symbol)
            if m != 1:
                answers[key] = shocked(op.answer, m)
        return answers

    def evaluate(self, shocks: Shocks | None = None) -> Evaluation:
        """The exact verdict with every price in ``shocks`` multiplied (``shocked``); ``None``: as stored."""
        return self.evaluate_at(self.shocked_answers(shocks))

    def at(self, shocks: Shocks) -> PositionModel:
        """This position with the shocked prices as its own: its protocol objects repriced exactly as
        ``evaluate(shocks)`` reprices them (``model.at(s).evaluate() == model.evaluate(s)``), for code that reads
        the protocol objects themselves (liquidation targets after a move)."""
        raise NotImplementedError(f"{self.kind} models are not repriced as a whole")

    def liquidation_answer(self, symbol: str) -> int | None:
        """The raw oracle answer of ``symbol`` (others as stored) at which the position first becomes
        liquidatable, moving in the asset's ``direction``: liquidatable there, not one unit back towards
        safety. ``None`` when no answer in range liquidates it. Liquidatable already: the current answer.

        Exact by bisection over the integer answer; assumes the verdict is monotone along the direction.
        """
        key = symbol_key(symbol)
        op = self.oracle_prices().get(key)
        if op is None:
            raise KeyError(f"{self.kind} position {self.account} has no price for {symbol!r}")
        return boundary(lambda a: self.evaluate_at({key: a}).liquidatable, op.answer, op.direction)


# Largest answer the search for a rising price tries: 2**128 covers every real oracle scale.
MAX_ANSWER = 2**128


def first_true(holds: Callable[[int], bool], lo: int, hi: int) -> int:
    """The smallest integer in ``(lo, hi]`` where the monotone ``holds`` is true, given it is false at ``lo``
    and true at ``hi`` (bisection, about log2(hi - lo) calls)."""
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if holds(mid):
            hi = mid
        else:
            lo = mid
    return hi


def boundary(liquidatable_at: Callable[[int], bool], start: int, direction: str) -> int | None:
    """The first integer answer from ``start`` along ``direction`` where ``liquidatable_at`` is true."""
    if liquidatable_at(start):
        return start
    if direction == FALLING:
        if not liquidatable_at(0):
            return None
        # liquidatable at 0, not at start: the last liquidatable answer is one below the first safe one
        return first_true(lambda a: not liquidatable_at(a), 0, start) - 1
    far = max(2 * start, 1)
    while not liquidatable_at(far):
        if far >= MAX_ANSWER:
            return None
        far = min(far * 4, MAX_ANSWER)
    return first_true(liquidatable_at, start, far)


ModelLoader = Callable[..., PositionModel]
_LOADERS: dict[str, ModelLoader] = {}


def register(kind: str) -> Callable[[ModelLoader], ModelLoader]:
    """Register the loader of a kind's models: ``loader(protocol=, account=, market=, block=,
    market_state=, state=) -> PositionModel``."""

    def deco(fn: ModelLoader) -> ModelLoader:
        _LOADERS[kind] = fn
        return fn

    return deco


def load_model(kind: str, *, protocol: str, account: str, market: str, block: BlockRef, market_state: Any, state: Any) -> PositionModel:
    """The model of one stored position; ``market_state`` is its run's state for the position's market."""
    from indexer.risk import reprice  # noqa: F401  (registers every kind)

    try:
        loader = _LOADERS[kind]
    except KeyError:
        raise KeyError(f"no position model for kind {kind!r} (known: {', '.join(sorted(_LOADERS))})") from None
    return loader(protocol=protocol, account=account, market=market, block=block, market_state=market_state, state=state)
