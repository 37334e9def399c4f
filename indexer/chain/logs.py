"""eth_getLogs over adaptive block ranges: shrink on a provider's range error, grow back after successes.

A range the provider refuses (``RpcRangeTooLarge``) is followed by the range its error suggests (Alchemy "this
block range should work: [0x.., 0x..]", Infura "Try with this block range [0x.., 0x..]", reth "retry with the
range A-B"), else by the most blocks it says it allows (Alchemy "up to a 2K block range", BSC "exceed maximum
block range: 5000", QuickNode "limited to a 10,000 range", Infura "range 1000000 exceeds limit of 10000"), else
by half the refused range. After each success the range doubles again, up to ``max_chunk`` and the stated
maximum. Every refused range is remembered and no later request of the scan contains one (a range containing a
refused one would be refused again), so the same failing range is never asked twice.

>>> range_hint("this block range should work: [0x10, 0x1f]")
RangeHint(suggested=(16, 31), max_blocks=None)
>>> range_hint("eth_getLogs is limited to a 10,000 range").max_blocks
10000
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from indexer.chain.rpc import RpcClient
from indexer.constants import DEFAULT_LOG_CHUNK_BLOCKS, MIN_LOG_CHUNK_BLOCKS
from indexer.errors import RpcRangeTooLarge

log = logging.getLogger(__name__)

# A long first scan (an old market from its deployment block) reports its progress this often.
PROGRESS_LOG_EVERY_REQUESTS = 50

# A number as providers write it: 5000, 10,000, 2K, 1k.
_NUM = r"(\d[\d,]*)\s*([km](?![a-z]))?"
# Suggested ranges: Alchemy, Infura and zkSync "[0xA, 0xB]"; reth "retry with the range A-B" (decimal).
_SUGGESTED_HEX = re.compile(r"\[\s*(0x[0-9a-f]+)\s*,\s*(0x[0-9a-f]+)\s*\]", re.IGNORECASE)
_SUGGESTED_DEC = re.compile(r"retry with the range (\d+)\s*-\s*(\d+)", re.IGNORECASE)
# The most blocks per request, as stated: (pattern, what says it).
_MAX_BLOCKS = tuple(
    re.compile(p, re.IGNORECASE)
    for p in (
        rf"up to an? {_NUM}[\s-]*blocks? range",  # Alchemy "up to a 2K block range"
        rf"limited to an? {_NUM}[\s-]*(?:blocks? )?range",  # QuickNode "limited to a 10,000 range"
        rf"limited to {_NUM}[\s-]*blocks",  # "eth_getLogs is limited to 1000 blocks"
        rf"max(?:imum)? block range(?: is)?:?\s*{_NUM}",  # BSC "exceed maximum block range: 5000", reth "exceeds max block range 100000"
        rf"range limit(?: of| is)?:?\s*{_NUM}",  # Tenderly "range 9009594 is bigger than range limit 2000"
        rf"range \d+ exceeds limit of {_NUM}",  # Infura "range 1000000 exceeds limit of 10000"
        rf"range (?:is )?too (?:wide|large|big)\W*(?:\w+\W+){{0,2}}?(?:max(?:imum)?|limit)(?: is)?:?\s*{_NUM}",  # frontier "block range is too wide (maximum 1024)"
        rf"ranges? (?:over|above|greater than) {_NUM}\s*blocks",  # dRPC "ranges over 10000 blocks are not supported"
    )
)
# Refusals that depend on how many logs the range holds, not on its width (Infura "more than 10000 results",
# Alchemy "Log response size exceeded"): no block maximum is learnt from them, a later range may be wider.
_RESULT_MARKERS = ("result", "response", "too big")


@dataclass(frozen=True, slots=True)
class RangeHint:
    """What a provider's eth_getLogs range error says about the ranges it accepts."""

    suggested: tuple[int, int] | None  # a range (inclusive) it says would work, None if it names none
    max_blocks: int | None  # the most blocks per request it states, None if it states none


def _number(digits: str, suffix: str | None) -> int:
    return int(digits.replace(",", "")) * {"k": 1_000, "m": 1_000_000}.get((suffix or "").lower(), 1)


def range_hint(message: str, data: object = None) -> RangeHint:
    """The suggested range and the stated block maximum in a provider's error message (and Infura's ``data``).

    >>> range_hint("query returned more than 10000 results. Try with this block range [0x1A2B3C, 0x1A2B9F].")
    RangeHint(suggested=(1715004, 1715103), max_blocks=None)
    >>> range_hint("query exceeds max results 20000, retry with the range 25766988-25775072")
    RangeHint(suggested=(25766988, 25775072), max_blocks=None)
    >>> range_hint("exceed maximum block range: 5000"), range_hint("block range is too wide")
    (RangeHint(suggested=None, max_blocks=5000), RangeHint(suggested=None, max_blocks=None))
    """
    suggested: tuple[int, int] | None = None
    if m := _SUGGESTED_HEX.search(message):
        suggested = (int(m.group(1), 16), int(m.group(2), 16))
    elif m := _SUGGESTED_DEC.search(message):
        suggested = (int(m.group(1)), int(m.group(2)))
    elif isinstance(data, dict) and isinstance(data.get("from"), str) and isinstance(data.get("to"), str):
        try:
            suggested = (int(data["from"], 16), int(data["to"], 16))
        except ValueError:
            suggested = None
    if suggested is not None and suggested[1] < suggested[0]:
        suggested = None
    text = message if not isinstance(data, str | dict) else f"{message} {data}"
    max_blocks = None
    for pattern in _MAX_BLOCKS:
        if m := pattern.search(text):
            max_blocks = _number(m.group(1), m.group(2)) or None
            break
    return RangeHint(suggested, max_blocks)


def next_range_size(start: int, end: int, hint: RangeHint) -> int:
    """Blocks to ask for from ``start`` after ``[start, end]`` was refused with ``hint``: less than before.

    >>> next_range_size(100, 199, RangeHint((100, 139), None)), next_range_size(100, 199, RangeHint(None, 30))
    (40, 30)
    >>> next_range_size(100, 199, RangeHint((100, 199), None))  # a suggestion as large as the refused range: halve
    50
    """
    refused = end - start + 1
    if hint.suggested is not None:
        a, b = hint.suggested
        width = b - start + 1 if a == start else b - a + 1
        if 1 <= width < refused:
            return width
    if hint.max_blocks is not None and hint.max_blocks < refused:
        return hint.max_blocks
    return max(MIN_LOG_CHUNK_BLOCKS, refused // 2)


def _outside_refused(start: int, end: int, refused: list[tuple[int, int]]) -> int:
    """The largest end ``<= end`` such that ``[start, end]`` contains no refused range."""
    inside = [b for a, b in refused if a >= start and b <= end]
    return min(inside) - 1 if inside else end


def scan_logs(
    rpc: RpcClient,
    addresses: list[str],
    topics: list[Any],
    from_block: int,
    to_block: int,
    *,
    chunk: int = DEFAULT_LOG_CHUNK_BLOCKS,
    max_chunk: int = DEFAULT_LOG_CHUNK_BLOCKS,
    on_progress: Callable[[int, int], None] | None = None,
) -> list[dict[str, Any]]:
    """All logs in ``[from_block, to_block]``, ordered by block and log index.

    A refused range is followed by a smaller one (see the module doc; a refused single block propagates the
    error); after a success the range doubles again up to ``max_chunk`` and the provider's stated maximum.
    ``on_progress(done_block, to_block)`` is called once with ``done_block = from_block - 1`` before the first
    range (nothing done yet: a progress display learns where the scan starts), then after each range.
    """
    logs: list[dict[str, Any]] = []
    requests = 0
    start = from_block
    size = max(MIN_LOG_CHUNK_BLOCKS, chunk)
    ceiling = max(MIN_LOG_CHUNK_BLOCKS, max_chunk)  # most blocks per request: max_chunk, lowered to the provider's stated maximum
    too_wide: int | None = None  # narrowest range refused for its width by a provider that states no maximum
    widest_ok = 0  # widest range answered
    refused: list[tuple[int, int]] = []
    if on_progress is not None and from_block <= to_block:
        on_progress(from_block - 1, to_block)
    while start <= to_block:
        end = _outside_refused(start, min(to_block, start + size - 1), refused)
        try:
            logs.extend(rpc.get_logs(addresses, topics, start, end))
        except RpcRangeTooLarge as exc:
            refused.append((start, end))
            if end == start:
                raise
            hint = range_hint(str(exc), exc.data)
            size = next_range_size(start, end, hint)
            if not any(m in str(exc).lower() for m in _RESULT_MARKERS):  # a width limit, not a result cap
                if hint.max_blocks is not None:
                    ceiling = max(MIN_LOG_CHUNK_BLOCKS, min(ceiling, hint.max_blocks))
                else:
                    too_wide = min(too_wide or end - start + 1, end - start + 1)
                    size = max(size, min(widest_ok, too_wide - 1))  # back to the widest that passed, not below
            log.info("eth_getLogs range %d-%d refused (%s); next range %d blocks", start, end, exc, size)
            continue
        if on_progress is not None:
            on_progress(end, to_block)
        requests += 1
        if requests % PROGRESS_LOG_EVERY_REQUESTS == 0:
            done = (end - from_block + 1) / (to_block - from_block + 1)
            log.info("eth_getLogs progress block=%d to_block=%d done=%.1f%% logs=%d", end, to_block, 100 * done, len(logs))
        widest_ok = max(widest_ok, end - start + 1)
        start = end + 1
        size = min(ceiling, size * 2)
        if too_wide is not None and size >= too_wide:  # an unstated width limit: bisect between what passed and what did not
            size = max(widest_ok, (widest_ok + too_wide) // 2)
        size = max(MIN_LOG_CHUNK_BLOCKS, size)
    logs.sort(key=lambda entry: (int(entry["blockNumber"], 16), int(entry["logIndex"], 16)))
    return logs
