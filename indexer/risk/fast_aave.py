"""Aave V3 liquidation verdicts of a whole book at once: the rule of ``risk.aave_v3``, integer for integer, fast.

``AaveVerdicts()(market, users)`` answers, for every kept ``AaveUser``, what
``liquidation_verdict(market, user, account_data(market, user)).liquidatable`` answers (and so
``Position.liquidatable`` of the adapter's position) for the market's pool revision:

* revision <= 8: half-up ``rayMul`` balances, ``HF = wadDiv(percentMul(C, floor(W / C)), D)``;
* revision 9: collateral floored, debt ceiled, ``HF = wadDiv(W, D) // 10000``;
* revision >= 10: as 9 (LT-0 collateral counts in C, but adds nothing to W, so the loop skips it);

where ``C`` is the counted collateral value, ``W`` the sum of value x LT (the eMode LT where the user's category
covers the reserve, gated by the reserve's own LT through revision 9) and ``D`` the debt value, each leg's value
``floor(balance * price / 10^decimals)`` (debt ceiled from revision 9). Then liquidatable iff HF < 1e18, the
sentinel (if any, and refusing) does not block it (HF < 0.95e18 passes), and some collateral leg and some debt
leg with a non-zero balance sit in reserves that are active, unpaused and past their grace period (the
collateral, through revision 9, with a non-zero reserve LT).

Speed: the market is compiled once per call (per reserve id: indexes, price, unit, flags; per eMode category the
LT of every reserve id); each user once into ``(configuration, eMode, collateral legs, debt legs)`` kept while
the same object is passed again (the warm book passes its kept states unchanged between blocks; a state is
replaced, never mutated). Users without debt are decided without arithmetic, the others with a few integer
multiplications per leg; the leg-by-leg checks of the verdict run only for the few with HF < 1.

>>> from indexer.constants import RAY
>>> from indexer.risk.aave_v3 import AaveMarket, AaveReserve, AaveUser, make_configuration
>>> cfg = make_configuration(ltv=8000, liquidation_threshold=8500, liquidation_bonus=10500, decimals=18)
>>> m = AaveMarket(9, (AaveReserve(0, "0xA", "A", cfg, RAY, RAY, 2 * 10**8, 0),), {}, 10**8, 1, None)
>>> users = {"at 1": AaveUser("0xU", 0b11, 0, {0: 10**18}, {0: 85 * 10**16}),
...          "below": AaveUser("0xV", 0b11, 0, {0: 10**18}, {0: 85 * 10**16 + 1})}
>>> AaveVerdicts()(m, users)
{'at 1': False, 'below': True}
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import TypeVar

from indexer.constants import AAVE_MIN_HF_LIQUIDATION_THRESHOLD, PERCENTAGE_FACTOR, RAY, WAD
from indexer.risk.aave_v3 import REVISION_V3_5, REVISION_V3_6, AaveMarket, AaveUser, account_data, liquidation_verdict

K = TypeVar("K", bound=Hashable)

HALF_RAY = RAY // 2
HALF_PERCENT = PERCENTAGE_FACTOR // 2
# Reserve ids a user bitmap can name (Aave's MAX_RESERVES_COUNT: 256 bits, two per reserve). The compiled market's
# table has at least this many slots, so that the loop indexes it without a bounds check; a configuration wider
# than 256 bits (no pool has one) is decided by the reference functions.
MAX_RESERVES = 128
# Compiled users kept beyond the current book before the cache is pruned to it (replaced states pile up).
CACHE_SLACK = 1024

# A compiled user: (configuration, eMode category, collateral legs, debt legs, highest reserve id named), each leg
# (reserve id, scaled balance > 0).
_Legs = tuple[tuple[int, int], ...]
_Compiled = tuple[int, int, _Legs, _Legs, int]
# A compiled reserve: (normalized income, normalized debt, price, 10^decimals, counted, liquidatable as collateral,
# usable as debt).
_Reserve = tuple[int, int, int, int, bool, bool, bool]


def compile_user(user: AaveUser) -> _Compiled:
    """``user`` as the loop reads it: the reserve ids with the collateral (borrowing) bit set and a non-zero scaled
    balance. A zero scaled balance adds 0 to every sum and is never a liquidatable leg, so it is left out."""
    coll: list[tuple[int, int]] = []
    debt: list[tuple[int, int]] = []
    bits, rid, top = user.configuration, 0, -1
    while bits:
        if bits & 0b11:
            top = rid
            if bits & 0b10:
                scaled = user.scaled_collateral.get(rid, 0)
                if scaled:
                    coll.append((rid, scaled))
            if bits & 0b01:
                scaled = user.scaled_debt.get(rid, 0)
                if scaled:
                    debt.append((rid, scaled))
        bits >>= 2
        rid += 1
    return (user.configuration, user.emode_category, tuple(coll), tuple(debt), top)


def compile_market(market: AaveMarket) -> tuple[list[_Reserve | None], list[int], dict[int, list[int]], list[bool]]:
    """(reserves by id, LT applied by id without eMode, the same per eMode category, counted by id), each list
    padded with None / 0 / False to ``MAX_RESERVES`` slots. An LT is 0 where the collateral is not counted."""
    lt_gate = market.revision < REVISION_V3_6
    now = market.block_timestamp
    size = max(len(market.reserves), MAX_RESERVES)
    table: list[_Reserve | None] = [None] * size
    base_lt = [0] * size
    counted = [False] * size
    for rid, r in enumerate(market.reserves):
        if r is None:
            continue
        usable = r.active and not r.paused and r.grace_period_until < now
        is_counted = not (lt_gate and r.liquidation_threshold == 0)
        table[rid] = (r.normalized_income, r.normalized_debt, r.price, 10**r.decimals, is_counted, usable and is_counted, usable)
        counted[rid] = is_counted
        base_lt[rid] = r.liquidation_threshold if is_counted else 0
    by_category: dict[int, list[int]] = {}
    for cid, cat in market.emode_categories.items():
        if cid == 0:  # category 0 is "no eMode" whatever the dict says (``_emode_for``)
            continue
        lts = list(base_lt)
        for rid, r in enumerate(market.reserves):
            if r is not None and counted[rid] and cat.covers(r):
                lts[rid] = cat.liquidation_threshold
        by_category[cid] = lts
    return table, base_lt, by_category, counted


class AaveVerdicts:
    """Fast exact liquidation verdicts of many accounts at one Aave pool, with each user's compiled form cached."""

    __slots__ = ("_cache",)

    def __init__(self) -> None:
        self._cache: dict[int, tuple[AaveUser, _Compiled]] = {}  # id(user) -> (user, compiled); holds the user, so the id stays its own

    def __call__(self, market: AaveMarket, users: Mapping[K, AaveUser], *, skip_bits: int = 0) -> dict[K, bool]:
        """``{key: liquidatable}`` for every user at ``market`` (with the eMode categories of the users in its
        ``emode_categories``, as ``AaveV3Adapter.with_emode`` fills them); users whose configuration has a bit of
        ``skip_bits`` are absent (the adapter leaves out the users of reserves it cannot price)."""
        table, base_lt, by_category, counted = compile_market(market)
        size = len(table)
        legacy = market.revision < REVISION_V3_5
        sentinel_blocks = market.sentinel_allows_liquidation is False
        cache = self._cache
        get = cache.get
        result = dict.fromkeys(users, False)
        for key, user in users.items():
            entry = get(id(user))
            if entry is None or entry[0] is not user:
                entry = cache[id(user)] = (user, compile_user(user))
            configuration, category, coll, debt, top = entry[1]
            if skip_bits and configuration & skip_bits:
                del result[key]
                continue
            if not debt:
                continue  # HF = UINT256_MAX
            if top >= size:
                result[key] = liquidation_verdict(market, user, account_data(market, user)).liquidatable
                continue
            lts = by_category.get(category, base_lt) if category else base_lt
            total_debt = 0
            if legacy:
                for rid, scaled in debt:
                    r = table[rid]
                    if r is not None:
                        total_debt += (scaled * r[1] + HALF_RAY) // RAY * r[2] // r[3]
                if not total_debt:
                    continue
                total_coll = weighted = 0
                for rid, scaled in coll:
                    if counted[rid]:
                        r = table[rid]
                        value = (scaled * r[0] + HALF_RAY) // RAY * r[2] // r[3]  # type: ignore[index]
                        total_coll += value
                        weighted += value * lts[rid]
                avg_lt = weighted // total_coll if total_coll else 0
                hf = ((total_coll * avg_lt + HALF_PERCENT) // PERCENTAGE_FACTOR * WAD + total_debt // 2) // total_debt
            else:
                for rid, scaled in debt:
                    r = table[rid]
                    if r is not None:
                        total_debt -= (-scaled * r[1] // RAY) * r[2] // r[3]  # ceil(ceil(scaled * index / RAY) * price / unit)
                if not total_debt:
                    continue
                weighted = 0
                for rid, scaled in coll:
                    lt = lts[rid]
                    if lt:
                        r = table[rid]
                        weighted += scaled * r[0] // RAY * r[2] // r[3] * lt  # type: ignore[index]
                hf = (weighted * WAD + total_debt // 2) // total_debt // PERCENTAGE_FACTOR
            if hf < WAD and not (sentinel_blocks and hf >= AAVE_MIN_HF_LIQUIDATION_THRESHOLD) and _legs_allow(table, coll, debt, legacy):
                result[key] = True
        if len(cache) > len(users) + CACHE_SLACK:
            self._cache = {id(u): cache[id(u)] for u in users.values() if id(u) in cache}
        return result


def _legs_allow(table: list[_Reserve | None], coll: _Legs, debt: _Legs, legacy: bool) -> bool:
    """Whether some collateral leg and some debt leg may be liquidated (``liquidation_verdict``'s reserve rules):
    a usable reserve (collateral: also with a non-zero reserve LT through v3.5) and a non-zero token balance."""
    for rid, scaled in coll:
        r = table[rid]
        if r is not None and r[5] and ((scaled * r[0] + HALF_RAY) // RAY if legacy else scaled * r[0] // RAY):
            break
    else:
        return False
    for rid, scaled in debt:
        r = table[rid]
        if r is not None and r[6] and ((scaled * r[1] + HALF_RAY) // RAY if legacy else -(-scaled * r[1] // RAY)):
            return True
    return False
