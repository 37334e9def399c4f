"""APScheduler wiring: one interval job per protocol instance and account shard, never overlapping itself.

Several ``indexer run`` processes may share one database: each schedules every job, and a job runs only in
the process that holds its lease (``indexer.store.leases``), so no job ever runs in two places at once.
"""

from __future__ import annotations

import logging
import signal
from datetime import UTC, datetime

from apscheduler.schedulers.blocking import BlockingScheduler
from sqlalchemy import Engine

from indexer.chain.rpc import RpcClient
from indexer.config import ProtocolConfig, Settings
from indexer.errors import IndexerError
from indexer.pipeline import ShardWaiting, run_snapshot
from indexer.store.leases import JobLeaser

log = logging.getLogger(__name__)


def job_id(name: str, shard: int = 0, shards: int = 1) -> str:
    """``snapshot:<name>``, or ``snapshot:<name>#<shard>/<shards>`` for a sharded instance."""
    return f"snapshot:{name}" if shards == 1 else f"snapshot:{name}#{shard}/{shards}"


def _snapshot(settings: Settings, proto: ProtocolConfig, engine: Engine, rpc: RpcClient, shard: int) -> None:
    try:
        run_snapshot(settings, proto, engine, rpc=rpc, shard=shard)
    except ShardWaiting as exc:
        log.info("%s", exc)
    except IndexerError as exc:
        # One failed run must not stop the scheduler; the next interval tries again from the checkpoint.
        log.error("snapshot failed protocol=%s shard=%d/%d error=%s", proto.name, shard, proto.shards, exc)


def _job(settings: Settings, proto: ProtocolConfig, engine: Engine, rpc: RpcClient, shard: int = 0, leaser: JobLeaser | None = None) -> None:
    if leaser is None:
        _snapshot(settings, proto, engine, rpc, shard)
        return
    try:
        leaser.run(job_id(proto.name, shard, proto.shards), lambda: _snapshot(settings, proto, engine, rpc, shard))
    except IndexerError as exc:  # the lease statements themselves failed (database unreachable)
        log.error("job lease failed protocol=%s shard=%d/%d error=%s", proto.name, shard, proto.shards, exc)


def build_scheduler(settings: Settings, engine: Engine, clients: dict[str, RpcClient], *, leaser: JobLeaser | None = None) -> BlockingScheduler:
    """One job per protocol and account shard; ``clients`` maps chain names to clients connected once at start.

    With ``leaser`` a job runs only when this process gets its lease; without, it always runs.
    """
    scheduler = BlockingScheduler(timezone="UTC")
    for proto in settings.protocols:
        for shard in range(proto.shards):
            jid = job_id(proto.name, shard, proto.shards)
            scheduler.add_job(
                _job,
                "interval",
                seconds=proto.interval_seconds,
                args=(settings, proto, engine, clients[proto.chain], shard, leaser),
                id=jid,
                name=jid.replace(":", " ", 1),
                max_instances=1,  # a slow run is never overlapped by the next one
                coalesce=True,  # missed runs collapse into one
                next_run_time=datetime.now(UTC),
                misfire_grace_time=None,
            )
    return scheduler


def run_forever(settings: Settings, engine: Engine, clients: dict[str, RpcClient]) -> None:
    """Run the jobs until SIGINT/SIGTERM; the current run finishes its transaction first, then the leases go."""
    leaser = JobLeaser(engine, lease_seconds=settings.scale_out.lease_seconds, heartbeat_seconds=settings.scale_out.heartbeat_seconds)
    leaser.start()
    scheduler = build_scheduler(settings, engine, clients, leaser=leaser)

    def stop(signum: int, _frame: object) -> None:
        log.info("signal %d received; stopping the scheduler", signum)
        scheduler.shutdown(wait=True)

    signal.signal(signal.SIGTERM, stop)
    log.info("scheduler started with %d job(s) worker=%s", len(scheduler.get_jobs()), leaser.worker_id)
    try:
        scheduler.start()
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        if scheduler.running:
            scheduler.shutdown(wait=True)  # no run may outlive the leases released below
        leaser.stop()
