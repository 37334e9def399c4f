"""Morpho Blue ``liquidate`` verdicts of a whole book at once: ``risk.morpho``'s rule, integer for integer, fast.

``MorphoVerdicts()(markets, positions)`` answers, for every kept ``MorphoPosition`` (keyed by an ``AccountKey`` whose
``market`` is the market id), what ``not is_healthy(accrued(market), position)`` answers (``Position.liquidatable`` of
the adapter's position): on the totals accrued to the block's timestamp (``risk.morpho.accrued``, once per market)
and the oracle price,

    borrowed   = mulDivUp(borrowShares, totalBorrowAssets + 1, totalBorrowShares + 1e6)   (toAssetsUp)
    maxBorrow  = wMulDown(mulDivDown(collateral, price, 1e36), lltv)
    liquidatable  <=>  borrowShares > 0 and maxBorrow < borrowed

Positions whose market is not in ``markets`` (not created, or its oracle or IRM reverted) are absent, as the
adapter leaves them out. Each position is compiled once into ``(borrow shares, collateral)`` and kept while the
same object is passed again (a kept state is replaced, never mutated).

>>> from indexer.risk.morpho import MorphoMarket, MorphoPosition
>>> from indexer.domain import AccountKey
>>> m = MorphoMarket("0x01", "0xL", "0xC", "0xO", "0x00", 8 * 10**17, 0, 0, 10**12, 10**18, 0, 0, 10**36, 0, 0)
>>> a, b = AccountKey("0xA", "0x01"), AccountKey("0xB", "0x01")
>>> MorphoVerdicts()({"0x01": m}, {a: MorphoPosition("0xA", 0, 800 * 10**6, 1000), b: MorphoPosition("0xB", 0, 801 * 10**6, 1000)}) == {a: False, b: True}
True
"""

from __future__ import annotations

from collections.abc import Mapping

from indexer.constants import WAD
from indexer.domain import AccountKey
from indexer.risk.morpho import ORACLE_PRICE_SCALE, VIRTUAL_ASSETS, VIRTUAL_SHARES, MorphoMarket, MorphoPosition, accrued

# Compiled positions kept beyond the current book before the cache is pruned to it.
CACHE_SLACK = 1024


class MorphoVerdicts:
    """Fast exact ``liquidate`` verdicts of many positions in many markets, each position's compiled form cached."""

    __slots__ = ("_cache",)

    def __init__(self) -> None:
        self._cache: dict[int, tuple[MorphoPosition, int, int]] = {}  # id(position) -> (position, borrow shares, collateral)

    def __call__(self, markets: Mapping[str, MorphoMarket], positions: Mapping[AccountKey, MorphoPosition]) -> dict[AccountKey, bool]:
        """``{key: liquidatable}`` for every position whose market (``key.market``) is in ``markets``."""
        compiled: dict[str, tuple[int, int, int, int]] = {}  # market id -> (borrow assets + 1, borrow shares + 1e6, price, lltv), accrued
        for market_id, market in markets.items():
            now = accrued(market)
            compiled[market_id] = (now.total_borrow_assets + VIRTUAL_ASSETS, now.total_borrow_shares + VIRTUAL_SHARES, now.price, now.lltv)
        cache = self._cache
        get = cache.get
        result = dict.fromkeys(positions, False)
        for key, position in positions.items():
            m = compiled.get(key.market)
            if m is None:
                del result[key]
                continue
            entry = get(id(position))
            if entry is None or entry[0] is not position:
                entry = cache[id(position)] = (position, position.borrow_shares, position.collateral)
            shares = entry[1]
            if not shares:
                continue
            assets, total_shares, price, lltv = m
            # borrowed (mulDivUp) > maxBorrow (two mulDivDown): unhealthy
            if entry[2] * price // ORACLE_PRICE_SCALE * lltv // WAD < (shares * assets + total_shares - 1) // total_shares:
                result[key] = True
        if len(cache) > len(positions) + CACHE_SLACK:
            self._cache = {id(p): cache[id(p)] for p in positions.values() if id(p) in cache}
        return result
