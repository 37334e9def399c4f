"""APScheduler wiring: one interval job per protocol instance, never overlapping itself."""

from __future__ import annotations

import logging
import signal
from datetime import UTC, datetime

from apscheduler.schedulers.blocking import BlockingScheduler
from sqlalchemy import Engine

from indexer.chain.rpc import RpcClient
from indexer.config import ProtocolConfig, Settings
from indexer.errors import IndexerError
from indexer.pipeline import run_snapshot

log = logging.getLogger(__name__)


def _job(settings: Settings, proto: ProtocolConfig, engine: Engine, rpc: RpcClient) -> None:
    try:
        run_snapshot(settings, proto, engine, rpc=rpc)
    except IndexerError as exc:
        # One failed run must not stop the scheduler; the next interval tries again from the checkpoint.
        log.error("snapshot failed protocol=%s error=%s", proto.name, exc)


def build_scheduler(settings: Settings, engine: Engine, clients: dict[str, RpcClient]) -> BlockingScheduler:
    """One job per protocol; ``clients`` maps chain names to clients connected once at start."""
    scheduler = BlockingScheduler(timezone="UTC")
    for proto in settings.protocols:
        scheduler.add_job(
            _job,
            "interval",
            seconds=proto.interval_seconds,
            args=(settings, proto, engine, clients[proto.chain]),
            id=f"snapshot:{proto.name}",
            name=f"snapshot {proto.name}",
            max_instances=1,  # a slow run is never overlapped by the next one
            coalesce=True,  # missed runs collapse into one
            next_run_time=datetime.now(UTC),
            misfire_grace_time=None,
        )
    return scheduler


def run_forever(settings: Settings, engine: Engine, clients: dict[str, RpcClient]) -> None:
    """Run the jobs until SIGINT/SIGTERM; the current run finishes its transaction first."""
    scheduler = build_scheduler(settings, engine, clients)

    def stop(signum: int, _frame: object) -> None:
        log.info("signal %d received; stopping the scheduler", signum)
        scheduler.shutdown(wait=True)

    signal.signal(signal.SIGTERM, stop)
    log.info("scheduler started with %d job(s)", len(settings.protocols))
    try:
        scheduler.start()
    except (KeyboardInterrupt, SystemExit):
        pass
