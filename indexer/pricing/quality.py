"""Oracle answer quality labels: what is wrong with a price the protocol still decided with.

Pure functions over domain objects (no I/O): the pipeline reads the chain's sequencer uptime feed
(``pricing.chainlink.read_sequencer``) and hands it in with the chain's settings.

A label says what a price check found; it never changes the price nor the verdict, because the protocols
do not check (Aave and Comet use a stale answer as it is). Checks, in the fixed order of a joined label:

- ``stale``: the feed's ``updatedAt`` is more than the heartbeat older than the snapshot's block timestamp.
  The heartbeat is ``price_checks[symbol or address].heartbeat_seconds``, else the chain's
  ``default_heartbeat_seconds`` (unset: no staleness check). An answer exactly one heartbeat old is "ok":
  a feed is due to update at that moment, not late yet. Readings without ``updatedAt`` are not checked.
- ``non_positive``: the price, or the feed's own answer, is <= 0 (Aave then asks its fallback oracle: the
  price may be positive while the feed's answer is not; the label says the primary source is broken).
- ``out_of_bounds``: price / 10**price_decimals is outside [min_price, max_price] (inclusive, exact).
- ``sequencer_down``: the chain's sequencer uptime feed answers non-zero (1 = down) at the block.
- ``sequencer_grace``: it is up, but ``block.timestamp - startedAt <= sequencer_grace_period_seconds``
  (as Aave's PriceOracleSentinel: liquidations wait until the difference exceeds the grace period).

A position's label is the union of the labels of the prices its verdict and values used: for each leg
the reading of its asset in the position's market if there is one, else the instance-wide reading; the
readings of the position's market (a market's own oracle price); and the reading whose asset is the
position's market (a perps market priced as a whole).

>>> from indexer.domain import PriceReading
>>> r = PriceReading("0x" + "11" * 20, "WETH", 0, 8, "", 0, 1_000)
>>> reading_labels(r, PriceCheck(heartbeat_seconds=3600), block_timestamp=1_000 + 3601)
'stale,non_positive'
>>> join_labels(["sequencer_down", "stale", "ok", "stale"])
'stale,sequencer_down'
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from fractions import Fraction

from indexer.config import ChainConfig
from indexer.domain import BlockRef, Position, PriceReading

log = logging.getLogger(__name__)

OK = "ok"
STALE = "stale"
NON_POSITIVE = "non_positive"
OUT_OF_BOUNDS = "out_of_bounds"
SEQUENCER_DOWN = "sequencer_down"
SEQUENCER_GRACE = "sequencer_grace"
# Every label but "ok", in the fixed order of a joined label.
LABELS = (STALE, NON_POSITIVE, OUT_OF_BOUNDS, SEQUENCER_DOWN, SEQUENCER_GRACE)
SEPARATOR = ","
# A reading whose symbol contains this is a ratio (one token in units of another, e.g. "WBTC/USDC"): its
# checks are found by that symbol only, never by the token's address (whose bounds are in USD).
RATIO_SEPARATOR = "/"


@dataclass(frozen=True, slots=True)
class PriceCheck:
    """The checks that apply to one reading (resolved from the chain's settings)."""

    heartbeat_seconds: int | None = None  # older answers are "stale"; None: not checked
    min_price: Fraction | None = None  # lowest plausible price / 10**price_decimals, inclusive
    max_price: Fraction | None = None  # highest plausible, inclusive


@dataclass(frozen=True, slots=True)
class SequencerStatus:
    """The L2 sequencer uptime feed's ``latestRoundData`` at the pinned block."""

    answer: int  # 0: up, 1: down
    started_at: int  # when the status last changed, unix seconds (0: invalid round)


def split_labels(label: str) -> set[str]:
    """The labels of a joined label, without "ok"."""
    return {part for part in label.split(SEPARATOR) if part and part != OK}


def join_labels(labels: Iterable[str]) -> str:
    """The union of ``labels`` (joined ones too) in the fixed order, or "ok" when there is none."""
    found: set[str] = set()
    for label in labels:
        found |= split_labels(label)
    unknown = found - set(LABELS)
    if unknown:
        raise ValueError(f"unknown price quality label(s): {', '.join(sorted(unknown))}")
    return SEPARATOR.join(label for label in LABELS if label in found) or OK


def _fraction(text: str | None) -> Fraction | None:
    return None if text is None else Fraction(Decimal(text))


def check_for(reading: PriceReading, chain: ChainConfig) -> PriceCheck:
    """The checks of ``reading`` on ``chain``: its ``price_checks`` entry (by address, then by symbol; a ratio
    reading by its symbol only) with the chain's ``default_heartbeat_seconds`` where the entry has none."""
    entry = None
    if RATIO_SEPARATOR not in reading.symbol:
        by_address = {key.lower(): cfg for key, cfg in chain.price_checks.items() if key.lower().startswith("0x")}
        entry = by_address.get(reading.asset.lower())
    if entry is None:
        entry = chain.price_checks.get(reading.symbol)
    if entry is None:
        return PriceCheck(heartbeat_seconds=chain.default_heartbeat_seconds)
    heartbeat = entry.heartbeat_seconds if entry.heartbeat_seconds is not None else chain.default_heartbeat_seconds
    return PriceCheck(heartbeat, _fraction(entry.min_price), _fraction(entry.max_price))


def reading_labels(
    reading: PriceReading,
    check: PriceCheck,
    *,
    block_timestamp: int,
    sequencer: SequencerStatus | None = None,
    grace_period_seconds: int = 0,
) -> str:
    """The quality label of one reading at a block with timestamp ``block_timestamp``."""
    found = []
    if check.heartbeat_seconds is not None and reading.feed_updated_at is not None:
        if block_timestamp - reading.feed_updated_at > check.heartbeat_seconds:
            found.append(STALE)
    if reading.price <= 0 or (reading.feed_answer is not None and reading.feed_answer <= 0):
        found.append(NON_POSITIVE)
    if check.min_price is not None or check.max_price is not None:
        value = Fraction(reading.price, 10**reading.price_decimals)
        if (check.min_price is not None and value < check.min_price) or (check.max_price is not None and value > check.max_price):
            found.append(OUT_OF_BOUNDS)
    if sequencer is not None:
        if sequencer.answer != 0:
            found.append(SEQUENCER_DOWN)
        elif block_timestamp - sequencer.started_at <= grace_period_seconds:
            found.append(SEQUENCER_GRACE)
    return join_labels(found)


def label_prices(
    prices: Iterable[PriceReading], chain: ChainConfig, block_timestamp: int, sequencer: SequencerStatus | None = None
) -> list[PriceReading]:
    """``prices`` with their ``quality`` set by the chain's checks at the block."""
    return [
        replace(
            r,
            quality=reading_labels(
                r, check_for(r, chain), block_timestamp=block_timestamp, sequencer=sequencer, grace_period_seconds=chain.sequencer_grace_period_seconds
            ),
        )
        for r in prices
    ]


def readings_used(position: Position, prices: Sequence[PriceReading]) -> list[PriceReading]:
    """The readings ``position``'s verdict and values used (see the module docstring)."""
    market = position.market.lower()
    by_key = {(r.asset.lower(), r.market.lower()): r for r in prices}
    used: dict[tuple[str, str], PriceReading] = {}
    for r in prices:
        if market and (r.market.lower() == market or (r.asset.lower() == market and not r.market)):
            used[(r.asset.lower(), r.market.lower())] = r
    for leg in position.legs:
        asset = leg.asset.lower()
        for key in ((asset, market), (asset, "")):
            if key in by_key:
                used[key] = by_key[key]
                break
    return list(used.values())


def position_quality(position: Position, prices: Sequence[PriceReading]) -> str:
    """The union of the labels of the readings ``position`` used ("ok" when all are clean, or none)."""
    return join_labels(r.quality for r in readings_used(position, prices))


def label_snapshot(
    positions: Iterable[Position],
    prices: Iterable[PriceReading],
    chain: ChainConfig,
    block: BlockRef,
    sequencer: SequencerStatus | None = None,
    *,
    name: str = "",
) -> tuple[list[Position], list[PriceReading]]:
    """Label one run's prices at ``block`` and its positions from them; log every reading that is not "ok"
    (``name``: the protocol instance, for the log line)."""
    labelled = label_prices(prices, chain, block.timestamp, sequencer)
    out = [replace(p, price_quality=position_quality(p, labelled)) for p in positions]
    for r in labelled:
        if r.quality != OK:
            log.warning(
                "price quality protocol=%s block=%d asset=%s symbol=%s market=%s quality=%s price=%d feed_answer=%s feed_updated_at=%s block_timestamp=%d",
                name, block.number, r.asset, r.symbol, r.market or "-", r.quality, r.price, r.feed_answer, r.feed_updated_at, block.timestamp,
            )  # fmt: skip
    flagged = sum(1 for p in out if p.price_quality != OK)
    if flagged:
        log.warning("price quality protocol=%s block=%d positions_flagged=%d of=%d", name, block.number, flagged, len(out))
    return out, labelled
