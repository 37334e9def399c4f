"""``GET /metrics``: Prometheus text that the Prometheus client parses, with values read from the store, and
that moves when a new snapshot lands."""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

warnings.filterwarnings("ignore", message=".*httpx.*")  # starlette's TestClient on httpx: a deprecation notice, not ours
from fastapi.testclient import TestClient  # noqa: E402

from indexer.api import create_app  # noqa: E402
from indexer.chain.rpc import FAILURE_CLASSES  # noqa: E402
from indexer.config import Settings  # noqa: E402
from indexer.constants import UINT256_MAX, WAD  # noqa: E402
from indexer.domain import BlockRef, Position, PositionLeg, Snapshot  # noqa: E402
from indexer.risk.portfolio import tier_of  # noqa: E402
from indexer.store.db import make_engine, write_snapshot  # noqa: E402

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(client: TestClient) -> tuple[dict[str, str], Samples]:
    """(family name -> type, (sample name, sorted labels) -> value), parsed by the Prometheus client."""
    r = client.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    types: dict[str, str] = {}
    samples: Samples = {}
    for family in text_string_to_metric_families(r.text):
        types[family.name] = family.type
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return types, samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


def by_label(samples: Samples, name: str, label: str, **fixed: str) -> dict[str, float]:
    out = {}
    for (n, labels), v in samples.items():
        d = dict(labels)
        if n == name and all(d.get(k) == x for k, x in fixed.items()):
            out[d[label]] = v
    return out


@pytest.fixture()
def store(demo_db: Path, tmp_path: Path) -> Path:
    path = tmp_path / "metrics.db"
    shutil.copy(demo_db, path)
    return path


def _client(path: Path) -> TestClient:
    url = f"sqlite:///{path}"
    return TestClient(create_app(Settings(database_url=url), make_engine(url, create=False)))


def _get(client: TestClient, path: str, **params: Any) -> Any:
    r = client.get(path, params=params)
    assert r.status_code == 200, r.text
    return r.json()


def test_metrics_parse_and_agree_with_the_store(store: Path) -> None:
    client = _client(store)
    types, samples = scrape(client)
    assert types == {
        "indexer_snapshot_lag_blocks": "gauge",
        "indexer_snapshot_lag_seconds": "gauge",
        "indexer_snapshot_block": "gauge",
        "indexer_snapshot_head_block": "gauge",
        "indexer_last_run_duration_seconds": "gauge",
        "indexer_accounts_indexed": "gauge",
        "indexer_positions": "gauge",
        "indexer_positions_at_risk": "gauge",
        "indexer_positions_by_price_quality": "gauge",
        "indexer_rpc_requests": "counter",
        "indexer_rpc_errors": "counter",
        "indexer_snapshot_runs": "counter",
        "indexer_run_duration_seconds": "histogram",
    }
    protocols = {p["name"]: p for p in _get(client, "/protocols")}
    runs = _get(client, "/runs", limit=1000)["items"]
    positions = _get(client, "/positions", limit=1000)["items"]
    for name, p in protocols.items():
        labels = {"chain": p["chain"], "protocol": name}
        assert value(samples, "indexer_snapshot_lag_blocks", **labels) == p["lag_blocks"] == 0
        assert value(samples, "indexer_snapshot_block", **labels) == p["block_number"]
        assert value(samples, "indexer_snapshot_head_block", **labels) == p["head_block"]
        assert value(samples, "indexer_snapshot_lag_seconds", **labels) >= 0
        assert value(samples, "indexer_accounts_indexed", **labels) == p["known_accounts"]
        assert value(samples, "indexer_positions", **labels) == p["positions"]
        mine = [r for r in runs if r["protocol"] == name]
        assert value(samples, "indexer_rpc_requests_total", **labels) == sum(r["rpc_requests"] for r in mine)
        assert by_label(samples, "indexer_rpc_errors_total", "class", **labels) == dict.fromkeys(FAILURE_CLASSES, 0.0)
        assert value(samples, "indexer_snapshot_runs_total", **labels) == len(mine)
        assert value(samples, "indexer_run_duration_seconds_count", **labels) == len(mine)
        assert value(samples, "indexer_run_duration_seconds_sum", **labels) == pytest.approx(sum(r["duration_seconds"] for r in mine))
        assert value(samples, "indexer_run_duration_seconds_bucket", le="+Inf", **labels) == len(mine)
        assert value(samples, "indexer_last_run_duration_seconds", **labels) == pytest.approx(mine[0]["duration_seconds"])
        # Tiers with the [risk] thresholds (1.25 / 1.05), from the protocol's own verdicts.
        tiers = by_label(samples, "indexer_positions_at_risk", "tier", **labels)
        expected = {"warning": 0, "critical": 0, "liquidation": 0}
        for pos in (x for x in positions if x["protocol"] == name):
            hf = UINT256_MAX if pos["health_factor"] == "inf" else int(pos["health_factor"])
            tier = tier_of(hf, pos["liquidatable"], warning_hf=125 * 10**16, critical_hf=105 * 10**16)
            if tier != "healthy":
                expected[tier] += 1
        assert tiers == expected
        assert tiers["liquidation"] == p["liquidatable"]
        qualities: dict[str, float] = {"ok": 0}
        for pos in (x for x in positions if x["protocol"] == name):
            qualities[pos["price_quality"]] = qualities.get(pos["price_quality"], 0) + 1
        assert by_label(samples, "indexer_positions_by_price_quality", "quality", **labels) == qualities
    assert sum(by_label(samples, "indexer_positions_at_risk", "tier", protocol="gmx-v2-demo").values()) > 0


def _snapshot(protocol: str, kind: str, chain: str, chain_id: int, block: int, head: int, errors: dict[str, int]) -> Snapshot:
    ref = BlockRef(chain_id=chain_id, number=block, hash="0x" + f"{block:064x}", timestamp=1_700_000_000 + block)
    leg = PositionLeg(asset="0x" + "11" * 20, symbol="WETH", side="collateral", amount=10**18, decimals=18, value_usd=2000 * WAD, liquidation_threshold_bps=8000)
    position = Position(
        protocol=protocol, kind=kind, account="0x" + "22" * 20, block=ref, collateral_usd=2000 * WAD, debt_usd=1550 * WAD, nlv_usd=450 * WAD,
        health_factor=1032 * 10**15, liquidatable=False, liquidation_threshold_bps=8000, price_drop_to_liquidation=0.03, legs=(leg,),
    )  # fmt: skip
    return Snapshot(
        chain=chain, protocol=protocol, kind=kind, block=ref, positions=(position,), prices=(), new_accounts=(), checkpoint_block=block,
        accounts_read=1, rpc_requests=7, duration_seconds=42.0, head_block=head, rpc_errors=errors,
    )  # fmt: skip


def test_metrics_move_when_a_snapshot_lands(store: Path) -> None:
    client = _client(store)
    _, before = scrape(client)
    p = next(x for x in _get(client, "/protocols") if x["name"] == "aave-v3-demo")
    labels = {"chain": p["chain"], "protocol": p["name"]}
    block = p["block_number"] + 20
    url = f"sqlite:///{store}"
    _, created = write_snapshot(make_engine(url, create=False), _snapshot(p["name"], p["kind"], p["chain"], p["chain_id"], block, block + 5, {"transient": 2, "rate_limited": 1}))
    assert created
    _, after = scrape(client)
    assert value(after, "indexer_snapshot_block", **labels) == block > value(before, "indexer_snapshot_block", **labels)
    assert value(after, "indexer_snapshot_lag_blocks", **labels) == 5
    assert value(after, "indexer_snapshot_head_block", **labels) == block + 5
    assert value(after, "indexer_positions", **labels) == 1
    assert by_label(after, "indexer_positions_at_risk", "tier", **labels) == {"warning": 0, "critical": 1, "liquidation": 0}
    assert value(after, "indexer_rpc_requests_total", **labels) == value(before, "indexer_rpc_requests_total", **labels) + 7
    errors = by_label(after, "indexer_rpc_errors_total", "class", **labels)
    assert errors == {**dict.fromkeys(FAILURE_CLASSES, 0.0), "transient": 2.0, "rate_limited": 1.0}
    assert value(after, "indexer_snapshot_runs_total", **labels) == value(before, "indexer_snapshot_runs_total", **labels) + 1
    assert value(after, "indexer_last_run_duration_seconds", **labels) == 42.0
    assert value(after, "indexer_run_duration_seconds_count", **labels) == value(before, "indexer_run_duration_seconds_count", **labels) + 1
    # 42 s lands above the 30 s bucket: the 30 s bucket keeps its count, the 60 s one gains it.
    assert value(after, "indexer_run_duration_seconds_bucket", le="30.0", **labels) == value(before, "indexer_run_duration_seconds_bucket", le="30.0", **labels)
    assert value(after, "indexer_run_duration_seconds_bucket", le="60.0", **labels) == value(before, "indexer_run_duration_seconds_bucket", le="60.0", **labels) + 1
    # The other protocols did not move.
    other = {"chain": p["chain"], "protocol": "gmx-v2-demo"}
    for name in ("indexer_snapshot_block", "indexer_positions", "indexer_rpc_requests_total"):
        assert value(after, name, **other) == value(before, name, **other)
    # The API's runs show the same run with its lag and errors.
    newest = _get(client, "/runs", limit=1)["items"][0]
    assert (newest["protocol"], newest["lag_blocks"], newest["rpc_errors"]) == (p["name"], 5, {"rate_limited": 1, "transient": 2})
