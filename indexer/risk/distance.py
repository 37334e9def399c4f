"""Distance to liquidation: the smallest uniform collateral price drop that makes a position liquidatable.

Shared by every protocol: the caller supplies the protocol's own exact verdict at scaled prices, and the
search runs over integers, so the answer is exact to ``PRICE_DROP_RESOLUTION``.
"""

from __future__ import annotations

from collections.abc import Callable

from indexer.constants import PRICE_DROP_RESOLUTION


def uniform_price_drop(liquidatable_at: Callable[[int, int], bool], *, resolution: int = PRICE_DROP_RESOLUTION, guess: int | None = None) -> float | None:
    """The drop (0..1) of the collateral prices at which ``liquidatable_at`` first turns true.

    ``liquidatable_at(keep, scale)`` answers with every collateral price multiplied by ``keep / scale``
    (integer arithmetic inside the protocol's rule). 0.0 when liquidatable now; None when not even a
    drop to zero liquidates. The verdict must be monotone in the price (lower prices never heal).

    ``guess``: a keep near the boundary, for a verdict known to be strictly monotone (one boundary): the search
    gallops from it to a bracket, then bisects (a handful of probes instead of ~log2(resolution)); the answer is
    the same. Without it the bisection runs from the whole range, and its own probes decide where a verdict is not
    quite monotone (a floored average, a debt priced with the collateral).
    """
    scale = resolution
    if liquidatable_at(scale, scale):
        return 0.0
    if not liquidatable_at(0, scale):
        return None
    lo, hi = 0, scale  # liquidatable at keep=lo, not at keep=hi
    if guess is not None:
        lo, hi = _bracket(liquidatable_at, scale, min(max(guess, 1), scale - 1))
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if liquidatable_at(mid, scale):
            lo = mid
        else:
            hi = mid
    return (scale - lo) / scale


def _bracket(liquidatable_at: Callable[[int, int], bool], scale: int, probe: int) -> tuple[int, int]:
    """(lo, hi) around the boundary of a monotone verdict, galloping from ``probe`` (0 < probe < scale)."""
    lo, hi, step = 0, scale, 1
    if liquidatable_at(probe, scale):
        lo = probe
        while lo + step < hi:  # gallop up until a keep that does not liquidate
            if not liquidatable_at(lo + step, scale):
                return lo, lo + step
            lo, step = lo + step, step * 2
        return lo, hi
    hi = probe
    while hi - step > lo:  # gallop down until a keep that liquidates
        if liquidatable_at(hi - step, scale):
            return hi - step, hi
        hi, step = hi - step, step * 2
    return lo, hi
