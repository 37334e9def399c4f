"""Watchlist alerts: a real HTTP webhook receiver gets exactly one alert per tier crossing, none while the
address hovers inside the hysteresis band, a retry when it first answers 500; the cooldown holds alerts back
without losing them; the webhook's secrets never reach the log; the CLI manages the watchlist and shows the
history; and on anvil a snapshot run alerts through the pipeline's hook."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from eth_utils import to_checksum_address

from indexer.alerts import evaluate_alerts, post_webhook, redact_url, status_of
from indexer.config import AlertsConfig, Settings, WatchEntry
from indexer.constants import WAD
from indexer.devnet.anvil import free_port
from indexer.store.db import make_engine, write_snapshot
from indexer.store.watch import list_alerts, upsert_watch
from tests.conftest import FreshDatabase, indexer
from tests.test_store import block, position, snapshot

WATCHED = to_checksum_address("0x" + "5a" * 20)
OTHER = to_checksum_address("0x" + "6b" * 20)
SECRET = "s3cr3t-token"
PASSWORD = "hunter2pw"


def hf(text: str) -> int:
    return int(float(text) * 10**6) * 10**12


class Receiver:
    """A webhook endpoint: records every POST (path, headers, JSON body) and answers the queued status codes
    (then 200)."""

    def __init__(self, codes: list[int] | None = None) -> None:
        self.codes = list(codes or [])
        self.requests: list[dict[str, Any]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append({"path": self.path, "headers": dict(self.headers), "body": json.loads(body)})
                code = receiver.codes.pop(0) if receiver.codes else 200
                self.send_response(code)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://alerts:{PASSWORD}@127.0.0.1:{self.server.server_address[1]}/hook/path?token={SECRET}"

    @property
    def bodies(self) -> list[dict[str, Any]]:
        return [r["body"] for r in self.requests]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture()
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def alert_settings(db_url: str, url: str | None, **alerts: Any) -> Settings:
    cfg = {"webhook_url": url, "band": "0.02", "cooldown_seconds": 0, "webhook_backoff_seconds": 0.01, **alerts}
    return Settings(database_url=db_url, alerts=AlertsConfig(**cfg))


class Store:
    """Writes one snapshot per call (a new block each time) with the watched address at the given HF, and runs
    the alert evaluation the pipeline runs after each stored snapshot."""

    def __init__(self, engine: Any, settings: Settings) -> None:
        self.engine, self.settings, self.n = engine, settings, 0

    def land(self, health: str | int, *, now: datetime | None = None, other: str = "2.0") -> list[Any]:
        self.n += 1
        blk = block(1000 + self.n)
        h = health if isinstance(health, int) else hf(health)
        run_id, created = write_snapshot(self.engine, snapshot(blk, (position(WATCHED, h, blk), position(OTHER, hf(other), blk))))
        assert created
        return evaluate_alerts(self.engine, self.settings, [run_id], now=now)


def test_one_alert_per_crossing_none_while_hovering_in_the_band(any_db: FreshDatabase, receiver: Receiver, caplog: pytest.LogCaptureFixture) -> None:
    """On SQLite and PostgreSQL."""
    caplog.set_level(logging.INFO)
    engine = make_engine(any_db.url)
    settings = alert_settings(any_db.url, receiver.url)
    upsert_watch(engine, WATCHED, hf("1.2"), "treasury")
    store = Store(engine, settings)
    # (health factor, alerts the receiver has received in total after it): warning below 1.2 (the address's own
    # threshold), critical below 1.05 ([risk] critical_hf), liquidation when liquidatable (HF < 1); band 0.02.
    steps = [
        ("1.30", 0),  # healthy
        ("1.19", 1),  # -> warning: one alert
        ("1.21", 1),  # back above 1.2 but not past 1.22: still held in warning
        ("1.19", 1),  # hovering inside the band: no alert
        ("1.215", 1),
        ("1.195", 1),
        ("1.23", 1),  # recovered past 1.2 + 0.02: healthy again, silently
        ("1.18", 2),  # -> warning again: an alert
        ("1.04", 3),  # -> critical
        ("1.06", 3),  # above 1.05, inside the band: held critical
        ("1.045", 3),
        ("0.99", 4),  # -> liquidation
        ("1.01", 4),  # not liquidatable, but below 1 + band: held
        ("0.995", 4),
    ]
    for i, (h, expected) in enumerate(steps):
        store.land(h)
        assert len(receiver.requests) == expected, f"step {i} (HF {h}): {len(receiver.requests)} alerts, expected {expected}"
    tiers = [(b["from_tier"], b["to_tier"]) for b in receiver.bodies]
    assert tiers == [("healthy", "warning"), ("healthy", "warning"), ("warning", "critical"), ("critical", "liquidation")]
    first = receiver.bodies[0]
    assert first["address"] == WATCHED and first["label"] == "treasury" and first["threshold"] == "1.2"
    assert first["health_factor"] == str(hf("1.19")) and first["protocol"] == "aave-main" and first["block_number"] == 1002
    assert receiver.requests[0]["path"] == f"/hook/path?token={SECRET}"  # the URL's secret reaches the receiver ...
    assert receiver.requests[0]["headers"]["Authorization"].startswith("Basic ")
    stored = list_alerts(engine, address=WATCHED)
    assert [(a.from_tier, a.to_tier, a.delivered, a.attempts) for a in reversed(stored)] == [(f, t, True, 1) for f, t in tiers]
    assert [json.loads(json.dumps(b))["alert_id"] for b in receiver.bodies] == [a.id for a in reversed(stored)]
    log = caplog.text  # ... and never the log
    assert SECRET not in log and PASSWORD not in log and "/hook/path" not in log
    assert "alert address=" + WATCHED in log and "alert delivered webhook=http://127.0.0.1:" in log
    # The unwatched address never alerts, whatever its health.
    store.land("0.5", other="0.5")
    assert all(b["address"] == WATCHED for b in receiver.bodies)


def test_retry_when_the_receiver_first_answers_500(engine, db_url, caplog: pytest.LogCaptureFixture) -> None:  # type: ignore[no-untyped-def]
    receiver = Receiver([500])
    try:
        settings = alert_settings(db_url, receiver.url)
        upsert_watch(engine, WATCHED, hf("1.2"), "")
        store = Store(engine, settings)
        store.land("1.3")
        (alert,) = store.land("1.1")
        assert len(receiver.requests) == 2 and receiver.bodies[0] == receiver.bodies[1]
        assert (alert.delivered, alert.attempts, alert.last_error) == (True, 2, None)
        (stored,) = list_alerts(engine)
        assert (stored.delivered, stored.attempts) == (True, 2)
        assert "attempt=1/3 error=HTTP 500" in caplog.text and SECRET not in caplog.text
        # Three 500s in a row: given up after webhook_attempts, recorded; a 4xx is not retried.
        receiver.codes = [503, 503, 503]
        store.land("1.3")
        (failed,) = store.land("1.1")
        assert (failed.delivered, failed.attempts, failed.last_error) == (False, 3, "HTTP 503")
        receiver.codes = [404]
        store.land("1.3")
        (rejected,) = store.land("1.1")
        assert (rejected.delivered, rejected.attempts, rejected.last_error) == (False, 1, "HTTP 404")
        assert len(receiver.requests) == 2 + 3 + 1
    finally:
        receiver.close()


def test_unreachable_webhook_is_bounded_and_recorded(engine, db_url, caplog: pytest.LogCaptureFixture) -> None:  # type: ignore[no-untyped-def]
    url = f"http://user:{PASSWORD}@127.0.0.1:{free_port()}/x?token={SECRET}"  # nothing listens there
    settings = alert_settings(db_url, url, webhook_attempts=3, webhook_timeout_seconds=2)
    upsert_watch(engine, WATCHED, hf("1.2"), "")
    store = Store(engine, settings)
    store.land("1.3")
    started = datetime.now(UTC)
    (alert,) = store.land("1.1")
    assert (datetime.now(UTC) - started).total_seconds() < 5
    assert not alert.delivered and alert.attempts == 3 and "Connection" in (alert.last_error or "") and SECRET not in (alert.last_error or "")
    assert SECRET not in caplog.text and PASSWORD not in caplog.text
    assert redact_url(url) == f"http://127.0.0.1:{url.split(':')[3].split('/')[0]}"


def test_cooldown_holds_a_second_alert_back_without_losing_it(engine, db_url, receiver: Receiver) -> None:  # type: ignore[no-untyped-def]
    settings = alert_settings(db_url, receiver.url, cooldown_seconds=3600)
    upsert_watch(engine, WATCHED, hf("1.2"), "")
    store = Store(engine, settings)
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    store.land("1.3", now=t0)
    store.land("1.1", now=t0 + timedelta(seconds=10))  # -> warning
    store.land("1.3", now=t0 + timedelta(seconds=20))  # recovered past the band
    assert store.land("1.1", now=t0 + timedelta(seconds=30)) == []  # crossed again inside the cooldown: held back
    assert store.land("1.0001", now=t0 + timedelta(seconds=60)) == []  # critical now, still inside the cooldown
    assert len(receiver.requests) == 1
    # The cooldown is over: the address, held healthy since it recovered, alerts its worse tier now.
    (late,) = store.land("1.04", now=t0 + timedelta(seconds=3611))
    assert (late.from_tier, late.to_tier) == ("healthy", "critical")
    assert [b["to_tier"] for b in receiver.bodies] == ["warning", "critical"]


def test_status_takes_the_worst_position_and_the_band() -> None:
    from indexer.store.db import PositionRow

    def r(h: str, liq: bool = False, protocol: str = "p") -> PositionRow:
        return PositionRow(1, WATCHED, "", protocol, "aave_v3", "c", hf(h), liq, 0, 0, 0, None, 1, 1, [], {})

    band = hf("0.02")
    s = status_of([r("1.5"), r("1.1", protocol="worst"), r("1.3")], hf("1.2"), hf("1.05"), band)
    assert s.tier == "warning" and s.position is not None and s.position.protocol == "worst" and s.held_floor == "warning"
    assert status_of([r("1.21")], hf("1.2"), hf("1.05"), band).held_floor == "warning"  # inside the band
    assert status_of([r("1.0"), r("0.8", liq=True)], hf("1.2"), hf("1.05"), band).tier == "liquidation"
    # A threshold below [risk] critical_hf: the address's own bound comes first (critical is capped at it).
    assert status_of([r("1.03")], hf("1.02"), hf("1.05"), band).tier == "healthy"
    assert status_of([], hf("1.2"), hf("1.05"), band).tier == "healthy"


def test_watch_commands_and_alert_history(engine, db_url, receiver: Receiver, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cfg = tmp_path / "alerts.toml"
    cfg.write_text(f'[alerts]\nwatch = [{{ address = "{OTHER}", below = "1.5", label = "from config" }}]\n')
    add = indexer("watch", "add", WATCHED.lower(), "--below", "1.2", "--label", "desk", "--database-url", db_url, cwd=tmp_path)
    assert add.returncode == 0 and add.stdout.strip() == f"watching {WATCHED} below 1.2 (desk)", add.stderr
    again = indexer("watch", "add", WATCHED, "--below", "1.25", "--database-url", db_url, cwd=tmp_path)
    assert again.returncode == 0 and again.stdout.startswith("updated"), again.stderr
    bad = indexer("watch", "add", "0x1234", "--below", "1.2", "--database-url", db_url, cwd=tmp_path)
    assert bad.returncode == 2 and "ADDRESS" in bad.stderr
    listed = indexer("watch", "list", "--json", "-c", str(cfg), "--database-url", db_url, cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    rows = {r["address"]: r for r in json.loads(listed.stdout)}
    assert rows[WATCHED]["below"] == "1.25" and rows[WATCHED]["source"] == "database" and rows[WATCHED]["label"] == ""
    assert rows[OTHER]["below"] == "1.5" and rows[OTHER]["source"] == "config" and rows[OTHER]["label"] == "from config"
    # Both alert: the stored entry and the config's.
    settings = Settings(database_url=db_url, alerts=AlertsConfig(webhook_url=receiver.url, cooldown_seconds=0, watch=[WatchEntry(address=OTHER, below="1.5")]))
    store = Store(engine, settings)
    store.land("1.3", other="2.0")
    store.land("1.1", other="1.4")
    assert sorted(b["address"] for b in receiver.bodies) == sorted([WATCHED, OTHER])
    history = indexer("alerts", "--json", "--address", WATCHED, "--database-url", db_url, cwd=tmp_path)
    assert history.returncode == 0, history.stderr
    (one,) = json.loads(history.stdout)
    assert (one["address"], one["from_tier"], one["to_tier"], one["delivered"], one["attempts"]) == (WATCHED, "healthy", "warning", True, 1)
    table = indexer("alerts", "--database-url", db_url, cwd=tmp_path)
    assert table.returncode == 0 and "healthy -> warning" in table.stdout
    gone = indexer("watch", "remove", WATCHED, "--database-url", db_url, cwd=tmp_path)
    assert gone.returncode == 0 and gone.stdout.strip() == f"removed {WATCHED}"
    missing = indexer("watch", "remove", OTHER, "-c", str(cfg), "--database-url", db_url, cwd=tmp_path)
    assert missing.returncode == 2 and "remove it there" in missing.stderr
    # Its history stays after it is removed.
    assert json.loads(indexer("alerts", "--json", "--database-url", db_url, cwd=tmp_path).stdout)


def test_post_webhook_payload_is_json(receiver: Receiver) -> None:
    cfg = AlertsConfig(webhook_url=receiver.url)
    assert post_webhook(receiver.url, {"alert_id": 7, "x": [1, "a"]}, cfg) == (True, 1, None)
    (req,) = receiver.requests
    assert req["body"] == {"alert_id": 7, "x": [1, "a"]} and req["headers"]["Content-Type"] == "application/json"


def test_a_snapshot_run_alerts_through_the_pipeline(market_v35, anvil, rpc, engine, db_url, clean_chain, receiver: Receiver) -> None:  # type: ignore[no-untyped-def]
    """On the Aave fixture: the watched account's price moves across its threshold between two runs of
    ``run_snapshot``; the run's alert hook delivers exactly one alert; a later run in the same tier, none."""
    from indexer.pipeline import run_snapshot
    from tests.conftest import settings_for
    from tests.test_aave_boundary import _account_at, price_for_hf

    fx, chain = market_v35.fixture, clean_chain
    user, _ = _account_at(fx, chain, anvil, 110 * WAD // 100)
    settings, proto = settings_for(anvil, fx, db_url)
    settings = settings.model_copy(update={"alerts": AlertsConfig(webhook_url=receiver.url, cooldown_seconds=0)})
    upsert_watch(engine, user, hf("1.08"), "fixture")
    run_snapshot(settings, proto, engine, rpc=rpc)
    assert receiver.requests == []
    balance = int(chain.call("AToken", fx.asset("WETH").a_token, "balanceOf", user)[0])
    fx.set_price("WETH", price_for_hf(fx.revision, 107 * WAD // 100, balance, fx.asset("WETH").spec.liquidation_threshold, fx.account_data(user)[1]))
    run = run_snapshot(settings, proto, engine, rpc=rpc)
    assert [(b["address"], b["from_tier"], b["to_tier"], b["health_factor"]) for b in receiver.bodies] == [(user, "healthy", "warning", str(107 * WAD // 100))]
    assert receiver.bodies[0]["run_id"] == run.run_id and receiver.bodies[0]["block_number"] == run.snapshot.block.number
    chain.mine()
    run_snapshot(settings, proto, engine, rpc=rpc)
    assert len(receiver.requests) == 1
