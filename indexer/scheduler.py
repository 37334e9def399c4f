"""APScheduler wiring: one interval job per protocol instance, never overlapping itself."""

from __future__ import annotations

import logging
import signal
from typing import Any

from apscheduler.schedulers.blocking import BlockingScheduler
from sqlalchemy import Engine

from indexer.config import ProtocolConfig, Settings
from indexer.errors import IndexerError
from indexer.pipeline import run_snapshot

log = logging.getLogger(__name__)


def _job(settings: Settings, proto: ProtocolConfig, engine: Engine) -> None:
    try:
        run_snapshot(settings, proto, engine)
    except IndexerError as exc:
        # One failed run must not stop the scheduler; the next interval tries again from the checkpoint.
        log.error("snapshot failed protocol=%s error=%s", proto.name, exc)


def build_scheduler(settings: Settings, engine: Engine) -> BlockingScheduler:
    scheduler = BlockingScheduler(timezone="UTC")
    for proto in settings.protocols:
        scheduler.add_job(
            _job,
            "interval",
            seconds=proto.interval_seconds,
            args=(settings, proto, engine),
            id=f"snapshot:{proto.name}",
            name=f"snapshot {proto.name}",
            max_instances=1,  # a slow run is never overlapped by the next one
            coalesce=True,  # missed runs collapse into one
            next_run_time=_now(),
            misfire_grace_time=None,
        )
    return scheduler


def _now() -> Any:
    from datetime import UTC, datetime

    return datetime.now(UTC)


def run_forever(settings: Settings, engine: Engine) -> None:
    """Run the jobs until SIGINT/SIGTERM; the current run finishes its transaction first."""
    scheduler = build_scheduler(settings, engine)

    def stop(signum: int, _frame: object) -> None:
        log.info("signal %d received; stopping the scheduler", signum)
        scheduler.shutdown(wait=True)

    signal.signal(signal.SIGTERM, stop)
    log.info("scheduler started with %d job(s)", len(settings.protocols))
    try:
        scheduler.start()
    except (KeyboardInterrupt, SystemExit):
        pass
