"""``GET /metrics``: Prometheus text format, computed from the store at each scrape (a registry per scrape).

The API process holds no counters of its own: every value is read from the stored runs, so any number of
API processes give the same answer and a restart loses nothing. Counters (``*_total``) are sums over the
stored runs; ``indexer db prune`` deleting runs lowers them, which Prometheus treats as a counter reset.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric

from indexer.chain.rpc import FAILURE_CLASSES
from indexer.store.queries import known_account_counts, latest_runs, latest_verdicts, recent_runs, rpc_totals, run_counts

router = APIRouter()

# Runs per protocol instance the duration histogram covers (the newest ones).
RECENT_RUNS = 100
# Upper bounds (seconds) of the run-duration histogram's buckets.
DURATION_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)
# Tiers counted as "at risk" (tier_of's other tier is "healthy").
AT_RISK_TIERS = ("warning", "critical", "liquidation")


class StoreCollector:
    """Yields the metric families from the store; registered in a fresh registry per scrape."""

    def __init__(self, state: Any) -> None:
        self.state = state

    def collect(self) -> Iterator[Metric]:
        engine = self.state.engine
        now = time.time()
        latest = latest_runs(engine)
        chain_of = {r.protocol: r.chain for r in latest}

        lag_blocks = GaugeMetricFamily("indexer_snapshot_lag_blocks", "Chain head minus the block of the latest snapshot (largest over shards)", labels=["chain", "protocol"])
        lag_seconds = GaugeMetricFamily("indexer_snapshot_lag_seconds", "Seconds since the timestamp of the latest snapshot's block (oldest over shards)", labels=["chain", "protocol"])
        block = GaugeMetricFamily("indexer_snapshot_block", "Block of the latest snapshot (lowest over shards)", labels=["chain", "protocol"])
        head = GaugeMetricFamily("indexer_snapshot_head_block", "Chain head seen by the latest snapshot", labels=["chain", "protocol"])
        last_duration = GaugeMetricFamily("indexer_last_run_duration_seconds", "Wall time of the latest snapshot run (longest over shards)", labels=["chain", "protocol"])
        by_protocol: dict[str, list[Any]] = defaultdict(list)
        for run in latest:
            by_protocol[run.protocol].append(run)
        for protocol, runs in sorted(by_protocol.items()):
            labels = [chain_of[protocol], protocol]
            lags = [r.lag_blocks for r in runs if r.lag_blocks is not None]
            if lags:
                lag_blocks.add_metric(labels, max(lags))
            heads = [r.head_block for r in runs if r.head_block is not None]
            if heads:
                head.add_metric(labels, max(heads))
            lag_seconds.add_metric(labels, max(0.0, now - min(r.block_timestamp for r in runs)))
            block.add_metric(labels, min(r.block_number for r in runs))
            last_duration.add_metric(labels, max(r.duration_seconds for r in runs))
        yield from (lag_blocks, lag_seconds, block, head, last_duration)

        accounts = GaugeMetricFamily("indexer_accounts_indexed", "Accounts discovered (per market) of a protocol instance", labels=["chain", "protocol"])
        for protocol, n in sorted(known_account_counts(engine).items()):
            accounts.add_metric([chain_of.get(protocol, ""), protocol], n)
        yield accounts

        positions = GaugeMetricFamily("indexer_positions", "Positions in the latest snapshots", labels=["chain", "protocol"])
        at_risk = GaugeMetricFamily("indexer_positions_at_risk", "Positions of the latest snapshots by risk tier ([risk] warning_hf, critical_hf)", labels=["chain", "protocol", "tier"])
        quality = GaugeMetricFamily(
            "indexer_positions_by_price_quality",
            "Positions of the latest snapshots by the quality of the prices their verdict used (ok, stale, non_positive, ... or several joined by ',')",
            labels=["chain", "protocol", "quality"],
        )
        totals: dict[tuple[str, str], int] = defaultdict(int)
        tiers: dict[tuple[str, str, str], int] = defaultdict(int)
        qualities: dict[tuple[str, str, str], int] = defaultdict(int)
        for v in latest_verdicts(engine):
            totals[(v.chain, v.protocol)] += 1
            tiers[(v.chain, v.protocol, self.state.tier(v.health_factor, v.liquidatable))] += 1
            qualities[(v.chain, v.protocol, v.price_quality)] += 1
        for (chain, protocol), n in sorted(totals.items()):
            positions.add_metric([chain, protocol], n)
            for tier in AT_RISK_TIERS:
                at_risk.add_metric([chain, protocol, tier], tiers.get((chain, protocol, tier), 0))
            quality.add_metric([chain, protocol, "ok"], qualities.get((chain, protocol, "ok"), 0))  # 0 too: "all flagged" is visible
        for (chain, protocol, label), n in sorted(qualities.items()):
            if label != "ok":
                quality.add_metric([chain, protocol, label], n)
        yield positions
        yield at_risk
        yield quality

        requests = CounterMetricFamily("indexer_rpc_requests", "HTTP requests to the RPC (a JSON-RPC batch is one) of the stored snapshot runs", labels=["chain", "protocol"])
        errors = CounterMetricFamily("indexer_rpc_errors", "Failed JSON-RPC attempts of the stored snapshot runs, by class", labels=["chain", "protocol", "class"])
        for t in rpc_totals(engine):
            requests.add_metric([t.chain, t.protocol], t.requests)
            for cls in FAILURE_CLASSES:
                errors.add_metric([t.chain, t.protocol, cls], t.errors.get(cls, 0))
        yield requests
        yield errors

        runs_total = CounterMetricFamily("indexer_snapshot_runs", "Stored snapshot runs", labels=["chain", "protocol"])
        durations = HistogramMetricFamily(
            "indexer_run_duration_seconds", f"Wall time of the newest {RECENT_RUNS} canonical snapshot runs per protocol instance", labels=["chain", "protocol"]
        )
        for protocol, recent in sorted(recent_runs(engine, per_protocol=RECENT_RUNS).items()):
            if not recent:
                continue
            labels = [recent[0].chain, protocol]
            values = [r.duration_seconds for r in recent]
            buckets = [(str(b), sum(1 for v in values if v <= b)) for b in DURATION_BUCKETS] + [("+Inf", len(values))]
            durations.add_metric(labels, buckets, sum(values))
        for (chain, protocol), n in sorted(run_counts(engine).items()):
            runs_total.add_metric([chain, protocol], n)
        yield runs_total
        yield durations


def render(state: Any) -> bytes:
    """The metrics text for the store behind ``state`` (an ``ApiState``)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StoreCollector(state))  # type: ignore[arg-type]
    return generate_latest(registry)


@router.get(
    "/metrics",
    tags=["service"],
    summary="Prometheus metrics (text format 0.0.4)",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}, "description": "Prometheus exposition text"}},
)
def metrics(request: Request) -> Response:
    return Response(render(request.app.state.api), media_type=CONTENT_TYPE_LATEST)
