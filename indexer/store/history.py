"""Oracle price history from the stored snapshots (for realized volatilities and correlations).

Every run stores the prices its verdicts used (``price_snapshots``): USD prices per token symbol, with
``price_decimals`` saying where the point is (USD x 1e8 for Aave and Comet feeds, USD x 1e18 for a perps
market's price, USD per smallest unit x 1e30 for GMX, which is USD per token x 10^(30 - token decimals)).
Some protocols store prices that are not USD prices: a Morpho Blue market's oracle gives loan units per
collateral unit, stored under the symbol ``COLLATERAL/LOAN``; a symbol with a ``/`` is a ratio and is left out.
"""

from __future__ import annotations

from collections import defaultdict

from sqlalchemy import Engine
from sqlmodel import Session, select

from indexer.store.models import PriceSnapshot, SnapshotRun

# Symbols of ratio prices (one asset in units of another) contain this; they are not USD prices.
RATIO_SEPARATOR = "/"


def price_history(engine: Engine, *, since_timestamp: int | None = None) -> dict[str, list[tuple[int, float]]]:
    """symbol -> [(block timestamp, USD price per token)] of the canonical runs, oldest first.

    One point per (symbol, timestamp): protocols reading the same asset at the same block time give one
    point, the mean of their prices. ``since_timestamp`` keeps runs whose block is at or after it.
    """
    query = (
        select(PriceSnapshot.symbol, PriceSnapshot.price, PriceSnapshot.price_decimals, SnapshotRun.block_timestamp)
        .join(SnapshotRun, PriceSnapshot.run_id == SnapshotRun.id)  # type: ignore[arg-type]
        .where(SnapshotRun.status == "canonical")
    )
    if since_timestamp is not None:
        query = query.where(SnapshotRun.block_timestamp >= since_timestamp)
    sums: dict[tuple[str, int], list[float]] = defaultdict(lambda: [0.0, 0.0])
    with Session(engine) as session:
        for symbol, price, decimals, timestamp in session.exec(query):
            if RATIO_SEPARATOR in symbol or price <= 0:
                continue
            acc = sums[(symbol, timestamp)]
            acc[0] += price / 10**decimals
            acc[1] += 1
    out: dict[str, list[tuple[int, float]]] = defaultdict(list)
    for (symbol, timestamp), (total, count) in sorted(sums.items()):
        out[symbol].append((timestamp, total / count))
    return dict(out)


def latest_timestamp(engine: Engine) -> int | None:
    """The newest block timestamp of a canonical run, None for an empty store."""
    from sqlalchemy import func

    with Session(engine) as session:
        return session.exec(select(func.max(SnapshotRun.block_timestamp)).where(SnapshotRun.status == "canonical")).one()
