"""Kill points for the crash-safety test: markers and SIGKILLs inside ``indexer`` processes, with no product change.

``serve()`` is a fork server (``python -c "import tests.crashpoints as c; c.serve()"``). It wraps a few functions of
the pipeline, imports the indexer once, then forks each ``indexer <command>`` the test asks for. A child is a
fresh process in every way that matters to the store (its own pid, no connection, no thread, nothing read yet),
but it starts without the seconds of Python imports. Each wrapper writes a marker line on the child's stderr
when a phase of a run begins::

    crashpoint <phase> t=<unix time> protocol=<name> [block=<n> stored=new|already]

The phases, in the order of a run, are:

- ``start``: the command begins;
- ``run``: a job's run begins;
- ``discovery``: the checkpoint is read and the logs are scanned;
- ``reads``: the known accounts, then positions and prices at the pinned block;
- ``write``: the store's transaction begins;
- ``committed``: it returned, and the alerts and post-run checks follow;
- ``done``: the run returned.

The test measures a cycle from these markers and draws its kill moments from it.

The child's ``CRASHPOINT`` (given with the request) makes it SIGKILL itself the first time any job gets there:

- ``<phase>+<seconds>``: that many seconds after the phase begins (a timer thread);
- ``at:<phase>``: as the phase begins (synchronously);
- ``tx:positions`` / ``tx:prices``: inside the snapshot's transaction, right after its position rows (its price
  rows) were inserted, before the rest of it is written;
- ``tx:commit``: inside the transaction, every row written, just before COMMIT.

SIGKILL has no handler, no ``finally`` and no flush: the process dies as in a crash.
"""

from __future__ import annotations

import functools
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

ENV = "CRASHPOINT"
MARKER = "crashpoint"

_local = threading.local()  # per job thread: the protocol being run, whether inside write_snapshot
_fired = threading.Event()


def kill_now() -> None:
    """SIGKILL this process (after the marker lines already written reached the file)."""
    sys.stderr.flush()
    os.kill(os.getpid(), signal.SIGKILL)


def mark(phase: str, **fields: Any) -> None:
    """Write the phase's marker line, and start the kill timer when ``CRASHPOINT`` names this phase."""
    extra = "".join(f" {k}={v}" for k, v in fields.items())
    sys.stderr.write(f"{MARKER} {phase} t={time.time():.4f} protocol={getattr(_local, 'protocol', '-')}{extra}\n")
    sys.stderr.flush()
    spec = os.environ.get(ENV, "")
    if spec == f"at:{phase}":
        kill_now()
    if "+" in spec and spec.split("+")[0] == phase and not _fired.is_set():
        _fired.set()
        delay = float(spec.split("+")[1])
        threading.Timer(delay, kill_now).start()


def _at_tx_point(point: str) -> None:
    if os.environ.get(ENV) == point and getattr(_local, "in_write", False):
        sys.stderr.write(f"{MARKER} kill {point} t={time.time():.4f} protocol={getattr(_local, 'protocol', '-')}\n")
        kill_now()


def _wrap(module: Any, name: str, before: Callable[..., None], after: Callable[[Any], None] | None = None) -> None:
    original = getattr(module, name)  # AttributeError: the pipeline changed shape; the test must follow it

    @functools.wraps(original)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        before(*args, **kwargs)
        result = original(*args, **kwargs)
        if after is not None:
            after(result)
        return result

    setattr(module, name, wrapper)


def install() -> None:
    """Wrap the pipeline's steps with markers and kill points."""
    from sqlalchemy import event
    from sqlmodel import Session

    import indexer.pipeline as pipeline
    import indexer.scheduler as scheduler
    import indexer.store.db as db

    def run_started(_settings: Any, proto: Any, *_a: Any, **_k: Any) -> None:
        _local.protocol = proto.name
        mark("run")

    def run_done(result: Any) -> None:
        mark("done", block=result.snapshot.block.number, stored="new" if result.created else "already")

    def write_started(_engine: Any, _snap: Any) -> None:
        _local.in_write = True
        mark("write")

    def write_done(_result: Any) -> None:
        _local.in_write = False
        mark("committed")

    original_bulk = db._bulk_insert

    def bulk_insert(session: Any, model: Any, rows: list[dict[str, Any]]) -> None:
        original_bulk(session, model, rows)
        _at_tx_point("tx:positions" if model.__tablename__ == "position_snapshots" else "tx:prices")

    _wrap(scheduler, "run_snapshot", run_started, run_done)
    _wrap(pipeline, "run_snapshot", run_started, run_done)  # `indexer snapshot` imports it from here
    _wrap(pipeline, "_discovery_start", lambda *a, **k: mark("discovery"))
    _wrap(pipeline, "known_accounts", lambda *a, **k: mark("reads"))
    _wrap(pipeline, "write_snapshot", write_started, write_done)
    db._bulk_insert = bulk_insert
    event.listen(Session, "before_commit", lambda _session: _at_tx_point("tx:commit"))


def _child(request: dict[str, Any]) -> None:
    """In a forked child: stdio to the log file, the kill point, the command; never returns."""
    code = 1
    try:
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        fd = os.open(request["log"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        null = os.open(os.devnull, os.O_RDWR)
        os.dup2(null, 0)
        os.dup2(null, 1)
        os.dup2(fd, 2)
        os.environ.pop(ENV, None)
        if request.get("crashpoint"):
            os.environ[ENV] = request["crashpoint"]
        sys.argv = ["indexer", *request["argv"]]
        mark("start")
        from indexer.cli import main as cli_main

        try:
            cli_main()
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:  # noqa: BLE001  (whatever happens, the child must not return into the server's loop)
        import traceback

        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def serve() -> None:
    """A fork server: imports the indexer once, then starts each ``indexer`` process the test asks for by fork.

    Python's imports of the indexer (web3, SQLAlchemy, ...) take seconds; a forked child starts with them done,
    as a fresh process otherwise: its own pid, no connection, no thread, nothing read. One JSON request per
    line on stdin, one answer per line on stdout:

    - ``{"argv": [...], "log": path, "crashpoint": spec | null}``: fork ``indexer <argv>``, stderr to ``log``,
      answer its pid;
    - ``{"status": pid}``: answer ``running``, or its exit code (negative: the signal that killed it).
    """
    import json

    install()
    import indexer.cli  # noqa: F401  (imported before the forks: that is the point)

    ended: dict[int, int] = {}  # exit codes of the children reaped
    for line in sys.stdin:
        request = json.loads(line)
        if "status" in request:
            child = request["status"]
            if child not in ended:
                pid, status = os.waitpid(child, os.WNOHANG)
                if pid != 0:
                    ended[child] = os.waitstatus_to_exitcode(status)
            answer = str(ended[child]) if child in ended else "running"
        else:
            sys.stdout.flush()
            pid = os.fork()
            if pid == 0:
                _child(request)
            answer = str(pid)
        sys.stdout.write(answer + "\n")
        sys.stdout.flush()
