"""Distance to liquidation: the smallest uniform collateral price drop that makes a position liquidatable.

Shared by every protocol: the caller supplies the protocol's own exact verdict at scaled prices, and the
search runs over integers, so the answer is exact to ``PRICE_DROP_RESOLUTION``.
"""

from __future__ import annotations

from collections.abc import Callable

from indexer.constants import PRICE_DROP_RESOLUTION


def uniform_price_drop(liquidatable_at: Callable[[int, int], bool], *, resolution: int = PRICE_DROP_RESOLUTION) -> float | None:
    """The drop (0..1) of the collateral prices at which ``liquidatable_at`` first turns true.

    ``liquidatable_at(keep, scale)`` answers with every collateral price multiplied by ``keep / scale``
    (integer arithmetic inside the protocol's rule). 0.0 when liquidatable now; None when not even a
    drop to zero liquidates. The verdict must be monotone in the price (lower prices never heal).
    """
    scale = resolution
    if liquidatable_at(scale, scale):
        return 0.0
    if not liquidatable_at(0, scale):
        return None
    lo, hi = 0, scale  # liquidatable at keep=lo, not at keep=hi
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if liquidatable_at(mid, scale):
            lo = mid
        else:
            hi = mid
    return (scale - lo) / scale
