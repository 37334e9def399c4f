"""Job leases and worker heartbeats in the shared database: how ``indexer run`` processes split the jobs.

Every process schedules every job; before a run it must hold the job's lease (a ``job_leases`` row).

- A process registers a ``workers`` row and heartbeats every ``heartbeat_seconds``; the live workers are
  those whose heartbeat is younger than ``lease_seconds``.
- A job's rightful owner is the live worker with the highest rendezvous score ``sha256(job_id, worker_id)``
  (``rendezvous_owner``): balanced, and when a worker joins or leaves only the jobs it wins or held move.
- A process tries a job only when it is the rightful owner or already holds the lease, and runs it only
  when one ``INSERT ... ON CONFLICT DO UPDATE ... WHERE owner = me OR expires_at < now`` (database clock)
  gave it the lease. The heartbeat renews held leases, also during a long run.
- After a run, and between runs, a lease the process no longer rightfully owns is released (expires now, no owner),
  so the rightful owner takes it at its next trigger. A killed process stops renewing: its leases expire
  after ``lease_seconds`` and the new rightful owners take its jobs over.

Times are the database's clock only (``now()``; SQLite ``'now'``), never a process's: ``timestamptz`` on
PostgreSQL, UTC text on SQLite (the form the models' UTC datetime type reads). SQLite statements run inside
``BEGIN IMMEDIATE``, so they serialize like PostgreSQL's row locks.
"""

from __future__ import annotations

import hashlib
import logging
import os
import secrets
import socket
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import SQLAlchemyError

from indexer.errors import StoreError

log = logging.getLogger(__name__)

# Worker rows whose heartbeat is this many lease periods old are deleted (processes that were killed).
DEAD_WORKER_PRUNE_LEASES = 20


def new_worker_id() -> str:
    """``host:pid:random``: unique per process, readable in logs."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


def rendezvous_score(job_id: str, worker_id: str) -> int:
    """The worker's weight for the job (highest random weight hashing); the same in every process."""
    return int.from_bytes(hashlib.sha256(f"{job_id}\n{worker_id}".encode()).digest()[:8], "big")


def rendezvous_owner(job_id: str, workers: Iterable[str]) -> str | None:
    """The worker that should run ``job_id``: the highest score (ties, never seen in practice, to the larger id)."""
    return max(workers, key=lambda w: (rendezvous_score(job_id, w), w), default=None)


@dataclass(frozen=True, slots=True)
class LeaseAttempt:
    """What a take-or-renew statement did."""

    held: bool  # the caller holds the lease now
    previous_owner: str | None  # the row's owner before the statement; None: no row or a released lease


class _Clock:
    """SQL for the database's clock, per dialect."""

    def __init__(self, dialect: str) -> None:
        self.sqlite = dialect == "sqlite"

    def now(self) -> str:
        return "strftime('%Y-%m-%d %H:%M:%f', 'now')" if self.sqlite else "now()"

    def shifted(self, param: str) -> str:
        """Now plus the bound parameter ``param`` seconds (negative for the past)."""
        if self.sqlite:
            return f"strftime('%Y-%m-%d %H:%M:%f', 'now', printf('%+.3f seconds', :{param}))"
        return f"now() + make_interval(secs => :{param})"


class LeaseStore:
    """The lease and heartbeat statements, on PostgreSQL or SQLite; each call is one short transaction."""

    def __init__(self, engine: Engine, *, lease_seconds: float) -> None:
        self.engine = engine
        self.lease_seconds = float(lease_seconds)
        self._sqlite = engine.dialect.name == "sqlite"
        clock = _Clock(engine.dialect.name)
        now, until = clock.now(), clock.shifted("secs")
        self._take = text(
            "INSERT INTO job_leases (job_id, owner, acquired_at, expires_at) "
            f"VALUES (:job, :me, {now}, {until}) "
            "ON CONFLICT (job_id) DO UPDATE SET owner = excluded.owner, "
            "acquired_at = CASE WHEN job_leases.owner = excluded.owner THEN job_leases.acquired_at ELSE excluded.acquired_at END, "
            "expires_at = excluded.expires_at "
            "WHERE job_leases.owner = excluded.owner OR job_leases.expires_at < excluded.acquired_at "
            "RETURNING owner"
        )
        self._previous = text("SELECT owner FROM job_leases WHERE job_id = :job")
        # A released lease expires now and has no owner: the next taker acquires it (a takeover is of an expired holder).
        self._release = text(f"UPDATE job_leases SET owner = '', expires_at = {now} WHERE job_id = :job AND owner = :me")
        self._release_all = text(f"UPDATE job_leases SET owner = '', expires_at = {now} WHERE owner = :me")
        self._beat = text(
            f"INSERT INTO workers (worker_id, started_at, heartbeat_at) VALUES (:me, {now}, {now}) "
            "ON CONFLICT (worker_id) DO UPDATE SET heartbeat_at = excluded.heartbeat_at"
        )
        self._prune = text(f"DELETE FROM workers WHERE heartbeat_at < {clock.shifted('age')}")
        self._live = text(f"SELECT worker_id FROM workers WHERE heartbeat_at >= {clock.shifted('age')} ORDER BY worker_id")
        self._leave = text("DELETE FROM workers WHERE worker_id = :me")
        self._holder = text(f"SELECT owner FROM job_leases WHERE job_id = :job AND expires_at > {now}")

    @contextmanager
    def _tx(self) -> Iterator[Connection]:
        """One write transaction: ``BEGIN IMMEDIATE`` on SQLite (takes the write lock first), a plain one elsewhere."""
        try:
            if self._sqlite:
                with self.engine.connect() as conn:
                    conn.execution_options(isolation_level="AUTOCOMMIT")  # the driver must not BEGIN on its own
                    conn.exec_driver_sql("BEGIN IMMEDIATE")
                    try:
                        yield conn
                    except BaseException:
                        conn.exec_driver_sql("ROLLBACK")
                        raise
                    conn.exec_driver_sql("COMMIT")
            else:
                with self.engine.begin() as conn:
                    yield conn
        except SQLAlchemyError as exc:
            raise StoreError(f"job lease statement failed: {type(exc).__name__}: {str(exc).splitlines()[0]}") from None

    def take(self, job_id: str, worker_id: str) -> LeaseAttempt:
        """Take or renew ``job_id``'s lease for ``lease_seconds`` if it is free, expired or already ``worker_id``'s."""
        with self._tx() as conn:
            previous = conn.execute(self._previous, {"job": job_id}).scalar_one_or_none() or None  # for the log line only
            got = conn.execute(self._take, {"job": job_id, "me": worker_id, "secs": self.lease_seconds}).scalar_one_or_none()
        return LeaseAttempt(held=got == worker_id, previous_owner=previous)

    def release(self, job_id: str, worker_id: str) -> bool:
        """Let ``job_id``'s lease expire now if ``worker_id`` holds it; whether it did."""
        with self._tx() as conn:
            return bool(conn.execute(self._release, {"job": job_id, "me": worker_id}).rowcount)

    def release_all(self, worker_id: str) -> int:
        """Let every lease ``worker_id`` holds expire now; how many."""
        with self._tx() as conn:
            return int(conn.execute(self._release_all, {"me": worker_id}).rowcount)

    def holder(self, job_id: str) -> str | None:
        """The worker holding an unexpired lease on ``job_id``, if any."""
        with self._tx() as conn:
            return conn.execute(self._holder, {"job": job_id}).scalar_one_or_none()

    def heartbeat(self, worker_id: str) -> None:
        """Register ``worker_id`` or refresh its heartbeat; forget workers dead for long."""
        with self._tx() as conn:
            conn.execute(self._beat, {"me": worker_id})
            conn.execute(self._prune, {"age": -DEAD_WORKER_PRUNE_LEASES * self.lease_seconds})

    def live_workers(self) -> list[str]:
        """Workers whose heartbeat is younger than ``lease_seconds``."""
        with self._tx() as conn:
            return list(conn.execute(self._live, {"age": -self.lease_seconds}).scalars())

    def leave(self, worker_id: str) -> None:
        """Delete ``worker_id``'s row (graceful stop)."""
        with self._tx() as conn:
            conn.execute(self._leave, {"me": worker_id})


class JobLeaser:
    """One process's side of the leases: its heartbeat thread, the leases it holds, and the gate of each run."""

    def __init__(self, engine: Engine, *, lease_seconds: float, heartbeat_seconds: float, worker_id: str | None = None) -> None:
        self.store = LeaseStore(engine, lease_seconds=lease_seconds)
        self.worker_id = worker_id or new_worker_id()
        self.heartbeat_seconds = heartbeat_seconds
        self._lock = threading.Lock()  # guards _held/_running and orders takes and releases within the process
        self._held: set[str] = set()
        self._running: set[str] = set()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Register the worker and start heartbeating."""
        self.store.heartbeat(self.worker_id)
        log.info("worker started worker=%s lease_seconds=%g heartbeat_seconds=%g", self.worker_id, self.store.lease_seconds, self.heartbeat_seconds)
        self._thread = threading.Thread(target=self._beat_loop, name="lease-heartbeat", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop heartbeating, release every held lease and delete the worker row (call after the runs ended)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=max(10.0, 2 * self.heartbeat_seconds))
        with self._lock:
            held = sorted(self._held)
            self._held.clear()
        try:
            self.store.release_all(self.worker_id)
            for job_id in held:
                log.info("lease released job=%s worker=%s reason=stopping", job_id, self.worker_id)
            self.store.leave(self.worker_id)
        except StoreError as exc:
            log.warning("worker stop worker=%s error=%s (its leases expire by themselves)", self.worker_id, exc)
        log.info("worker stopped worker=%s", self.worker_id)

    def live_workers(self) -> set[str]:
        return set(self.store.live_workers()) | {self.worker_id}

    def held(self) -> set[str]:
        with self._lock:
            return set(self._held)

    def run(self, job_id: str, fn: Callable[[], Any]) -> bool:
        """Run ``fn`` if this process gets ``job_id``'s lease; whether it ran. Logs start and end markers."""
        me = self.worker_id
        live = self.live_workers()
        with self._lock:
            holds = job_id in self._held
            if not holds and rendezvous_owner(job_id, live) != me:
                return False  # another live worker's job
            attempt = self.store.take(job_id, me)
            if not attempt.held:
                if holds:
                    self._held.discard(job_id)
                    log.warning("lease lost job=%s worker=%s", job_id, me)
                else:
                    log.debug("lease busy job=%s worker=%s", job_id, me)
                return False
            self._held.add(job_id)
            self._running.add(job_id)
        if not holds:
            if attempt.previous_owner in (None, me):
                log.info("lease acquired job=%s worker=%s", job_id, me)
            else:
                log.info("lease taken over job=%s worker=%s from=%s", job_id, me, attempt.previous_owner)
        status = "failed"
        log.info("job start job=%s worker=%s", job_id, me)
        try:
            fn()
            status = "ok"
        finally:
            log.info("job end job=%s worker=%s status=%s", job_id, me, status)
            with self._lock:
                self._running.discard(job_id)
                self._release_unless_owner(job_id, None)
        return True

    def _release_unless_owner(self, job_id: str, live: set[str] | None) -> None:
        """Under the lock: release a held, idle lease whose rightful owner is another live worker."""
        if job_id not in self._held:
            return
        try:
            if rendezvous_owner(job_id, self.live_workers() if live is None else live) == self.worker_id:
                return
            self.store.release(job_id, self.worker_id)
        except StoreError as exc:
            log.warning("lease release job=%s worker=%s error=%s", job_id, self.worker_id, exc)
            return
        self._held.discard(job_id)
        log.info("lease released job=%s worker=%s reason=rebalanced", job_id, self.worker_id)

    def beat(self) -> None:
        """One heartbeat: refresh the worker row, renew held leases, release idle ones owed to another worker."""
        self.store.heartbeat(self.worker_id)
        live = self.live_workers()
        with self._lock:
            for job_id in sorted(self._held):
                if job_id not in self._running:
                    self._release_unless_owner(job_id, live)
                    if job_id not in self._held:
                        continue
                if not self.store.take(job_id, self.worker_id).held:
                    self._held.discard(job_id)
                    log.warning("lease lost job=%s worker=%s running=%s", job_id, self.worker_id, job_id in self._running)

    def _beat_loop(self) -> None:
        while not self._stop.wait(self.heartbeat_seconds):
            try:
                self.beat()
            except StoreError as exc:
                log.warning("heartbeat failed worker=%s error=%s", self.worker_id, exc)
