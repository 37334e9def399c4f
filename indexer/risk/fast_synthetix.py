"""Synthetix PerpsV2 ``canLiquidate`` verdicts of a whole book at once: ``risk.synthetix_perps``'s rule, fast.

``PerpsVerdicts()(markets, states)`` answers, for every kept ``(PerpsPosition, flagged)`` (keyed by an ``AccountKey``
whose ``market`` is the market proxy), what ``verdict(market, position).can_liquidate`` answers
(``Position.liquidatable`` of the adapter's position): a non-zero size, a valid price, and at the market's price ``p``

    mppf     = margin + size * (p - lastPrice) + size * (latestFunding + unrecordedFunding(p) - fundingEntry)
    premium  = (|size| / skewScale) * |size * p| * liquidationPremiumMultiplier
    margin_l = |size| * p * liquidationBufferRatio + clamp(|size| * p * liquidationFeeRatio, minKeeperFee, maxKeeperFee)
               + keeperLiquidationFee
    canLiquidate  <=>  max(0, mppf - premium) <= margin_l

every product an 18-decimal ``multiplyDecimal`` / ``divideDecimal`` truncated toward zero, in the contract's
order (the funding term is 0 for a position whose ``lastFundingIndex`` is 0; ``isFlagged`` does not enter the
rule). The market-wide parts (price, unrecorded funding, settings) are compiled once per call; each state once into
``(size, |size|, margin, last price, funding entry or None)``, kept while the same object is passed again.
A market with a negative price or fee setting, or a ``skewScale`` <= 0 (none happens on chain, where they are
unsigned), is decided by ``risk.synthetix_perps.can_liquidate_at`` itself: the reference's answer, or its error.
Positions of markets not in ``markets`` are absent.

>>> from indexer.domain import AccountKey
>>> from indexer.risk.synthetix_perps import PerpsMarket, PerpsPosition
>>> u = 10**18
>>> m = PerpsMarket("0xM", b"sETHPERP", "sETH", 1000 * u, False, 0, 0, 0, 0, 10**6 * u, 0, u // 100, 0, 0, 0, 0, 0, 0)
>>> a, b = AccountKey("0xA", "0xM"), AccountKey("0xB", "0xM")
>>> states = {a: (PerpsPosition("0xA", 1, 0, 10 * u, 1000 * u, u, 0), False), b: (PerpsPosition("0xB", 2, 0, 10 * u + 1, 1000 * u, u, 0), False)}
>>> PerpsVerdicts()({"0xM": m}, states) == {a: True, b: False}
True
"""

from __future__ import annotations

from collections.abc import Mapping
from operator import attrgetter

from indexer.domain import AccountKey
from indexer.risk.synthetix_perps import UNIT, PerpsMarket, PerpsPosition, can_liquidate_at, unrecorded_funding

# Compiled states kept beyond the current book before the cache is pruned to it.
CACHE_SLACK = 1024

_SETTINGS = attrgetter(
    "liquidation_premium_multiplier", "liquidation_buffer_ratio", "liquidation_fee_ratio", "min_keeper_fee", "max_keeper_fee", "keeper_liquidation_fee"
)
_Compiled = tuple[int, int, int, int, int | None]  # (size, |size|, margin, last price, funding entry; None: lastFundingIndex 0)


def compile_position(p: PerpsPosition) -> _Compiled:
    return (p.size, abs(p.size), p.margin, p.last_price, p.funding_entry if p.last_funding_index else None)


class PerpsVerdicts:
    """Fast exact ``canLiquidate`` verdicts of many positions in many markets, each state's compiled form cached."""

    __slots__ = ("_cache",)

    def __init__(self) -> None:
        self._cache: dict[int, tuple[object, _Compiled]] = {}  # id(state) -> (state, compiled)

    def __call__(self, markets: Mapping[str, PerpsMarket], states: Mapping[AccountKey, tuple[PerpsPosition, bool]]) -> dict[AccountKey, bool]:
        """``{key: canLiquidate}`` for every state whose market (``key.market``) is in ``markets``."""
        compiled: dict[str, tuple] = {}
        for address, m in markets.items():
            price = m.price
            if m.price_invalid:
                compiled[address] = (False,)  # canLiquidate is false at an invalid price, whatever the rule says
            elif price < 0 or m.skew_scale <= 0 or min(_SETTINGS(m)) < 0:
                compiled[address] = (None, m)  # outside the chain's domain: the reference decides
            else:
                funding = m.latest_funding_entry + unrecorded_funding(m, price)
                compiled[address] = (
                    True, price, funding, m.skew_scale, m.liquidation_premium_multiplier, m.liquidation_buffer_ratio,
                    m.liquidation_fee_ratio, m.min_keeper_fee, m.max_keeper_fee, m.keeper_liquidation_fee,
                )  # fmt: skip
        cache = self._cache
        get = cache.get
        result = dict.fromkeys(states, False)
        for key, state in states.items():
            c = compiled.get(key.market)
            if c is None:
                del result[key]
                continue
            entry = get(id(state))
            if entry is None or entry[0] is not state:
                entry = cache[id(state)] = (state, compile_position(state[0]))
            size, abs_size, margin, last_price, entry_funding = entry[1]
            if not size or c[0] is False:
                continue
            if c[0] is None:
                if can_liquidate_at(c[1], state[0], c[1].price):
                    result[key] = True
                continue
            _, price, funding, skew_scale, premium_multiplier, buffer_ratio, fee_ratio, min_fee, max_fee, keeper_fee = c
            # margin + profit_loss + accrued_funding, each multiplyDecimal truncated toward zero
            x = size * (price - last_price)
            mppf = margin + (x // UNIT if x >= 0 else -(-x // UNIT))
            if entry_funding is not None:
                x = size * (funding - entry_funding)
                mppf += x // UNIT if x >= 0 else -(-x // UNIT)
            notional = abs_size * price // UNIT  # |multiplyDecimal(size, price)|, price >= 0
            premium = abs_size * UNIT // skew_scale * notional // UNIT * premium_multiplier // UNIT
            fee = notional * fee_ratio // UNIT
            if fee > max_fee:
                fee = max_fee
            if fee < min_fee:
                fee = min_fee
            remaining = mppf - premium
            if remaining < 0:
                remaining = 0
            if remaining <= notional * buffer_ratio // UNIT + fee + keeper_fee:
                result[key] = True
        if len(cache) > len(states) + CACHE_SLACK:
            self._cache = {id(s): cache[id(s)] for s in states.values() if id(s) in cache}
        return result
