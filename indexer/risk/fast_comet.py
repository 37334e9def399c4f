"""Comet ``absorb`` verdicts of a whole book at once: the rule of ``risk.comet.verdict``, integer for integer, fast.

``CometVerdicts()(market, users)`` answers, for every kept ``CometUser``, what ``verdict(market, user).absorbable``
answers (and so ``Position.liquidatable`` of the adapter's position): the account borrows (principal < 0),
``isLiquidatable`` holds with the borrow index accrued to the block's timestamp (``accrued_indices``) and
absorb is not paused. The same truncations in the same order:

    debt      = floor(floor(-principal * borrowIndex / 1e15) * basePrice / baseScale)   (presentValueBorrow, int256 mulPrice)
    liquidity = sum over held assets of floor(floor(balance * price / scale) * liquidateCF / 1e18)
    absorbable  <=>  liquidity < debt

(Comet's ``liquidity = -debt + sum`` is negative exactly when ``sum < debt``; every term of the sum is >= 0, so the
loop stops as soon as the sum reaches the debt, as the contract's loop does.)

Speed: the market is compiled once per call (accrued index, per-offset price/scale/factor); each user once into
a tuple ``(debt principal, ((offset, balance), ...))`` kept while the same object is passed again (the warm book
passes its kept states unchanged between blocks; a state is replaced, never mutated). The result dict is made
with ``dict.fromkeys(users)`` (no key hashed again) and only the liquidatable keys are set to True.

>>> from indexer.risk.comet import CometAsset, CometMarket, CometUser
>>> weth = CometAsset(0, "0xW", "WETH", 18, "0xF", 10**18, 8 * 10**17, 85 * 10**16, 9 * 10**17, 10**30, 2000 * 10**8)
>>> m = CometMarket("0xU", "USDC", 6, 10**6, 10**8, 0, 10**15, 10**15, 0, 0, 0, 0, 0, 0, (weth,), 0)
>>> fast = CometVerdicts()
>>> fast(m, {"a": CometUser("0xA", -1700 * 10**6, 1, {0: 10**18}), "b": CometUser("0xB", -1701 * 10**6, 1, {0: 10**18})})
{'a': False, 'b': True}
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import TypeVar

from indexer.risk.comet import BASE_INDEX_SCALE, FACTOR_SCALE, CometMarket, CometUser, accrued_indices

K = TypeVar("K", bound=Hashable)

# Compiled users kept beyond the current book before the cache is pruned to it (replaced states pile up).
CACHE_SLACK = 1024

_Compiled = tuple[int, int, int, tuple[tuple[int, int], ...]]  # (principal, assets_in, debt principal >= 0, held (offset, balance > 0))


def compile_user(user: CometUser) -> _Compiled:
    """``user`` as the loop reads it: the borrowed principal and the held collateral with a non-zero balance
    (a zero balance adds 0 to the liquidity); suppliers keep no legs (their verdict is False whatever the prices)."""
    principal = user.principal
    if principal >= 0:
        return (principal, user.assets_in, 0, ())
    bits, held = user.assets_in, []
    offset = 0
    while bits:
        if bits & 1:
            balance = user.collateral.get(offset, 0)
            if balance:
                held.append((offset, balance))
        bits >>= 1
        offset += 1
    return (principal, user.assets_in, -principal, tuple(held))


class CometVerdicts:
    """Fast exact ``absorb`` verdicts of many accounts at one Comet, with each user's compiled form cached."""

    __slots__ = ("_cache",)

    def __init__(self) -> None:
        self._cache: dict[int, tuple[CometUser, _Compiled]] = {}  # id(user) -> (user, compiled); holds the user, so the id stays its own

    def __call__(self, market: CometMarket, users: Mapping[K, CometUser], *, skip_bits: int = 0, skip_borrowers: bool = False) -> dict[K, bool]:
        """``{key: absorbable}`` for every user; those the caller cannot decide are absent: users holding a
        collateral bit of ``skip_bits``, and, with ``skip_borrowers``, users with a non-zero principal (the
        adapter's rule for prices Comet's ``getPrice`` refuses)."""
        _supply_index, borrow_index = accrued_indices(market)
        base_price, base_scale = market.base_price, market.base_scale
        table = {a.offset: (a.price, a.scale, a.liquidate_collateral_factor) for a in market.assets}
        cache = self._cache
        get = cache.get
        result = dict.fromkeys(users, False)
        paused = market.absorb_paused
        for key, user in users.items():
            entry = get(id(user))
            if entry is None or entry[0] is not user:
                entry = cache[id(user)] = (user, compile_user(user))
            principal, assets_in, owed, held = entry[1]
            if (skip_bits and assets_in & skip_bits) or (skip_borrowers and principal):
                del result[key]
                continue
            if not owed or paused:
                continue
            debt = owed * borrow_index // BASE_INDEX_SCALE * base_price // base_scale
            liquidity = 0
            for offset, balance in held:
                asset = table.get(offset)
                if asset is not None:
                    price, scale, factor = asset
                    liquidity += balance * price // scale * factor // FACTOR_SCALE
                    if liquidity >= debt:
                        break
            if liquidity < debt:
                result[key] = True
        if len(cache) > len(users) + CACHE_SLACK:
            self._cache = {id(u): cache[id(u)] for u in users.values() if id(u) in cache}
        return result
