"""Chainlink AggregatorV3 reads, batched through Multicall3 at the pinned block."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from indexer.chain.abi import load_abi
from indexer.chain.multicall import Call, Multicaller
from indexer.pricing.quality import SequencerStatus

log = logging.getLogger(__name__)


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


def read_sequencer(multicall: Multicaller, feed: str | None, block: int) -> SequencerStatus | None:
    """The L2 sequencer uptime feed's status at ``block`` (``pricing.quality``); None when no feed is configured,
    or when it does not answer (logged: the sequencer labels are then not applied)."""
    if feed is None:
        return None
    reading = read_feeds(multicall, [feed], block).get(feed)
    if reading is None:
        log.warning("sequencer uptime feed %s did not answer latestRoundData at block %d: prices are not labelled for the sequencer", feed, block)
        return None
    return SequencerStatus(answer=reading.answer, started_at=reading.started_at)
