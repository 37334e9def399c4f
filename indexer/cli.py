"""The ``indexer`` command: thin wrappers over the layers below.

Exit codes: 0 success; 2 bad configuration or arguments (one line on stderr, nothing written);
1 any other failure (RPC, database), also one line.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from functools import wraps
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console

from indexer.config import Settings, load_settings, parse_address
from indexer.constants import DEFAULT_AT_RISK_HF, WAD
from indexer.display import positions_table
from indexer.errors import ConfigError, IndexerError
from indexer.store.db import account_positions, at_risk, make_engine, protocol_names

app = typer.Typer(add_completion=False, no_args_is_help=True, help="DeFi collateral health indexer.")
db_app = typer.Typer(add_completion=False, no_args_is_help=True, help="The database: schema migrations and maintenance.")
app.add_typer(db_app, name="db")
# Wide enough for addresses and the table's columns when stdout is a pipe or a file.
console = Console(width=None if sys.stdout.isatty() else 160)

F = TypeVar("F", bound=Callable[..., Any])

ConfigOpt = Annotated[Path | None, typer.Option("--config", "-c", help="TOML config file")]
DbOpt = Annotated[str | None, typer.Option("--database-url", help="database URL (overrides INDEXER_DATABASE_URL and the config)")]


def _setup_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
        stream=sys.stderr,
    )
    # HTTP libraries log full URLs (and so API keys) at debug level: keep them quiet.
    # Alembic narrates every step at INFO; the store logs one line per migration instead.
    for noisy in ("urllib3", "web3", "requests", "apscheduler.executors.default", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def _error_line(exc: Exception) -> None:
    """Exactly one line on stderr, never wrapped."""
    text = " ".join(str(exc).split())
    sys.stderr.write(f"error: {text}\n")
    sys.stderr.flush()


def _errors(fn: F) -> F:
    """Turn the project's errors into one line on stderr and the documented exit code."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except ConfigError as exc:
            _error_line(exc)
            raise typer.Exit(2) from None
        except IndexerError as exc:
            _error_line(exc)
            raise typer.Exit(1) from None

    return wrapper  # type: ignore[return-value]


def _settings(config: Path | None, database_url: str | None) -> Settings:
    settings = load_settings(config, database_url=database_url)
    _setup_logging(settings.log_level)
    return settings


def _parse_hf(text: str) -> int:
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise ConfigError(f"--below: {text!r} is not a number (e.g. --below 1.05)", key="below") from None
    if not value.is_finite() or value <= 0:
        raise ConfigError(f"--below: {text!r} must be a positive number (e.g. --below 1.05)", key="below")
    return int(value * WAD)


@app.command()
@_errors
def snapshot(
    config: ConfigOpt = None,
    database_url: DbOpt = None,
    protocol: Annotated[str | None, typer.Option(help="only this protocol instance")] = None,
    block: Annotated[int | None, typer.Option(help="pin this block instead of head - confirmations")] = None,
) -> None:
    """Take one snapshot of every configured protocol now."""
    from indexer.pipeline import connect, run_snapshot

    settings = _settings(config, database_url)
    protos = [p for p in settings.protocols if protocol is None or p.name == protocol]
    if not protos:
        raise ConfigError(f"no protocol to snapshot{f' named {protocol!r}' if protocol else ''}: add a [[protocols]] entry to the config")
    # Every node must answer before anything is written.
    clients = {name: connect(name, settings.chains[name])[0] for name in {p.chain for p in protos}}
    engine = make_engine(settings.database_url)
    for proto in protos:
        pinned = block
        for shard in range(proto.shards):  # shard 0 discovers accounts; the others read them at its block
            result = run_snapshot(settings, proto, engine, rpc=clients[proto.chain], at_block=pinned, shard=shard)
            s = result.snapshot
            pinned = s.block.number
            label = proto.name if proto.shards == 1 else f"{proto.name} shard {shard}/{proto.shards}"
            console.print(
                f"{label}: block {s.block.number}, {len(s.positions)} positions "
                f"({sum(p.liquidatable for p in s.positions)} liquidatable), {s.accounts_read} accounts, "
                f"{s.rpc_requests} RPC requests, {s.duration_seconds:.2f}s{'' if result.created else ' (already stored)'}"
            )


@app.command()
@_errors
def run(config: ConfigOpt = None, database_url: DbOpt = None) -> None:
    """Run the scheduler: one snapshot job per protocol (and account shard) at its interval, until interrupted.

    Processes sharing one database split the jobs between them through leases in the database.
    """
    from indexer.pipeline import connect
    from indexer.scheduler import run_forever

    settings = _settings(config, database_url)
    if not settings.protocols:
        raise ConfigError("no [[protocols]] in the config: nothing to run")
    clients = {name: connect(name, settings.chains[name])[0] for name in {p.chain for p in settings.protocols}}
    run_forever(settings, make_engine(settings.database_url), clients)


@app.command("at-risk")
@_errors
def at_risk_cmd(
    below: Annotated[str, typer.Option(help="health factor threshold")] = DEFAULT_AT_RISK_HF,
    protocol: Annotated[str | None, typer.Option(help="only this protocol instance")] = None,
    limit: Annotated[int | None, typer.Option(help="at most this many rows")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON array instead of a table")] = False,
    config: ConfigOpt = None,
    database_url: DbOpt = None,
) -> None:
    """Positions of the latest snapshots with health factor below --below, riskiest first."""
    threshold = _parse_hf(below)
    settings = _settings(config, database_url)
    engine = make_engine(settings.database_url, create=False)
    if protocol is not None and protocol not in (known := protocol_names(engine)):
        raise ConfigError(f"--protocol: no snapshot of {protocol!r} in the database (stored: {', '.join(known) or 'none'})", key="protocol")
    rows = at_risk(engine, threshold, protocol=protocol, limit=limit)
    if as_json:
        sys.stdout.write(json.dumps([r.to_json() for r in rows], indent=2) + "\n")
    else:
        console.print(positions_table(rows, f"{len(rows)} positions with health factor < {below}"))


@app.command()
@_errors
def account(
    address: Annotated[str, typer.Argument(help="account address")],
    as_json: Annotated[bool, typer.Option("--json", help="JSON array instead of a table")] = False,
    history: Annotated[bool, typer.Option("--history", help="every stored snapshot, oldest first")] = False,
    config: ConfigOpt = None,
    database_url: DbOpt = None,
) -> None:
    """An account's latest position in every protocol (and its history with --history)."""
    checksummed = parse_address(address, what="ADDRESS")
    settings = _settings(config, database_url)
    current, past = account_positions(make_engine(settings.database_url, create=False), checksummed)
    rows = past if history else current
    if as_json:
        sys.stdout.write(json.dumps([r.to_json() for r in rows], indent=2) + "\n")
        return
    console.print(positions_table(rows, f"{checksummed}: {'history' if history else 'latest'}"))
    if not history and len(past) > len(current):
        console.print(f"{len(past)} stored snapshots; --history lists them")


@app.command()
@_errors
def demo(
    rounds: Annotated[int, typer.Option(min=1, help="snapshot rounds, prices moving between them")] = 5,
    accounts: Annotated[int, typer.Option(min=1, help="accounts to seed")] = 300,
    seed: Annotated[int, typer.Option(help="random seed")] = 7,
    database_url: DbOpt = None,
) -> None:
    """Start anvil, deploy the fixture market, seed accounts, snapshot while prices move, show the riskiest."""
    from indexer.devnet.demo import run_demo

    settings = _settings(None, database_url)
    run_demo(settings.database_url, rounds=rounds, accounts=accounts, seed=seed, console=console)


@db_app.command("upgrade")
@_errors
def db_upgrade(config: ConfigOpt = None, database_url: DbOpt = None) -> None:
    """Migrate the database to this indexer's schema, in one transaction; at the head already, do nothing.

    A database of a release before migrations (no alembic_version) gets its revision recorded first."""
    from indexer.store.schema import redact, upgrade

    settings = _settings(config, database_url)
    before, after = upgrade(settings.database_url)
    where = redact(settings.database_url)
    # Plain writes: a URL must not be wrapped or styled by the console.
    if before == after:
        sys.stdout.write(f"{where}: already at {after.describe()} (head), nothing to do\n")
    else:
        sys.stdout.write(f"{where}: upgraded {before.describe()} -> {after.describe()}\n")


@db_app.command("prune")
@_errors
def db_prune(
    config: ConfigOpt = None,
    database_url: DbOpt = None,
    keep_days: Annotated[float | None, typer.Option(min=0, help="keep every snapshot of this many days (default: [retention] keep_days)")] = None,
    thin_seconds: Annotated[int | None, typer.Option(min=1, help="older snapshots: keep one per this many seconds per protocol")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="count what would be deleted, delete nothing")] = False,
) -> None:
    """Delete old snapshots: all of the last N days stay, older ones are thinned, no account's latest row goes."""
    from indexer.store.retention import prune

    settings = _settings(config, database_url)
    keep = settings.retention.keep_days if keep_days is None else keep_days
    every = settings.retention.thin_seconds if thin_seconds is None else thin_seconds
    r = prune(make_engine(settings.database_url, create=False), keep_days=keep, thin_seconds=every, dry_run=dry_run)
    verb = "would delete" if dry_run else "deleted"
    sys.stdout.write(
        f"{verb} {r.runs_deleted} of {r.runs_before} runs ({r.positions_deleted} position rows, {r.prices_deleted} price rows); "
        f"kept every run of the last {keep:g} days and one per {every}s per protocol before; "
        f"{r.protected} older runs kept for an account's latest position\n"
    )


def main() -> None:
    app()


if __name__ == "__main__":
    main()
