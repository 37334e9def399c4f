"""Helpers the kinds' models share: market state decoded once per run, and the direction of an exposure.

Every position of one stored run (and market) is loaded with the *same* JSON object as its market state, so a
loader decodes it once with ``decode_shared`` instead of once per position (10k positions, one market).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any, TypeVar

from indexer.risk.reprice.base import FALLING, RISING
from indexer.risk.state import decode

T = TypeVar("T")

# Decoded market states kept (LRU): one per (run, market) being loaded at once is plenty.
SHARED_DECODE_CACHE_SIZE = 256

_lock = threading.Lock()
_cache: OrderedDict[tuple[Any, int], tuple[Any, Any]] = OrderedDict()


def decode_shared(cls: type[T], data: Any) -> T:
    """``decode(cls, data)``, computed once per ``data`` object (by identity; the cache holds ``data`` itself,
    so its id cannot be reused while cached). Decoded objects are frozen dataclasses: sharing them is safe."""
    key = (cls, id(data))
    with _lock:
        hit = _cache.get(key)
        if hit is not None and hit[0] is data:
            _cache.move_to_end(key)
            return hit[1]  # type: ignore[no-any-return]
    value = decode(cls, data)
    with _lock:
        _cache[key] = (data, value)
        _cache.move_to_end(key)
        while len(_cache) > SHARED_DECODE_CACHE_SIZE:
            _cache.popitem(last=False)
    return value  # type: ignore[no-any-return]


def direction_of(long_value: int | None, short_value: int | None) -> str:
    """The move of an asset's price that brings a position towards liquidation: FALLING for an asset it holds
    (collateral, supply; value ``long_value``), RISING for one it owes (``short_value``); on both sides, the
    direction of the larger value. ``None``: no leg on that side."""
    if short_value is None:
        return FALLING
    if long_value is None:
        return RISING
    return FALLING if long_value >= short_value else RISING
