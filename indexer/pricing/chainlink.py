"""Chainlink AggregatorV3 reads, batched through Multicall3 at the pinned block."""

from __future__ import annotations

from dataclasses import dataclass

from indexer.chain.abi import load_abi
from indexer.chain.multicall import Call, Multicaller


@dataclass(frozen=True, slots=True)
class FeedReading:
    """``latestRoundData`` and ``decimals`` of one feed at the pinned block."""

    feed: str  # feed (proxy) address
    round_id: int  # roundId
    answer: int  # signed answer in ``decimals``
    started_at: int  # startedAt, unix seconds
    updated_at: int  # updatedAt, unix seconds
    decimals: int  # decimals of the answer


def read_feeds(multicall: Multicaller, feeds: list[str], block: int) -> dict[str, FeedReading]:
    """Readings of the feeds that answer both calls; a feed that reverts (not a feed) is left out."""
    abi = load_abi("ChainlinkAggregatorV3")
    unique = sorted(set(feeds))
    calls = [Call(f, abi.fn("latestRoundData")) for f in unique] + [Call(f, abi.fn("decimals")) for f in unique]
    results = multicall.run(calls, block)
    out: dict[str, FeedReading] = {}
    for i, feed in enumerate(unique):
        rd, dec = results[i], results[len(unique) + i]
        if rd.ok and dec.ok:
            round_id, answer, started_at, updated_at, _ = rd.value
            out[feed] = FeedReading(feed, round_id, answer, started_at, updated_at, dec.value[0])
    return out
